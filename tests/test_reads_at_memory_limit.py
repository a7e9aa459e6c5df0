"""A Redis at its maxmemory limit with noeviction: every report still answers 200 with the same
numbers as once memory is freed (reads need no memory), and ingest answers a clear 503
problem+json whose batch, sent again later, is counted once. On Valkey 8.1 and Redis 6.2 (which
refuses every command queued in a MULTI at the limit, reads too)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from service.app import create_app
from service.config import Settings
from service.store import keys
from service.store.api_keys import create_key
from service.store.embedded import EmbeddedRedis
from service.store.versioned_read import read_with_version
from service.worker.loop import Worker
from tests.conftest import ALL_SCOPES, TEST_SERVER, KeyedClient, free_port
from tests.helpers import make_traces
from tests.html_cells import Page, sign_in

# The default windows (precomputed by the worker) and others (built at the request, their
# cached copy refused at the limit).
REPORTS = (
    "/api/v1/mailflow/snapshot",
    "/api/v1/mailflow/snapshot?days=5",
    "/api/v1/mailflow/tls?days=5",
    "/api/v1/mailflow/transit-security?days=5",
    "/api/v1/connectors?days=5",
    "/api/v1/connectors?days=5&format=csv",
    "/api/v1/domains?days=5",
    "/api/v1/auth-clients?days=5",
    "/api/v1/tls-reports?days=5",
    "/api/v1/mailflow/snapshot?days=7",
    "/api/v1/mailflow/tls?days=7",
    "/api/v1/mailflow/transit-security?days=7",
    "/api/v1/mailflow/blocked?days=7",
    "/api/v1/connectors?days=7",
    "/api/v1/domains?days=7",
    "/api/v1/auth-clients?days=7",
    "/api/v1/insights",
    "/api/v1/insight-rules",
    "/api/v1/tls-reports",
    "/api/v1/tenant",
    # One name's detail, read field by field.
    "/api/v1/connectors/inbound/Partner?days=5",
    "/api/v1/domains/inbound/sender.example?days=5",
    "/api/v1/domains/outbound/rcpt.example?days=5",
    "/api/v1/auth-clients/outbound/alice%40example.org?days=5",
)
NAMED = {"connector": "Partner", "connector_type": "partner", "sender_domain": "sender.example",
         "recipient_domain": "rcpt.example", "auth_user": "alice@example.org"}  # fmt: skip
FILLER = 64 * 1024


@pytest.fixture
def small_server(request, tmp_path) -> Iterator[EmbeddedRedis]:  # type: ignore[no-untyped-def]
    if request.config.getoption("--redis-mode") == "cluster":
        pytest.skip("a server of its own with a small maxmemory")
    server = EmbeddedRedis(tmp_path / "redis", port=free_port(), server=TEST_SERVER,
                           extra_args=["--maxmemory-policy", "noeviction"]).start()  # fmt: skip
    yield server
    server.stop()


def _fill(admin: redis.Redis) -> int:
    """Set maxmemory a little above what is used, fill it with strings until Redis refuses a
    write, then lower the limit by one filler: what a request allocates and frees (buffers)
    would otherwise move Redis back and forth across the limit. The number of filler keys."""
    used = int(admin.info("memory")["used_memory"])
    admin.config_set("maxmemory", used + 2 * 1024 * 1024)
    for n in range(10_000):
        try:
            admin.set(f"filler:{n}", b"x" * FILLER)
        except redis.exceptions.OutOfMemoryError:
            admin.config_set("maxmemory", int(admin.info("memory")["used_memory"]) - FILLER)
            return n
    raise AssertionError("Redis never reached its maxmemory")


def _served_with_mail(small_server, clock, closing, traces: list[dict]):  # type: ignore[no-untyped-def]
    """(a client of the server, the app, a keyed test client), ``traces`` ingested and folded."""
    admin = closing(redis.Redis.from_url(small_server.url))
    app = closing(create_app({"redis_url": small_server.url, "CLOCK": clock}))
    key = create_key(admin, "default", ALL_SCOPES, "k", clock.now)
    web = type("Web", (KeyedClient,), {"default_key": key})(app)
    assert web.post("/api/v1/traces", json=traces).status_code == 202
    Worker(admin, Settings(redis_url=small_server.url), clock=clock).work(burst=True)
    return admin, app, web


def _read(web, path: str) -> tuple[int, object]:  # type: ignore[no-untyped-def]
    answer = web.get(path)
    return answer.status_code, answer.get_json(silent=True) or answer.get_data(as_text=True)


def test_reports_answer_at_the_memory_limit_and_ingest_refuses_cleanly(
    small_server, clock, closing
) -> None:  # type: ignore[no-untyped-def]
    traces, _ = make_traces(600, clock.now, seed=5)
    traces = [trace | NAMED for trace in traces]
    admin, _, web = _served_with_mail(small_server, clock, closing, traces[:400])

    fillers = _fill(admin)
    at_limit = {path: _read(web, path) for path in REPORTS}
    refused = web.post("/api/v1/traces", json=traces[400:])

    for n in range(fillers):
        admin.delete(f"filler:{n}")
    admin.config_set("maxmemory", 0)
    freed = {path: _read(web, path) for path in REPORTS}
    failing = {p: str(a)[:200] for p, a in at_limit.items() if a[0] != 200}
    assert not failing, failing
    assert at_limit == freed
    snapshot = at_limit["/api/v1/mailflow/snapshot?days=7"][1]
    assert isinstance(snapshot, dict)
    for direction in ("inbound", "outbound"):
        sent = sum(1 for t in traces[:400] if t["direction"] == direction)
        assert snapshot["directions"][direction]["messages"] == sent

    # Ingest at the limit: a clear 503, nothing half-stored; the same batch later counts once.
    assert refused.status_code == 503 and refused.mimetype == "application/problem+json"
    assert refused.json["type"] == "/problems/store-refuses-writes"
    assert refused.headers["Retry-After"].isdigit()
    again = web.post("/api/v1/traces", json=traces[400:])
    assert again.status_code == 202 and again.json["accepted"] == 200
    Worker(admin, Settings(redis_url=small_server.url), clock=clock).work(burst=True)
    totals = web.get("/api/v1/mailflow/snapshot?days=7").json["directions"]
    assert sum(d["messages"] for d in totals.values()) == 600


def test_where_the_multi_is_refused_a_change_between_the_reads_is_read_again(
    small_server, closing
) -> None:  # type: ignore[no-untyped-def]
    """Redis 6.2 at its limit: the counters are read in a plain pipeline bracketed by the data
    version, read again when the version moved in between (HDEL, which Redis allows at the
    limit, stands for a fold landing mid-read)."""
    admin = closing(redis.Redis.from_url(small_server.url))
    meta, day = keys.meta("t"), keys.day_counts("t", "2026-11-27")
    admin.hset(meta, "version", 7)
    admin.hset(day, "f", 1)
    admin.config_set("maxmemory", 1)
    try:
        probe = admin.pipeline(transaction=True)
        probe.get("x")
        try:
            probe.execute()
            pytest.skip("this server serves reads in a MULTI at its limit (Valkey, Redis 7+)")
        except redis.exceptions.OutOfMemoryError:
            pass
        calls: list[int] = []

        def reads(pipe) -> None:  # type: ignore[no-untyped-def]
            calls.append(1)
            pipe.hgetall(day)
            if len(calls) == 2:  # the first plain read (the first call was the MULTI's)
                pipe.hdel(meta, "version")

        replies = read_with_version(admin, meta, reads)
    finally:
        admin.config_set("maxmemory", 0)
    assert len(calls) == 3  # the refused MULTI, the read that saw a change, the read again
    assert replies[0][0] is None and replies[1] == {b"f": b"1"}


DASHBOARD_PAGES = ("/", "/tls", "/transit-security", "/connectors", "/domains", "/auth-clients",
                   "/insights", "/tls-reports", "/connectors/export")  # fmt: skip


def test_a_signed_in_dashboard_keeps_its_pages_at_the_memory_limit(
    small_server, clock, closing
) -> None:  # type: ignore[no-untyped-def]
    traces, _ = make_traces(300, clock.now, seed=6)
    admin, app, web = _served_with_mail(small_server, clock, closing, [t | NAMED for t in traces])
    key = web.default_key
    browser = sign_in(app, key)

    fillers = _fill(admin)
    clock.advance(minutes=5)  # past the session's touch: a write at every page
    at_limit = {path: browser.get(path) for path in DASHBOARD_PAGES}
    late = sign_in_answer(app, key)
    for n in range(fillers):
        admin.delete(f"filler:{n}")
    admin.config_set("maxmemory", 0)

    failing = {
        p: (a.status_code, a.data[:200]) for p, a in at_limit.items() if a.status_code != 200
    }
    assert not failing, failing
    # Signing in needs a session written: at the limit a clear 503, not an error of ours.
    assert late.status_code == 503, late.data[:300]
    assert late.mimetype == "text/html" and "Retry-After" in late.headers
    assert "Data store refuses writes" in late.get_data(as_text=True)
    # Once memory is freed the session goes on (it was not ended by the refused touch).
    assert browser.get("/").status_code == 200


def sign_in_answer(app, key: str):  # type: ignore[no-untyped-def]
    """The answer to a sign-in with ``key`` (its form read first)."""
    browser = app.test_client()
    browser.environ_base.pop("HTTP_AUTHORIZATION", None)
    form = browser.get("/sign-in")
    token = Page(form.get_data(as_text=True)).field("sign-in", "csrf")
    return browser.post(
        "/sign-in", data={"csrf": token, "key": key}, headers={"Accept": "text/html"}
    )  # a browser's form
