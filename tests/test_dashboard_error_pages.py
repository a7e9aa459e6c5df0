"""A person's page that fails answers a small HTML page of the problem, with the same status and
headers; an API client (or a request not preferring HTML) still gets problem+json."""

from __future__ import annotations

import pytest

from service.app import create_app
from tests.conftest import KeyedClient
from tests.html_cells import Page, sign_in

# What Chromium sends when it navigates to a page.
BROWSER = ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
           "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7")  # fmt: skip


@pytest.fixture
def make_app(redis_server, clock, make_key, closing):
    def make(**settings):
        app = closing(create_app({"redis_url": redis_server.url, "CLOCK": clock, **settings}))
        app.test_client_class = type("Keyed", (KeyedClient,),
                                     {"default_key": make_key("default")})  # fmt: skip
        return app

    return make


def _both(browser, method: str, path: str, **kwargs):
    """The answer as a browser navigating there gets it, and as a client sending no Accept."""
    as_person = browser.open(path, method=method, headers={"Accept": BROWSER}, **kwargs)
    as_client = browser.open(path, method=method, **kwargs)
    return as_person, as_client


def _assert_html_of(as_person, as_client, status: int) -> Page:
    assert as_client.status_code == as_person.status_code == status
    assert as_client.mimetype == "application/problem+json"
    problem = as_client.json
    assert as_person.mimetype == "text/html"
    html = Page(as_person.get_data(as_text=True))
    assert html.body_class() == "page-error"
    assert html.texts("h1", "problem-title") == [problem["title"]]
    assert f"<title>{problem['title']} · mailflow</title>" in html.html
    assert html.texts("p", "problem-detail") == [" ".join(problem["detail"].split())]
    assert html.texts("code", "problem-type") == [problem["type"]]
    assert html.elements("a", "back")
    policy = as_person.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert "<script>" not in as_person.get_data(as_text=True)
    assert as_person.headers["Cache-Control"] in (
        "no-store",
        as_client.headers.get("Cache-Control"),
    )
    for answer in (as_person, as_client):
        assert "Accept" in answer.headers["Vary"]
    return html


@pytest.mark.parametrize(("path", "status"), [
    ("/tls?days=abc", 422),
    ("/connectors?sort=bogus", 422),
    ("/connectors/sideways/x", 404),
    ("/connectors/inbound/nobody", 404),
    ("/connectors/export?cursor=forged", 400),
    ("/no-such-page", 404),
    ("/connectors/inbound/nobody/extra/%3Cscript%3E", 404),
])  # fmt: skip
def test_a_page_error_is_an_html_page_for_a_browser(app, make_key, path, status):
    browser = sign_in(app, make_key("acme", "read"))
    html = _assert_html_of(*_both(browser, "GET", path), status)
    back = html.elements("a", "back")[0]["href"]
    assert back == ("/" if path.startswith("/no") else "/" + path.split("/")[1].split("?")[0])
    assert "<script>alert" not in html.html


def test_an_unknown_path_is_an_html_404_before_signing_in(app):
    anonymous = app.test_client()
    anonymous.environ_base.pop("HTTP_AUTHORIZATION", None)
    html = _assert_html_of(*_both(anonymous, "GET", "/favicon-nope.ico"), 404)
    assert html.elements("a", "back")[0]["href"] == "/"


def test_a_refused_form_is_an_html_403_and_a_wrong_method_an_html_405(app, make_key):
    browser = sign_in(app, make_key("acme", "read", "admin"))
    _assert_html_of(*_both(browser, "POST", "/insights/rules/connector-unencrypted",
                           data={"min_messages": "5", "csrf": "stale"}), 403)  # fmt: skip
    as_person, as_client = _both(browser, "DELETE", "/tls")
    _assert_html_of(as_person, as_client, 405)
    assert as_person.headers["Allow"] == as_client.headers["Allow"]


def test_over_the_rate_limit_is_an_html_429_with_its_headers(make_app, make_key):
    app = make_app(rate_limit_per_minute=3, cached_reads=False)
    browser = sign_in(app, make_key("default", "read"))  # the 1st request of 3
    assert browser.get("/tls").status_code == browser.get("/tls").status_code == 200
    as_person, as_client = _both(browser, "GET", "/tls")  # the 4th and 5th
    _assert_html_of(as_person, as_client, 429)
    for name in ("Retry-After", "RateLimit-Limit", "RateLimit-Remaining"):
        assert as_person.headers[name] == as_client.headers[name], name
    assert "Try again in" in as_person.get_data(as_text=True)


def test_a_form_too_large_is_an_html_413(make_app, make_key):
    app = make_app(max_body_bytes=1024)
    browser = sign_in(app, make_key("acme", "read", "admin"))
    _assert_html_of(*_both(browser, "POST", "/sign-out", data={"pad": "x" * 4000}), 413)


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/connectors?sort=bogus",
                                  "/docs/assets/nope.css", "/openapi.json/nope"])  # fmt: skip
def test_machines_paths_answer_problem_json_even_to_a_browser(client, path):
    answer = client.get(path, headers={"Accept": BROWSER})
    assert 400 <= answer.status_code < 500
    assert answer.mimetype == "application/problem+json"


def test_a_page_request_not_preferring_html_gets_problem_json(app, make_key):
    browser = sign_in(app, make_key("acme", "read"))
    for accept in ("*/*", "application/json", "application/problem+json",
                   "text/html;q=0.5, application/problem+json"):  # fmt: skip
        answer = browser.get("/tls?days=abc", headers={"Accept": accept})
        assert answer.status_code == 422 and answer.mimetype == "application/problem+json"
