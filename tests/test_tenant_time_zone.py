"""A tenant's time zone: its traces count on their local days, its windows end on its local
today, and it is set and shown by the admin API and the CLI (docs/tenants.md).

Runs on a single Redis and (``make test``) on a Redis Cluster: the zone lives in the tenant's
hash tag. Every test drives the real worker loop on the injected clock.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from service.cli.commands import cli
from service.core.trace_batch import accept_valid_batch
from service.core.traces import IngestWindow, normalize_trace
from service.store import keys
from service.store.tenant_zone import ZONE_CACHE_SECONDS, ZoneCache, store_zone
from tests.helpers import post_batches
from tests.html_cells import Page, sign_in
from tests.worker_loop import LoopDriver

BERLIN = ZoneInfo("Europe/Berlin")
_ids = itertools.count()


@pytest.fixture
def loop(redis_client, settings, clock) -> LoopDriver:
    return LoopDriver(redis_client, settings, clock)


def trace(when: datetime, **extra: object) -> dict[str, object]:
    return {"id": f"tz{next(_ids)}", "timestamp": when.isoformat(), "direction": "inbound",
            "tls_version": "TLS1.2", **extra}  # fmt: skip


def fold(loop: LoopDriver) -> None:
    """The real loop, until nothing waits to be folded or checked (a few seconds of clock)."""
    loop.run(timedelta(seconds=5))


def per_day(client, days: int = 3) -> dict[str, int]:
    """Messages per day of the connector report grouped by day."""
    response = client.get("/api/v1/connectors", query_string={"group_by": "day",
                                                               "days": days})  # fmt: skip
    assert response.status_code == 200, response.json
    found: dict[str, int] = {}
    for row in response.json["rows"]:
        found[row["date"]] = found.get(row["date"], 0) + row["messages"]
    return found


def snapshot(client, days: int = 1) -> dict[str, object]:
    response = client.get("/api/v1/mailflow/snapshot", query_string={"days": days})
    assert response.status_code == 200, response.json
    return response.json


def messages(document: dict[str, object]) -> int:
    directions = document["directions"]
    assert isinstance(directions, dict)
    return sum(direction["messages"] for direction in directions.values())


def set_zone(client, zone: str):  # type: ignore[no-untyped-def]
    return client.put("/api/v1/tenant/time-zone", json={"time_zone": zone})


def local_half_past_midnight(now: datetime, zone: ZoneInfo) -> datetime:
    """00:30 of the local today in ``zone``: the UTC day before, for a zone east of UTC."""
    return now.astimezone(zone).replace(hour=0, minute=30, second=0, microsecond=0)


def test_berlin_counts_half_past_midnight_on_the_local_day_and_utc_stays_utc(
    app, make_key, loop
) -> None:
    berlin, utc = app.test_client(), app.test_client()
    utc.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {make_key('utc')}"
    assert set_zone(berlin, "Europe/Berlin").status_code == 200
    when = local_half_past_midnight(loop.clock.now, BERLIN)
    local_day = when.date()
    utc_day = when.astimezone(ZoneInfo("UTC")).date()
    assert utc_day == local_day - timedelta(days=1)  # the case the issue names
    post_batches(berlin, [trace(when)])
    post_batches(utc, [trace(when)])  # the same instant, for a tenant that keeps UTC days
    fold(loop)

    assert per_day(berlin) == {local_day.isoformat(): 1}
    assert messages(snapshot(berlin)) == 1  # today is the local today
    assert snapshot(berlin)["window"]["end"] == local_day.isoformat()
    assert per_day(utc) == {utc_day.isoformat(): 1}
    assert messages(snapshot(utc)) == 0  # yesterday, in UTC


def test_a_zone_ahead_of_utc_has_its_today_first(app, loop) -> None:
    client = app.test_client()
    loop.clock.now = loop.clock.now.replace(hour=23, minute=30)  # Berlin: after midnight
    local_today = loop.clock.now.astimezone(BERLIN).date()
    assert local_today == loop.clock.now.date() + timedelta(days=1)
    assert snapshot(client)["window"]["end"] == loop.clock.now.date().isoformat()
    assert set_zone(client, "Europe/Berlin").status_code == 200
    post_batches(client, [trace(loop.clock.now)])
    fold(loop)
    document = snapshot(client)
    assert document["window"]["end"] == local_today.isoformat()
    assert messages(document) == 1
    tls = client.get("/api/v1/mailflow/tls", query_string={"days": 7}).json
    assert tls["window"]["end"] == local_today.isoformat()
    # A window may end on the local today, not after it.
    late = local_today + timedelta(days=1)
    refused = client.get("/api/v1/mailflow/snapshot",
                         query_string={"start": late.isoformat(), "end": late.isoformat()})  # fmt: skip
    assert refused.status_code == 422
    assert client.get("/api/v1/mailflow/snapshot",
                      query_string={"start": local_today.isoformat(),
                                    "end": local_today.isoformat()}).status_code == 200  # fmt: skip


def test_an_insight_window_ends_on_the_local_today(app, loop) -> None:
    client = app.test_client()
    assert set_zone(client, "Europe/Berlin").status_code == 200
    loop.clock.now = loop.clock.now.replace(hour=23, minute=30)
    local_today = loop.clock.now.astimezone(BERLIN).date()
    partner = {"connector": "Contoso", "connector_type": "partner"}
    post_batches(client, [trace(loop.clock.now, **partner, tls_version="TLS1.0")
                          for _ in range(20)])  # fmt: skip
    fold(loop)
    response = client.get("/api/v1/insights", query_string={"state": "active"})
    [insight] = response.json["items"]
    assert insight["rule"] == "inbound-partner-tls10"
    assert insight["window"]["end"] == local_today.isoformat()


def test_forced_tls_today_and_yesterday_are_local_days(app, loop) -> None:
    """The forced-TLS rule looks at today and yesterday: plaintext mail of the local day
    before yesterday (UTC: yesterday) no longer counts."""
    client = app.test_client()
    put = client.put("/api/v1/connectors/outbound/Bank", json={"type": "partner",
                                                                "forced_tls": True})  # fmt: skip
    assert put.status_code == 200
    assert set_zone(client, "Europe/Berlin").status_code == 200
    # 00:30 in Berlin (UTC: still the day before), and mail of 23:30 two local days before.
    now = local_half_past_midnight(loop.clock.now, BERLIN) + timedelta(days=1)
    loop.clock.now = now.astimezone(ZoneInfo("UTC"))
    before_yesterday_local = now - timedelta(hours=25)
    assert (now.date() - before_yesterday_local.astimezone(BERLIN).date()).days == 2
    assert (
        loop.clock.now.date() - before_yesterday_local.astimezone(ZoneInfo("UTC")).date()
    ).days == 1
    post_batches(client, [trace(before_yesterday_local, direction="outbound", connector="Bank",
                                tls_version=None)])  # fmt: skip
    fold(loop)
    rules = [i["rule"] for i in client.get("/api/v1/insights").json["items"]]
    assert "forced-tls-violation" not in rules
    # In UTC it would be yesterday's mail, a violation: the same store, the tenant back on UTC.
    assert set_zone(client, "UTC").status_code == 200
    loop.run(timedelta(seconds=70))
    rules = [i["rule"] for i in client.get("/api/v1/insights").json["items"]]
    assert "forced-tls-violation" in rules


def _next_transition(after: date) -> date:
    """The first day after ``after`` whose length in Berlin is not 24 hours."""
    day = after
    for _ in range(400):
        day += timedelta(days=1)
        start = datetime.combine(day, datetime.min.time(), BERLIN)
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), BERLIN)
        if end.utcoffset() != start.utcoffset():
            return day
    raise AssertionError("no DST change within a year")


def test_a_dst_day_holds_its_23_or_25_hours(app, loop, redis_client) -> None:
    client = app.test_client()
    assert set_zone(client, "Europe/Berlin").status_code == 200
    dst_day = _next_transition(loop.clock.now.date())
    first = datetime.combine(dst_day, datetime.min.time(), BERLIN) + timedelta(minutes=30)
    next_day = datetime.combine(dst_day + timedelta(days=1), datetime.min.time(), BERLIN)
    last = next_day - timedelta(minutes=30)  # 23:30 local, 22.5 or 24.5 hours later
    assert (last.timestamp() - first.timestamp()) / 3600 in (22.0, 24.0)
    loop.clock.now = (next_day + timedelta(hours=12)).astimezone(ZoneInfo("UTC"))
    post_batches(client, [trace(first), trace(last), trace(next_day + timedelta(minutes=30))])
    fold(loop)
    assert per_day(client) == {dst_day.isoformat(): 2,
                               (dst_day + timedelta(days=1)).isoformat(): 1}  # fmt: skip
    # The day's counters live until one local day past retention (a duration from the clock).
    ttl = redis_client.pttl(keys.day_counts("default", dst_day.isoformat()))
    assert ttl > 0


def test_the_admin_api_sets_shows_and_refuses(app, make_key, caplog) -> None:
    client = app.test_client()
    assert client.get("/api/v1/tenant").json["time_zone"] == "UTC"
    with caplog.at_level(logging.WARNING, logger="mailflow.admin"):
        response = set_zone(client, "Europe/Berlin")
    assert response.status_code == 200
    assert response.json == {"tenant": "default", "time_zone": "Europe/Berlin",
                             "previous": "UTC"}  # fmt: skip
    assert any(getattr(r, "admin_action", None) == "tenant.time_zone" for r in caplog.records)
    assert client.get("/api/v1/tenant").json["time_zone"] == "Europe/Berlin"
    for bad in ("Mars/Olympus_Mons", "../../etc/passwd", "", "x" * 200):
        refused = set_zone(client, bad)
        assert refused.status_code == 422, bad
        assert refused.content_type == "application/problem+json"
        assert refused.json["errors"][0]["field"] == "time_zone"
    assert set_zone(client, 5).status_code == 422  # type: ignore[arg-type]
    assert client.get("/api/v1/tenant").json["time_zone"] == "Europe/Berlin"
    reader = app.test_client()
    reader.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {make_key('default', 'read')}"
    assert set_zone(reader, "UTC").status_code == 403
    assert set_zone(client, "UTC").json["previous"] == "Europe/Berlin"


def test_the_cli_sets_shows_and_refuses(redis_server, redis_client, monkeypatch) -> None:
    monkeypatch.setenv("MAILFLOW_REDIS_URL", redis_server.url)
    runner = CliRunner()
    done = runner.invoke(cli, ["tenants", "set-time-zone", "acme", "Europe/Berlin"])
    assert done.exit_code == 0, done.output
    assert "Europe/Berlin" in done.stderr
    shown = runner.invoke(cli, ["tenants", "show", "acme"])
    assert "time zone Europe/Berlin" in shown.output
    as_json = runner.invoke(cli, ["tenants", "show", "acme", "--json"])
    assert json.loads(as_json.output)["time_zone"] == "Europe/Berlin"
    refused = runner.invoke(cli, ["tenants", "set-time-zone", "acme", "Europe/Atlantis"])
    assert refused.exit_code == 2
    assert "unknown time zone" in refused.output
    assert redis_client.get(keys.time_zone("acme")) == b"Europe/Berlin"


def test_both_ingest_paths_give_the_local_day(clock) -> None:
    """The all-valid batch path and the exact per-record path name the same local days,
    whatever offset a timestamp is written with."""
    window = IngestWindow.at(clock.now, 90, BERLIN)
    when = local_half_past_midnight(clock.now, BERLIN)
    stamps = [when, when.astimezone(ZoneInfo("UTC")), when.astimezone(ZoneInfo("Asia/Tokyo")),
              when - timedelta(hours=1)]  # fmt: skip
    records = [trace(stamp) for stamp in stamps]
    batch = accept_valid_batch(json.dumps(records).encode(), False, 100, window)
    assert batch is not None
    exact = [normalize_trace(record, window).day for record in records]
    local = when.date()
    assert batch.days == exact == [local.isoformat()] * 3 + [(local - timedelta(1)).isoformat()]
    assert window.earliest == datetime.combine(local - timedelta(days=89), datetime.min.time(),
                                               BERLIN)  # fmt: skip


@pytest.mark.parametrize("zone_name", ["Europe/Berlin", "Asia/Kolkata", "America/St_Johns",
                                       "Australia/Lord_Howe", "Africa/Casablanca"])  # fmt: skip
def test_the_batch_path_names_the_exact_local_days_across_offset_changes(clock, zone_name):
    """Random batches around the zone's offset changes, if it has any (and exact local
    midnights, and a fraction rounding up to one): the all-valid path's days are the exact
    path's."""
    zone = ZoneInfo(zone_name)
    window = IngestWindow(clock.now - timedelta(days=400), clock.now + timedelta(days=400), zone)
    rng = random.Random(zone_name)
    transitions = [day for day in (clock.now.date() + timedelta(days=n) for n in range(-380, 380))
                   if _offset_changes(day, zone)] or [clock.now.date()]  # fmt: skip
    for _ in range(40):
        centre = datetime.combine(rng.choice(transitions), datetime.min.time(), zone)
        span = rng.choice([3600, 86400, 6 * 86400, 8 * 86400])
        stamps = [centre + timedelta(seconds=rng.uniform(-span, span)) for _ in range(50)]
        midnight = datetime.combine(centre.date(), datetime.min.time(), zone)
        stamps += [midnight, midnight - timedelta(microseconds=300)]
        records = [trace(stamp.astimezone(rng.choice([zone, ZoneInfo("UTC")])))
                   for stamp in stamps]  # fmt: skip
        batch = accept_valid_batch(json.dumps(records).encode(), False, 100, window)
        assert batch is not None
        assert batch.days == [normalize_trace(record, window).day for record in records]


