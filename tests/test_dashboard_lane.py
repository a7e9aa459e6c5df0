"""The widget's lean lane answers exactly as the full path does, and counts a request once."""

from __future__ import annotations

import pytest

from service.app import create_app
from service.cli.demo import demo_traces
from service.core.api_keys import parse_key
from service.store import keys
from service.store.api_keys import revoke
from service.web import ratelimit
from tests.conftest import KeyedClient
from tests.helpers import post_batches
from tests.html_cells import sign_in

COMPARED = ("Content-Type", "Content-Length", "ETag", "Cache-Control", "Content-Security-Policy",
            "X-Content-Type-Options", "Referrer-Policy", "Vary")  # fmt: skip


def _app(redis_server, clock, make_key, closing, **settings):
    app = closing(create_app({"redis_url": redis_server.url, "CLOCK": clock, **settings}))
    app.test_client_class = type("Keyed", (KeyedClient,), {"default_key": make_key("default")})
    return app


@pytest.fixture
def apps(redis_server, clock, make_key, closing, run_worker):
    lane = _app(redis_server, clock, make_key, closing, cached_reads=True)
    full = _app(redis_server, clock, make_key, closing, cached_reads=False)
    post_batches(lane.test_client(), list(demo_traces(clock.now, days=7)))
    run_worker()
    return lane, full


def test_the_lane_and_the_full_path_answer_alike(apps, make_key):
    lane, full = apps
    browser = sign_in(lane, make_key("default", "read"))
    cookie = browser.get_cookie("mailflow_session").value
    elsewhere = full.test_client()
    elsewhere.environ_base.pop("HTTP_AUTHORIZATION", None)
    elsewhere.set_cookie("mailflow_session", cookie)
    first = browser.get("/")  # not rendered yet in this process: the full path renders it
    again = browser.get("/")  # rendered: the lane answers
    other = elsewhere.get("/")  # the same session in a process without the lane
    for answer in (first, again, other):
        assert answer.status_code == 200
    assert again.data == first.data == other.data
    for name in COMPARED:
        assert again.headers.get(name) == other.headers.get(name) == first.headers.get(name), name
    etag = again.headers["ETag"]
    via_lane = browser.get("/", headers={"If-None-Match": etag})
    via_full = elsewhere.get("/", headers={"If-None-Match": etag})
    assert via_lane.status_code == via_full.status_code == 304
    for name in COMPARED:
        assert via_lane.headers.get(name) == via_full.headers.get(name), name


def test_the_lane_counts_each_request_once(redis_server, clock, make_key, closing, run_worker):
    app = _app(redis_server, clock, make_key, closing, rate_limit_per_minute=5)
    browser = sign_in(app, make_key("default", "read"))  # 1
    assert [browser.get("/").status_code for _ in range(4)] == [200, 200, 200, 200]  # 2..5
    assert browser.get("/").status_code == 429


def test_a_refused_request_costs_one_token_too(
    redis_server, clock, make_key, closing, redis_client
):
    """The stored counter counts every request taken against the limit, refused ones too: the
    lane hands its refusal to the full path rather than the full path counting it again."""
    app = _app(redis_server, clock, make_key, closing, rate_limit_per_minute=5)
    key = make_key("default", "read")
    browser = sign_in(app, key)  # 1
    answers = [browser.get("/") for _ in range(7)]  # 2..8
    assert [a.status_code for a in answers] == [200] * 4 + [429] * 3
    refused = answers[-1]
    assert refused.headers["RateLimit-Remaining"] == "0" and "Retry-After" in refused.headers
    window = ratelimit.window_at(clock.now)
    counter = keys.api_key_rate(parse_key(key)[0], "read", window.index)
    assert int(redis_client.get(counter)) == 8


def test_a_revoked_key_is_signed_out_by_the_lane_too(apps, make_key, redis_client, clock):
    lane, _ = apps
    key = make_key("default", "read")
    browser = sign_in(lane, key)
    assert browser.get("/").status_code == browser.get("/").status_code == 200
    revoke(redis_client, parse_key(key)[0], clock.now.isoformat())
    assert browser.get("/").status_code == 303


def test_a_rendered_widget_is_answered_without_flask(apps, make_key):
    lane, _ = apps
    widget_lane = lane.wsgi_app.inner  # BodyReads -> WidgetLane -> CachedReads -> Flask
    assert type(widget_lane).__name__ == "WidgetLane"
    reached = []
    full_path = widget_lane.full_path

    def counted(environ, start_response):
        reached.append(environ["PATH_INFO"])
        return full_path(environ, start_response)

    widget_lane.full_path = counted
    browser = sign_in(lane, make_key("default", "read"))
    reached.clear()
    assert browser.get("/").status_code == 200  # rendered by Flask
    assert reached == ["/"]
    for _ in range(3):
        assert browser.get("/").status_code == 200
    etag = browser.get("/").headers["ETag"]
    assert browser.get("/", headers={"If-None-Match": etag}).status_code == 304
    assert reached == ["/"]  # every later one answered by the lane
    assert browser.get("/?days=7").status_code == 200 and reached == ["/", "/"]
