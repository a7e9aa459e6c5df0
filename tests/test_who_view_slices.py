"""The worker keeps the per-name views of one tenant from holding up the others, and from
holding up its own folds: a cold rebuild of a tenant's per-domain sums is done in slices with
other tenants folded and refreshed between them, and while a backlog is folded its views are
rebuilt only now and then. Each test drives the real loop (``Worker.work``) on the injected
clock; what the views then show equals what was ingested."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from service.core.traces import IngestWindow, normalize_trace
from service.core.who import DOMAINS
from service.core.who_report import decode_rows
from service.store import insights_store, keys, worker_signals
from service.store import traces as trace_store
from service.store.traces import DedupeWindow
from service.worker.loop import BACKLOG_REFRESH_INTERVALS, REFRESH_DUTY, SLICES_PER_REBUILD
from tests.worker_loop import LoopDriver

BIG, SMALL = "a-big", "b-small"  # the big one comes first in every pass over tenants
DAYS, DOMAINS_PER_DAY = 30, 20


def ingest(redis_client, clock, tenant: str, traces: list[dict]) -> None:
    window = IngestWindow.at(clock.now, 90)
    trace_store.register_tenant(redis_client, tenant)
    trace_store.ingest(redis_client, tenant, [normalize_trace(t, window) for t in traces],
                       DedupeWindow(clock.now, 1))  # fmt: skip
    worker_signals.signal_new_entries(redis_client, tenant)


def trace(tenant: str, number: int, when, domain: str) -> dict:
    return {"id": f"{tenant}-{number}", "timestamp": when.isoformat(), "direction": "outbound",
            "tls_version": "TLS1.2", "recipient_domain": domain}  # fmt: skip


def fresh(redis_client, tenant: str) -> bool:
    """Its mail folded and its views built from that."""
    state = worker_signals.tenant_state(redis_client, tenant)
    return state.version > 0 and not state.views_behind


def stored_rows(redis_client, tenant: str, clock, days: int) -> dict[str, int]:
    today = clock.now.date()
    key = keys.view(tenant, DOMAINS.name, (today - timedelta(days=days - 1)).isoformat(),
                    today.isoformat())  # fmt: skip
    body = redis_client.hget(key, "body")
    assert body is not None
    return {row.name: sum(row.counts) for row in decode_rows(body).rows}


def test_a_big_tenants_cold_rebuild_does_not_hold_up_a_small_tenant(redis_client, settings, clock):
    history = [
        trace(BIG, day * DOMAINS_PER_DAY + n, clock.now - timedelta(days=day), f"d{n}.example")
        for day in range(DAYS)
        for n in range(DOMAINS_PER_DAY)
    ]
    ingest(redis_client, clock, BIG, history)
    ingest(redis_client, clock, SMALL, [trace(SMALL, 0, clock.now, "small.example")])
    loop = LoopDriver(redis_client, settings, clock)
    # A slice sums about one block of days of the big tenant (8 days x 20 domains).
    loop.worker.view_slice_fields = 100

    loop.run(timedelta(seconds=30), until=lambda: fresh(redis_client, SMALL))

    assert fresh(redis_client, SMALL)
    assert not fresh(redis_client, BIG)  # its sums are still being summed, slice by slice
    assert loop.worker.stats.view_slices == 1
    # Nor did the minute's evaluation pass build its rows in one go: it is evaluated with
    # its rebuild.
    assert insights_store.evaluation_marker(redis_client, BIG)[0] is None
    assert stored_rows(redis_client, SMALL, clock, 7) == {"small.example": 1}

    loop.run(timedelta(seconds=30), until=lambda: fresh(redis_client, BIG))

    assert fresh(redis_client, BIG)
    assert insights_store.evaluation_marker(redis_client, BIG)[0] is not None
    assert 2 <= loop.worker.stats.view_slices <= SLICES_PER_REBUILD
    expected = {f"d{n}.example": DAYS for n in range(DOMAINS_PER_DAY)}
    assert stored_rows(redis_client, BIG, clock, 30) == expected
    assert stored_rows(redis_client, BIG, clock, 7) == {name: 7 for name in expected}


def test_views_are_rebuilt_now_and_then_while_a_backlog_is_folded_and_at_its_end(
    redis_client, settings, clock
):
    batches = 12
    for batch in range(batches):  # one stream entry each, folded one per pass
        ingest(redis_client, clock, SMALL,
               [trace(SMALL, batch * 10 + n, clock.now, f"d{n}.example") for n in range(10)])  # fmt: skip
    seen_versions = []

    def slow_fold(tenant: str) -> None:
        # Each fold takes a whole refresh interval: without coalescing every fold is followed
        # by a rebuild of the tenant's views.
        clock.advance(seconds=settings.refresh_seconds)
        seen_versions.append(worker_signals.tenant_state(redis_client, tenant).views_version)

    loop = LoopDriver(redis_client, replace(settings, fold_batch_entries=1), clock)
    loop.worker.after_fold = slow_fold

    loop.run(timedelta(minutes=5), until=lambda: fresh(redis_client, SMALL) and len(
        seen_versions) == batches)  # fmt: skip

    rebuilds_during_backlog = len(set(seen_versions)) - 1  # the first value is before any
    assert 1 <= rebuilds_during_backlog <= -(-batches // BACKLOG_REFRESH_INTERVALS)
    assert fresh(redis_client, SMALL)
    assert stored_rows(redis_client, SMALL, clock, 7) == {
        f"d{n}.example": batches for n in range(10)
    }


def test_views_wait_while_the_folds_fall_behind_the_mail(redis_client, settings, clock):
    """Not only a full batch: more entries arriving during each fold than it took."""
    folds = 12
    ingest(redis_client, clock, SMALL, [trace(SMALL, 0, clock.now, "d0.example")])
    seen_versions, arrived = [], [1]

    def more_arrives_meanwhile(tenant: str) -> None:
        clock.advance(seconds=0.5)  # each fold takes a quarter of a refresh interval
        seen_versions.append(worker_signals.tenant_state(redis_client, tenant).views_version)
        if len(seen_versions) < folds:  # one entry more than the fold took, each of 5 traces
            for _ in range(len(seen_versions) + 1):
                first = 5 * sum(arrived)
                ingest(redis_client, clock, SMALL,
                       [trace(SMALL, first + n, clock.now, f"d{n}.example") for n in range(5)])  # fmt: skip
                arrived.append(1)

    loop = LoopDriver(redis_client, settings, clock)
    loop.worker.after_fold = more_arrives_meanwhile

    loop.run(timedelta(minutes=5), until=lambda: len(seen_versions) >= folds and fresh(
        redis_client, SMALL))  # fmt: skip

    rebuilds_while_behind = len(set(seen_versions[:folds])) - 1
    # Every refresh interval (4 folds) before: 2 or 3; now the first fold's rebuild only.
    assert rebuilds_while_behind <= 1
    assert fresh(redis_client, SMALL)
    assert loop.worker.stats.traces == 1 + 5 * (len(arrived) - 1)


class TickingClock:
    """The test clock, moved on by ``tick`` at every reading: work takes time on it."""

    def __init__(self, clock, tick: timedelta) -> None:
        self.clock, self.tick = clock, tick

    @property
    def now(self):
        return self.clock.now

    def __call__(self):
        self.clock.now += self.tick
        return self.clock.now

    def advance(self, **delta: float) -> None:
        self.clock.advance(**delta)


def test_rebuilds_take_a_bounded_share_of_a_worker_under_steady_mail(redis_client, settings, clock):
    ticking = TickingClock(clock, timedelta(seconds=0.1))
    batches = iter(range(60))

    def one_batch_per_pass() -> bool:  # mail arriving all the time, a little at a time
        batch = next(batches, None)
        if batch is not None:
            ingest(redis_client, clock, SMALL,
                   [trace(SMALL, batch * 5 + n, clock.now, f"d{n}.example") for n in range(5)])  # fmt: skip
        return batch is None

    loop = LoopDriver(redis_client, replace(settings, refresh_seconds=0.5), ticking)
    started = clock.now
    loop.run(timedelta(hours=1), until=one_batch_per_pass)
    elapsed = (clock.now - started).total_seconds()

    stats = loop.worker.stats
    assert stats.traces == 300
    assert stats.views_built > 0
    # Rebuilt at every refresh interval, the views would take a sixth of the time here.
    last_rebuild = 0.5  # a rebuild reads the clock a few times: each reading is 0.1 s
    assert stats.rebuild_seconds <= elapsed / (REFRESH_DUTY + 1) + last_rebuild


def test_new_rule_settings_are_evaluated_while_a_rebuild_waits(
    client, redis_client, settings, clock
):
    def tls10_mail(first: int) -> list[dict]:
        return [{"id": f"rules{first + n}", "timestamp": clock.now.isoformat(),
                 "direction": "inbound", "connector": "Contoso", "connector_type": "partner",
                 "tls_version": "TLS1.0" if n < 12 else "TLS1.2"} for n in range(100)]  # fmt: skip

    def active() -> int:
        return insights_store.count_active(redis_client, "default")

    for batch in range(20):  # a backlog: one stream entry folded per pass
        assert client.post("/api/v1/traces", json=tls10_mail(100 * batch)).status_code == 202
    loop = LoopDriver(redis_client, replace(settings, fold_batch_entries=1), clock)
    loop.worker.after_fold = lambda tenant: clock.advance(seconds=0.5)  # a fold takes time
    passes = []

    def put_rules_at_the_third_pass() -> bool:
        passes.append(1)
        if len(passes) == 3:
            assert active() == 1  # the views and insights of the first fold
            put = client.put("/api/v1/insight-rules/inbound-partner-tls10",
                             json={"enabled": False})  # fmt: skip
            assert put.status_code == 200
        return len(passes) > 3 and active() == 0

    loop.run(timedelta(minutes=5), until=put_rules_at_the_third_pass)

    assert active() == 0
    # Its rule settings read a refresh interval after the last (4 folds), evaluated then.
    assert len(passes) <= 3 + 2 * settings.refresh_seconds + 2
    assert not fresh(redis_client, "default")  # its views wait for the end of the backlog