def _offset_changes(day: date, zone: ZoneInfo) -> bool:
    start = datetime.combine(day, datetime.min.time(), zone)
    return start.utcoffset() != (start + timedelta(days=1)).utcoffset()


def test_a_worker_sees_a_change_within_seconds_and_reads_one_key_while_none_comes(
    redis_client, clock
) -> None:
    seconds = [0.0]
    cache = ZoneCache(redis_client, clock=lambda: seconds[0])
    assert cache.zone("a") is UTC and cache.zone("b") is UTC
    reads = _count_reads(redis_client, lambda: [cache.zone(t) for t in ("a", "b") * 50])
    assert reads == 0  # within the check interval: memory only
    seconds[0] += ZONE_CACHE_SECONDS + 1
    reads = _count_reads(redis_client, lambda: [cache.zone(t) for t in ("a", "b") * 50])
    assert reads == 1  # the version, once: no tenant's zone again
    store_zone(redis_client, "a", "Europe/Berlin")
    assert cache.zone("a") is UTC  # until the next check
    seconds[0] += ZONE_CACHE_SECONDS + 1
    assert cache.zone("a") == BERLIN
    assert cache.zone("b") is UTC


def _count_reads(client, work) -> int:  # type: ignore[no-untyped-def]
    before = _commands(client)
    work()
    return _commands(client) - before - 1  # the INFO of the second count is one


