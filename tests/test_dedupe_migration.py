"""Converting a tenant's dedupe window from one set of digests per acceptance day (the format
before the buckets) to the buckets: in bounded steps, carried on after a stop, losing no id."""

from __future__ import annotations

from datetime import timedelta

from service.core.traces import IngestWindow, normalize_trace
from service.store import dedupe_migration, keys, seen_buckets
from service.store import traces as trace_store

TENANT = "default"


def records(clock, prefix: str, n: int) -> list[dict]:
    when = (clock.now - timedelta(hours=1)).isoformat()
    return [{"id": f"{prefix}{i}", "timestamp": when, "direction": "inbound",
             "tls_version": "TLSv1.2"} for i in range(n)]  # fmt: skip


def digests(clock, batch: list[dict]) -> list[bytes]:
    window = IngestWindow.at(clock.now, 90)
    return [normalize_trace(record, window).digest for record in batch]


def ingest(redis_client, clock, batch: list[dict]) -> tuple[int, int]:
    window = IngestWindow.at(clock.now, 90)
    trace_store.register_tenant(redis_client, TENANT)
    result = trace_store.ingest(redis_client, TENANT, [normalize_trace(r, window) for r in batch],
                                trace_store.DedupeWindow(clock.now, 7))  # fmt: skip
    return result.accepted, result.duplicates


def old_set(redis_client, clock, days_ago: int, batch: list[dict]) -> str:
    """The ids of ``batch`` as the format before kept them: accepted ``days_ago``."""
    day = (clock.now - timedelta(days=days_ago)).date().isoformat()
    key = keys.seen(TENANT, day)
    redis_client.sadd(key, *digests(clock, batch))
    redis_client.expire(key, 9 * 86400)
    return key


def test_old_sets_move_into_buckets_in_bounded_steps(redis_client, clock):
    today, before = records(clock, "t", 2500), records(clock, "b", 1200)
    kept = [old_set(redis_client, clock, 0, today), old_set(redis_client, clock, 6, before)]
    over = old_set(redis_client, clock, 9, records(clock, "o", 300))  # its window is over
    days = [(clock.now - timedelta(days=n)).date().isoformat() for n in (0, 6)]
    steps = []
    while True:
        progress = dedupe_migration.convert_tenant(redis_client, TENANT, clock.now, 7, budget=1000)
        steps.append(progress)
        left = sum(redis_client.scard(key) for key in kept)
        in_buckets = sum(redis_client.scard(name)
                         for day in days for name in seen_buckets.day_buckets(TENANT, day))  # fmt: skip
        assert left + in_buckets == 3700  # every id in one place or the other, after each call
        assert len(steps) <= 10
        if progress.done:
            break
        assert (
            1000 <= progress.moved < 1000 + dedupe_migration.STEP
        )  # the budget, a step at most over
    assert sum(step.moved for step in steps) == 3700
    assert sum(step.dropped_days for step in steps) == 1
    assert not redis_client.exists(*kept, over)
    assert len(steps) >= 4  # 3,700 ids at most about 1,000 a call
    # Every converted id is known to the ingest scripts; the dropped day's ids are new.
    assert ingest(redis_client, clock, today + before) == (0, 3700)
    assert ingest(redis_client, clock, records(clock, "o", 300)) == (300, 0)


def test_buckets_live_as_long_as_ingest_would_keep_them(redis_client, clock):
    old_set(redis_client, clock, 2, records(clock, "x", 10))
    assert dedupe_migration.convert_tenant(redis_client, TENANT, clock.now, 7).done
    day = clock.now.date() - timedelta(days=2)
    found = [name for name in seen_buckets.day_buckets(TENANT, day.isoformat())
             if redis_client.exists(name)]  # fmt: skip
    assert found
    window = trace_store.DedupeWindow(clock.now - timedelta(days=2), 7)
    expected = window.bucket_seconds - 2 * 86400
    for name in found:
        assert abs(redis_client.ttl(name) - expected) <= 3


def test_a_conversion_stopped_midway_carries_on(redis_client, clock):
    batch = records(clock, "s", 3000)
    old_set(redis_client, clock, 1, batch)
    first = dedupe_migration.convert_tenant(redis_client, TENANT, clock.now, 7, budget=1)
    assert (first.moved, first.done) == (1000, False)
    rest = dedupe_migration.convert_tenant(redis_client, TENANT, clock.now, 7)
    assert rest.done and first.moved + rest.moved == 3000
    assert ingest(redis_client, clock, batch[1:]) == (0, 2999)
