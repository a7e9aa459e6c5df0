"""The dashboard's sign-in and session: cookie, CSRF, expiry on the app's clock, revocation."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
import redis

from service.core.api_keys import parse_key
from service.store import dashboard_sessions, keys
from service.store.api_keys import revoke
from service.store.local_cluster import LocalCluster
from tests.html_cells import Page, sign_in


def test_the_pages_ask_to_sign_in_first(app):
    browser = app.test_client()
    browser.environ_base.pop("HTTP_AUTHORIZATION", None)
    for path in ("/", "/tls", "/connectors", "/insights", "/connectors/export",
                 "/connectors/inbound/-"):  # fmt: skip
        answer = browser.get(path)
        assert answer.status_code == 303 and answer.headers["Location"] == "/sign-in", path


def test_a_read_key_signs_in_with_a_strict_http_only_cookie_holding_no_key(
    app, make_key, redis_client
):
    key = make_key("acme", "read")
    browser = app.test_client()
    browser.environ_base.pop("HTTP_AUTHORIZATION", None)
    form = browser.get("/sign-in")
    token = Page(form.get_data(as_text=True)).field("sign-in", "csrf")
    answer = browser.post("/sign-in", data={"csrf": token, "key": key})
    assert answer.status_code == 303
    cookie = next(c for c in answer.headers.getlist("Set-Cookie")
                  if c.startswith("mailflow_session="))  # fmt: skip
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    secret = parse_key(key)[1]
    assert key not in cookie and secret not in cookie
    # Nothing stored in Redis holds the key or its secret.
    for name in redis_client.scan_iter("mf:{session:*"):
        stored = json.dumps({k.decode(): v.decode() for k, v in redis_client.hgetall(name).items()})
        assert secret not in stored and key not in stored
        assert 0 < redis_client.ttl(name) <= 30 * 60 + 1  # a duration: the idle limit
    page = browser.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "acme" in Page(html).texts("strong", "tenant-name")
    assert key not in html and secret not in html


def test_the_cookie_is_secure_over_https(app, make_key):
    browser = app.test_client()
    browser.environ_base.pop("HTTP_AUTHORIZATION", None)
    form = browser.get("/sign-in", base_url="https://localhost")
    token = Page(form.get_data(as_text=True)).field("sign-in", "csrf")
    answer = browser.post("/sign-in", data={"csrf": token, "key": make_key("acme", "read")},
                          base_url="https://localhost")  # fmt: skip
    cookie = next(c for c in answer.headers.getlist("Set-Cookie")
                  if c.startswith("mailflow_session="))  # fmt: skip
    assert "Secure" in cookie


def test_keys_without_read_or_unknown_are_refused(app, make_key):
    browser = app.test_client()
    browser.environ_base.pop("HTTP_AUTHORIZATION", None)
    unknown = "mf_" + "0" * 16 + "_" + "A" * 43  # well formed, never issued
    for key, status in ((make_key("acme", "ingest"), 403), ("mf_nope_nope", 403),
                        (unknown, 403), ("not a key", 403)):  # fmt: skip
        token = Page(browser.get("/sign-in").get_data(as_text=True)).field("sign-in", "csrf")
        answer = browser.post("/sign-in", data={"csrf": token, "key": key})
        assert answer.status_code == status
        assert Page(answer.get_data(as_text=True)).texts("p", "error")  # says why, in the form
        assert not any(c.startswith("mailflow_session=")
                       for c in answer.headers.getlist("Set-Cookie"))  # fmt: skip


def test_sign_in_without_the_forms_csrf_token_is_refused(app, make_key):
    key = make_key("acme", "read")
    browser = app.test_client()
    browser.environ_base.pop("HTTP_AUTHORIZATION", None)
    browser.get("/sign-in")  # sets the token's cookie
    assert browser.post("/sign-in", data={"key": key}).status_code == 403
    assert browser.post("/sign-in", data={"key": key, "csrf": "forged"}).status_code == 403
    # A token from the form but without its cookie (another site's form): refused too.
    token = Page(browser.get("/sign-in").get_data(as_text=True)).field("sign-in", "csrf")
    other = app.test_client()
    other.environ_base.pop("HTTP_AUTHORIZATION", None)
    assert other.post("/sign-in", data={"key": key, "csrf": token}).status_code == 403
    assert browser.get("/").status_code == 303  # none of them signed in


def test_sign_out_needs_the_sessions_csrf_token_and_ends_the_session(app, make_key):
    browser = sign_in(app, make_key("acme", "read"))
    page = Page(browser.get("/").get_data(as_text=True))
    assert browser.post("/sign-out", data={"csrf": "forged"}).status_code == 403
    assert browser.get("/").status_code == 200  # still signed in
    answer = browser.post("/sign-out", data={"csrf": page.field("sign-out", "csrf")})
    assert answer.status_code == 303
    assert browser.get("/").status_code == 303


def test_a_stolen_cookie_is_dead_after_sign_out(app, make_key):
    browser = sign_in(app, make_key("acme", "read"))
    cookie = browser.get_cookie("mailflow_session").value
    csrf = Page(browser.get("/").get_data(as_text=True)).field("sign-out", "csrf")
    browser.post("/sign-out", data={"csrf": csrf})
    thief = app.test_client()
    thief.environ_base.pop("HTTP_AUTHORIZATION", None)
    thief.set_cookie("mailflow_session", cookie)
    assert thief.get("/").status_code == 303


def test_a_forged_cookie_is_not_a_session(app, make_key):
    browser = app.test_client()
    browser.environ_base.pop("HTTP_AUTHORIZATION", None)
    browser.set_cookie("mailflow_session", "abc.def")
    assert browser.get("/").status_code == 303


def test_a_revoked_key_is_signed_out_at_its_next_request(app, make_key, redis_client, clock):
    key = make_key("acme", "read")
    browser = sign_in(app, key)
    assert browser.get("/").status_code == 200
    revoke(redis_client, parse_key(key)[0], clock.now.isoformat())
    assert browser.get("/").status_code == 303
    assert list(redis_client.scan_iter("mf:{session:*")) == []


@pytest.mark.parametrize("idle_minutes", [30])
def test_an_idle_session_expires_on_the_apps_clock(app, make_key, clock, idle_minutes):
    browser = sign_in(app, make_key("acme", "read"))
    clock.advance(minutes=idle_minutes - 1)
    assert browser.get("/").status_code == 200  # used: idle time starts again
    clock.advance(minutes=idle_minutes - 1)
    assert browser.get("/").status_code == 200
    clock.advance(minutes=idle_minutes)
    assert browser.get("/").status_code == 303


def test_a_busy_session_still_ends_at_the_absolute_limit(app, make_key, clock, redis_client):
    browser = sign_in(app, make_key("acme", "read"))
    for _ in range(12 * 60 // 20 - 1):
        clock.advance(minutes=20)
        assert browser.get("/").status_code == 200
    # Its Redis expiry is a duration no longer than what is left of the 12 hours.
    (name,) = list(redis_client.scan_iter("mf:{session:*"))
    assert 0 < redis_client.ttl(name) <= 20 * 60 + 1
    clock.advance(minutes=20)
    assert browser.get("/").status_code == 303


def test_session_limits_are_settings(redis_server, make_key, clock, closing):
    from service.app import create_app

    app = closing(create_app({"redis_url": redis_server.url, "CLOCK": clock,
                              "session_idle_minutes": 5, "session_max_hours": 1}))  # fmt: skip
    browser = sign_in(app, make_key("acme", "read"))
    clock.advance(minutes=6)
    assert browser.get("/").status_code == 303


def test_the_key_never_appears_in_a_log_line(app, make_key, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    key = make_key("acme", "read")
    capsys.readouterr()
    browser = sign_in(app, key)
    browser.get("/")
    browser.get("/connectors?days=30")
    secret = parse_key(key)[1]
    logged = capsys.readouterr().err + "\n".join(r.getMessage() for r in caplog.records)
    assert '"path":"/sign-in"' in logged  # the request log did see the sign-in
    assert key not in logged and secret not in logged


def test_session_keys_are_built_in_the_keys_module():
    assert keys.dashboard_session("abc123") == "mf:{session:abc123}"
    with pytest.raises(ValueError):
        keys.dashboard_session("a:b")


def test_a_session_is_shared_by_every_process_and_ends_in_all_of_them(
    app, redis_server, clock, make_key, closing
):
    from service.app import create_app

    other = closing(create_app({"redis_url": redis_server.url, "CLOCK": clock}))
    browser = sign_in(app, make_key("acme", "read"))
    cookie = browser.get_cookie("mailflow_session").value
    elsewhere = other.test_client()
    elsewhere.set_cookie("mailflow_session", cookie)
    assert elsewhere.get("/").status_code == 200  # the same signing secret, the same session
    csrf = Page(browser.get("/").get_data(as_text=True)).field("sign-out", "csrf")
    assert browser.post("/sign-out", data={"csrf": csrf}).status_code == 303
    assert elsewhere.get("/").status_code == 303  # its near-cached copy was dropped too


def test_signing_in_again_ends_the_previous_session(app, make_key, redis_client):
    browser = sign_in(app, make_key("acme", "read"))
    assert browser.get("/sign-in").status_code == 303  # signed in: the form sends you home
    first = browser.get_cookie("mailflow_session").value
    again = app.test_client()
    again.environ_base.pop("HTTP_AUTHORIZATION", None)
    csrf = Page(again.get("/sign-in").get_data(as_text=True)).field("sign-in", "csrf")
    again.set_cookie("mailflow_session", first)  # the same browser, signing in with another key
    answer = again.post("/sign-in", data={"csrf": csrf, "key": make_key("globex", "read")})
    assert answer.status_code == 303
    assert len(list(redis_client.scan_iter("mf:{session:*"))) == 1  # the first one is gone
    assert browser.get("/").status_code == 303
    assert "globex" in Page(again.get("/").get_data(as_text=True)).texts("strong", "tenant-name")


class _SignOutBeforeTouch(redis.Redis):
    """A client on which another process signs the session out just after this request read
    it and before it records the session's use: the race a sign-out can lose."""

    victim = ""

    def pipeline(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.victim:
            dashboard_sessions.end(self, self.victim)
        return super().pipeline(*args, **kwargs)


def test_a_session_signed_out_while_a_request_uses_it_stays_signed_out(redis_server, clock):
    if isinstance(redis_server, LocalCluster):
        pytest.skip("a plain client on one server")
    limits = dashboard_sessions.Limits(idle=timedelta(minutes=30), absolute=timedelta(hours=12))
    client = _SignOutBeforeTouch.from_url(redis_server.url)
    try:
        session = dashboard_sessions.create(client, "k1", "h" * 64, "default", clock.now, limits)
        clock.advance(minutes=5)  # long enough since the last use for the use to be recorded
        client.victim = session.session_id
        assert dashboard_sessions.use(client, session.session_id, clock.now, limits) is None
        client.victim = ""
        assert not client.exists(keys.dashboard_session(session.session_id))
        assert dashboard_sessions.use(client, session.session_id, clock.now, limits) is None
    finally:
        client.close()


def test_a_sign_in_form_older_than_its_time_is_refused_whatever_the_cookie(app, clock, make_key):
    browser = app.test_client()
    browser.environ_base.pop("HTTP_AUTHORIZATION", None)
    form = browser.get("/sign-in")
    token = Page(form.get_data(as_text=True)).field("sign-in", "csrf")
    clock.advance(hours=2)  # the browser kept the cookie (or it was captured): still refused
    answer = browser.post("/sign-in", data={"csrf": token, "key": make_key("default", "read")})
    assert answer.status_code == 403
    form = browser.get("/sign-in")  # a fresh form signs in
    token = Page(form.get_data(as_text=True)).field("sign-in", "csrf")
    answer = browser.post("/sign-in", data={"csrf": token, "key": make_key("default", "read")})
    assert answer.status_code == 303


def test_a_key_over_its_rate_limit_can_still_sign_out(app, make_key):
    state = app.extensions["mailflow"]
    state.settings = state.settings.with_overrides({"rate_limit_per_minute": 5})
    browser = sign_in(app, make_key("acme", "read"))
    csrf = Page(browser.get("/").get_data(as_text=True)).field("sign-out", "csrf")
    statuses = [browser.get("/tls?days=30").status_code for _ in range(40)]
    assert 429 in statuses  # the key is over its limit now
    answer = browser.post("/sign-out", data={"csrf": csrf})
    assert answer.status_code == 303, answer.data[:300]
    assert browser.get("/").status_code == 303  # signed out, not rate limited


def _sign_in_form(app):
    browser = app.test_client()
    browser.environ_base.pop("HTTP_AUTHORIZATION", None)
    token = Page(browser.get("/sign-in").get_data(as_text=True)).field("sign-in", "csrf")
    return browser, token


def test_a_form_refused_a_body_slot_gets_that_refusal_not_a_csrf_403(app, make_key):
    browser, token = _sign_in_form(app)
    slots = app.wsgi_app.slots  # the body reads' slots of this process
    held = []
    while len(held) < slots.total:  # every slot busy with other tenants' uploads
        held.append((f"uploader-{len(held)}", slots.take(f"uploader-{len(held)}")))
    try:
        answer = browser.post("/sign-in", data={"csrf": token, "key": make_key("acme", "read")})
    finally:
        for tenant, slot in held:
            slots.give_back(tenant, slot)
    assert answer.status_code == 503
    assert answer.mimetype == "application/problem+json"
    assert answer.json["type"] == "/problems/busy"
    assert answer.headers["Retry-After"] == "1"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_a_form_whose_body_breaks_off_gets_a_400_not_a_csrf_403(app, make_key):
    browser, token = _sign_in_form(app)
    form = f"csrf={token}&key={make_key('acme', 'read')}"
    answer = browser.post("/sign-in", data=form, content_type="application/x-www-form-urlencoded",
                          environ_overrides={"CONTENT_LENGTH": str(len(form) + 50)})  # fmt: skip
    assert answer.status_code == 400
    assert answer.mimetype == "application/problem+json"
    assert answer.json["type"] == "/problems/unreadable-body"