def _commands(client) -> int:  # type: ignore[no-untyped-def]
    stats = client.info("stats")
    return int(stats["total_commands_processed"])


def test_a_reset_takes_local_days(app, loop) -> None:
    client = app.test_client()
    assert set_zone(client, "Europe/Berlin").status_code == 200
    when = local_half_past_midnight(loop.clock.now, BERLIN)
    post_batches(client, [trace(when)])
    fold(loop)
    utc_day = when.astimezone(UTC).date().isoformat()
    local_day = when.date().isoformat()
    response = client.post("/api/v1/tenant/reset", json={"start": utc_day, "end": utc_day})
    assert response.json["messages_removed"] == 0  # the UTC day holds nothing of it
    response = client.post("/api/v1/tenant/reset", json={"start": local_day, "end": local_day})
    assert response.json["messages_removed"] == 1
    assert per_day(client) == {}


def test_blocked_and_per_domain_counters_take_the_local_day_too(app, make_key, loop) -> None:
    berlin, utc = app.test_client(), app.test_client()
    utc.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {make_key('utc')}"
    assert set_zone(berlin, "Europe/Berlin").status_code == 200
    when = local_half_past_midnight(loop.clock.now, BERLIN)
    traces = [trace(when, direction="outbound", tls_version=None, outcome="blocked",
                    blocked_reason="no STARTTLS", recipient_domain="example.net",
                    tls_policy="encrypt"),
              trace(when, sender_domain="partner.example")]  # fmt: skip
    for client in (berlin, utc):
        post_batches(client, [dict(t, id=f"{t['id']}-{id(client)}") for t in traces])
    fold(loop)

    def today(client) -> tuple[list[str], list[str]]:  # type: ignore[no-untyped-def]
        blocked = client.get("/api/v1/mailflow/blocked", query_string={"days": 1}).json
        domains = client.get("/api/v1/domains", query_string={"days": 1}).json
        return ([r["date"] for r in blocked["records"]],
                [r["domain"] for r in domains["rows"] if r["domain"]])  # fmt: skip

    assert today(berlin) == ([when.date().isoformat()], ["partner.example"])
    assert today(utc) == ([], [])  # the UTC day before


def test_the_dashboard_shows_the_local_window_and_names_the_zone(app, make_key, loop) -> None:
    loop.clock.now = loop.clock.now.replace(hour=23, minute=30)  # Berlin: the next day
    post_batches(app.test_client(), [trace(loop.clock.now)])
    fold(loop)
    browser = sign_in(app, make_key("default", "read"))
    first = browser.get("/")
    assert "(UTC)" in first.get_data(as_text=True)
    assert set_zone(app.test_client(), "Europe/Berlin").status_code == 200
    for _ in range(2):  # the widget's lane answers the second request
        page = browser.get("/")
        assert page.status_code == 200
        html = Page(page.get_data(as_text=True))
        assert html.texts("time", "window-end") == [
            loop.clock.now.astimezone(BERLIN).date().isoformat()
        ]
        assert "(Europe/Berlin)" in html.html
        assert page.headers["ETag"] != first.headers["ETag"]
