"""The worker's own loop keeps insights and views current with no new mail: after a PUT of
rules or definitions, at each UTC day, every minute, and after another worker died between its
fold and its refresh. Each test drives ``Worker.work`` on the injected clock."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from bench.worker_kill import kill_after_fold
from service.core.traces import IngestWindow, normalize_trace
from service.store import aggregates, insights_store, keys, worker_signals
from service.store import traces as trace_store
from service.worker.loop import SWEEP_SECONDS, Worker
from tests.helpers import post_batches
from tests.worker_loop import LoopDriver

_ids = itertools.count()


def mail(clock, connector, total, matching, version="TLS1.0", direction="inbound"):
    return [
        {"id": f"loop{next(_ids)}", "timestamp": clock.now.isoformat(), "direction": direction,
         "connector": connector, "connector_type": "partner",
         "tls_version": version if n < matching else "TLS1.2"}
        for n in range(total)
    ]  # fmt: skip


def active(client) -> list[dict]:
    response = client.get("/api/v1/insights", query_string={"state": "active", "limit": 100})
    assert response.status_code == 200, response.json
    return response.json["items"]


def none_active(redis_client):
    """The loop's stop condition, read from the store (the API's rate limit would answer 429
    to a request on every pass); the test then asserts through the API."""
    return lambda: insights_store.count_active(redis_client, "default") == 0


@pytest.fixture
def loop(redis_client, settings, clock) -> LoopDriver:
    return LoopDriver(redis_client, settings, clock)


def two_refreshes(settings) -> timedelta:
    return timedelta(seconds=2 * settings.refresh_seconds)


def test_a_disabled_rule_resolves_within_two_refresh_intervals_of_the_put(
    client, loop, settings, run_worker, redis_client
):
    post_batches(client, mail(loop.clock, "Contoso", 100, 12))
    run_worker()
    assert len(active(client)) == 1
    loop.run(timedelta(seconds=5))  # the loop's first pass over every tenant is behind it
    put = client.put("/api/v1/insight-rules/inbound-partner-tls10", json={"enabled": False})
    assert put.status_code == 200
    took = loop.run(timedelta(seconds=30), until=none_active(redis_client))
    assert active(client) == []
    assert took <= two_refreshes(settings)
    assert client.get("/api/v1/mailflow/snapshot").json["active_insights"] == 0


def test_a_forced_tls_definition_raises_its_violation_with_no_new_mail(
    client, loop, settings, run_worker, redis_client
):
    post_batches(client, mail(loop.clock, "Bank", 500, 1, version=None, direction="outbound"))
    run_worker()
    assert active(client) == []  # not defined yet: no violation
    loop.run(timedelta(seconds=5))
    put = client.put("/api/v1/connectors/outbound/Bank", json={"type": "partner",
                                                                "forced_tls": True})  # fmt: skip
    assert put.status_code == 200
    took = loop.run(timedelta(seconds=30), until=lambda: not none_active(redis_client)())
    [insight] = active(client)
    assert insight["rule"] == "forced-tls-violation"
    assert took <= two_refreshes(settings)


def test_without_a_signal_the_minute_schedule_still_evaluates(client, loop, redis_client,
                                                              run_worker):  # fmt: skip
    post_batches(client, mail(loop.clock, "Contoso", 100, 12))
    run_worker()
    loop.run(timedelta(seconds=5))
    # Written past the API, as if the PUT's signal had been lost with its process.
    insights_store.put_rule_settings(redis_client, "default", "inbound-partner-tls10",
                                     {"enabled": False, "min_percent": 5.0,
                                      "min_messages": 10})  # fmt: skip
    took = loop.run(timedelta(seconds=120), until=none_active(redis_client))
    assert active(client) == []
    assert timedelta(seconds=50) <= took <= timedelta(seconds=60)


def test_the_utc_day_change_alone_resolves(client, loop, run_worker, redis_client):
    post_batches(client, mail(loop.clock, "Contoso", 50, 10))
    run_worker()
    assert len(active(client)) == 1
    # The traffic day is the oldest of the 7-day window until six days later end.
    traffic_day = loop.clock.now.replace(hour=0, minute=0, second=0, microsecond=0)
    midnight = traffic_day + timedelta(days=7)
    loop.clock.now = midnight - timedelta(seconds=30)
    loop.run(timedelta(seconds=20))
    assert len(active(client)) == 1
    took = loop.run(timedelta(seconds=120), until=none_active(redis_client))
    assert active(client) == []
    # Resolved on the first pass after midnight, not at the minute's pass (00:00:30).
    assert loop.clock.now < midnight + timedelta(seconds=1), took


def _snapshot_messages(client) -> int:
    body = client.get("/api/v1/mailflow/snapshot").json
    return sum(direction["messages"] for direction in body["directions"].values())


def test_a_worker_killed_between_fold_and_refresh_is_made_good_by_another(
    client, loop, settings, redis_server, redis_client, run_worker
):
    post_batches(client, mail(loop.clock, "Contoso", 1, 0))
    run_worker()
    assert _snapshot_messages(client) == 1
    post_batches(client, mail(loop.clock, "Contoso", 2, 0))
    assert kill_after_fold(redis_server.url, loop.clock.now) == "default"
    # The fold committed, the refresh never ran: the counters say 3, the view still 1.
    assert aggregates.data_version(redis_client, "default") == 2
    assert redis_client.xlen(keys.stream("default")) == 0
    assert _snapshot_messages(client) == 1
    took = loop.run(timedelta(seconds=30), until=lambda: _snapshot_messages(client) == 3)
    assert _snapshot_messages(client) == 3
    assert took <= two_refreshes(settings)


def _xreadgroup_calls(client) -> int:
    return int(client.info("commandstats").get("cmdstat_xreadgroup", {}).get("calls", 0))


def test_an_idle_worker_reads_streams_only_on_its_sweep(client, loop, redis_server, redis_client,
                                                        run_worker):  # fmt: skip
    if not hasattr(redis_server, "port"):
        pytest.skip("counts one server's commands")
    for n in range(20):
        trace_store.register_tenant(redis_client, f"idle{n}")
    post_batches(client, mail(loop.clock, "Contoso", 1, 0))
    run_worker()
    loop.run(timedelta(seconds=1))  # the first pass sweeps every stream
    before = _xreadgroup_calls(redis_client)
    loop.run(timedelta(seconds=10))  # 200 idle passes, no sweep due
    assert _xreadgroup_calls(redis_client) - before == 0


def test_new_mail_is_read_on_the_next_pass_and_a_lost_signal_on_the_sweep(
    client, loop, settings, redis_client, clock
):
    loop.run(timedelta(seconds=1))
    post_batches(client, mail(clock, "Contoso", 2, 0))  # the API signals the tenant
    took = loop.run(timedelta(seconds=30),
                    until=lambda: aggregates.data_version(redis_client, "default") == 1)  # fmt: skip
    assert took <= timedelta(seconds=0.1)
    # Appended past the API (as if it crashed before its signal): the sweep finds it.
    window = IngestWindow.at(clock.now, settings.retention_days)
    trace = normalize_trace(mail(clock, "Contoso", 1, 0)[0], window)
    trace_store.ingest(redis_client, "default", [trace], trace_store.DedupeWindow(clock.now, 7))
    took = loop.run(timedelta(seconds=60),
                    until=lambda: aggregates.data_version(redis_client, "default") == 2)  # fmt: skip
    assert aggregates.data_version(redis_client, "default") == 2
    assert took <= timedelta(seconds=min(SWEEP_SECONDS, settings.claim_idle_seconds / 2))


def test_a_check_never_clears_a_mark_set_after_it_read_it(redis_client):
    worker_signals.request_check(redis_client, "raced", 1000)
    [(tenant, score)] = worker_signals.due_checks(redis_client, 1000, 10)
    assert tenant == "raced"
    # Another worker reads entries and marks the tenant again while this one checks it, in
    # the same millisecond: the mark must survive the first check's end.
    worker_signals.request_check(redis_client, "raced", 1000)
    assert not worker_signals.finish_check(redis_client, "raced", score)
    [(_, newer)] = worker_signals.due_checks(redis_client, 2000, 10)
    assert newer > score
    assert worker_signals.finish_check(redis_client, "raced", newer)
    assert worker_signals.due_checks(redis_client, 1e15, 10) == []


def test_views_are_not_marked_current_while_a_fold_is_in_flight(client, loop, redis_client,
                                                                settings, run_worker):  # fmt: skip
    post_batches(client, mail(loop.clock, "Contoso", 1, 0))
    run_worker()
    post_batches(client, mail(loop.clock, "Contoso", 2, 0))
    slow = Worker(redis_client, settings, clock=loop.clock, name="slow")
    in_hand = slow._read_new("default")  # read, pending, not folded yet
    worker_signals.request_check(redis_client, "default", 0)
    loop.run(timedelta(seconds=3))  # nothing to rebuild yet, but the mark must stay
    assert worker_signals.due_checks(redis_client, 1e15, 10) != []
    aggregates.fold(
        redis_client, "default", "slow", in_hand, settings.retention_days, loop.clock.now
    )
    # The slow worker dies here, before its refresh: the mark it left gets the views rebuilt.
    took = loop.run(timedelta(seconds=30), until=lambda: _snapshot_messages(client) == 3)
    assert _snapshot_messages(client) == 3
    assert took <= two_refreshes(settings)
