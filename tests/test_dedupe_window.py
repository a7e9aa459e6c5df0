"""An id is one trace for MAILFLOW_DEDUPE_DAYS after its first acceptance, whatever day its
timestamp names; the window is measured on the service's clock, not on Redis's."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from service.app import create_app
from service.store import keys, seen_buckets
from tests.conftest import Clock


def trace(trace_id: str, when: datetime, tls: str = "TLSv1.2") -> dict:
    return {"id": trace_id, "timestamp": when.isoformat(), "direction": "inbound",
            "tls_version": tls}  # fmt: skip


def post(client, traces: list[dict]) -> tuple[int, int]:
    response = client.post("/api/v1/traces", json=traces)
    assert response.status_code == 202, response.json
    return response.json["accepted"], response.json["duplicates"]


def messages(client) -> int:
    body = client.get("/api/v1/mailflow/snapshot?days=30").json
    return sum(summary["messages"] for summary in body["directions"].values())


def two_utc_days(clock) -> tuple[datetime, datetime]:
    """The same moment as a log read with two time zones would give it: 11:00 and 23:00 of
    the day before (clock at 12:00 UTC)."""
    late = clock.now - timedelta(hours=1)
    early = clock.now - timedelta(hours=13)
    assert late.date() != early.date()
    return late, early


def test_an_id_on_two_utc_days_in_two_batches_counts_once(client, run_worker, clock):
    late, early = two_utc_days(clock)
    assert post(client, [trace("a", late)]) == (1, 0)
    assert post(client, [trace("a", early, "TLSv1")]) == (0, 1)  # all distinct: the fast path
    assert post(client, [trace("a", early), trace("b", early), trace("b", late)]) == (1, 2)
    run_worker()
    assert messages(client) == 2


def test_an_id_on_two_utc_days_in_one_batch_counts_once(client, run_worker, clock):
    late, early = two_utc_days(clock)
    assert post(client, [trace("a", late), trace("a", early, "TLSv1")]) == (1, 1)
    run_worker()
    body = client.get("/api/v1/mailflow/snapshot").json
    assert body["directions"]["inbound"]["tls"]["TLS1.2"]["messages"] == 1
    assert messages(client) == 1


def test_the_window_runs_from_the_first_acceptance_on_the_service_clock(
    client, run_worker, clock, redis_client
):
    """Known until DEDUPE_DAYS have passed (a resend does not extend that); new once the
    injected clock is past the window, although the old bucket still exists in Redis."""
    sent_at = clock.now
    first_bucket = seen_buckets.day_buckets("default", sent_at.date().isoformat())
    assert post(client, [trace("a", sent_at)]) == (1, 0)
    clock.advance(days=3)
    assert post(client, [trace("a", sent_at)]) == (0, 1)  # another acceptance day's lookup
    clock.advance(days=4, seconds=-1)  # 7 days after the first acceptance, less a second
    assert post(client, [trace("a", sent_at), trace("b", sent_at)]) == (1, 1)
    clock.advance(days=1, seconds=1)  # 8 days: past the window of the first acceptance
    assert redis_client.exists(*first_bucket)  # Redis has not expired it; the lookup ignores it
    assert post(client, [trace("a", sent_at)]) == (1, 0)
    assert post(client, [trace("b", sent_at)]) == (0, 1)  # b was first accepted a day later
    run_worker()
    assert messages(client) == 3


@pytest.mark.parametrize("dedupe_days", [1, 2])
def test_the_window_is_mailflow_dedupe_days(redis_server, clock, make_key, closing, dedupe_days):
    app = closing(create_app({"redis_url": redis_server.url, "CLOCK": clock,
                              "dedupe_days": dedupe_days}))  # fmt: skip
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {make_key('default')}"
    sent_at = clock.now
    assert post(client, [trace("a", sent_at)]) == (1, 0)
    clock.advance(days=dedupe_days)
    assert post(client, [trace("a", sent_at)]) == (0, 1)
    clock.advance(days=1)
    assert post(client, [trace("a", sent_at)]) == (1, 0)


def test_buckets_expire_by_a_duration_from_the_service_clock(client, clock, redis_client):
    """Today's bucket lives until no lookup reads it, 7 days after today ends, plus a margin
    of an hour: a duration counted from the injected clock, whatever Redis's clock says."""
    assert post(client, [trace("a", clock.now)]) == (1, 0)
    (bucket,) = redis_client.scan_iter(
        match=f"{keys.seen('default', clock.now.date().isoformat())}:*"
    )
    ttl = redis_client.ttl(bucket)
    today_ends = datetime.combine(clock.now.date() + timedelta(days=1), time(), UTC)
    last_read_ends = today_ends + timedelta(days=7)
    assert ttl == pytest.approx((last_read_ends - clock.now).total_seconds() + 3600, abs=5)


def test_hosts_whose_clocks_straddle_midnight_see_each_others_ids(
    redis_server, clock, make_key, closing
):
    """An API host half a second ahead has written into tomorrow's bucket; a host half a second
    behind, still on today, finds the id there."""
    midnight = datetime.combine(clock.now.date() + timedelta(days=1), time(), UTC)
    ahead = Clock(midnight + timedelta(seconds=0.5))
    behind = Clock(midnight - timedelta(seconds=0.5))
    key = make_key("default")
    hosts = []
    for host_clock in (ahead, behind):
        app = closing(create_app({"redis_url": redis_server.url, "CLOCK": host_clock}))
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        hosts.append(client)
    sent_at = midnight - timedelta(hours=1)
    assert post(hosts[0], [trace("a", sent_at)]) == (1, 0)
    assert post(hosts[1], [trace("a", sent_at)]) == (0, 1)
    assert post(hosts[1], [trace("a", sent_at), trace("a", sent_at)]) == (0, 2)  # exact path
