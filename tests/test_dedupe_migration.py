"""Converting a tenant's dedupe window from 0.1.0's seen-sets (whole digests, one set per day
the traces name) to the buckets: in bounded steps, carried on after a stop, losing no id."""

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


def old_set(redis_client, clock, days_ago: int, batch: list[dict], lives_days: float) -> str:
    """The ids of ``batch`` as 0.1.0 kept them: in the set named by the traces' day
    (``days_ago``), living ``lives_days`` more (the window after its last addition)."""
    day = (clock.now - timedelta(days=days_ago)).date().isoformat()
    key = keys.seen(TENANT, day)
    redis_client.sadd(key, *digests(clock, batch))
    redis_client.pexpire(key, int(lives_days * 86400 * 1000))
    return key


def today_buckets(redis_client, clock) -> list[str]:
    today = clock.now.date().isoformat()
    return [name for name in seen_buckets.day_buckets(TENANT, today) if redis_client.exists(name)]


def test_old_sets_move_into_todays_buckets_in_bounded_steps(redis_client, clock):
    # A set named by today, one by 6 days ago and one by 40 days ago (a log of last month read
    # yesterday): what counts is how long each still lives, not the day in its name.
    batches = [records(clock, "t", 2500), records(clock, "b", 1200), records(clock, "o", 300)]
    kept = [old_set(redis_client, clock, 0, batches[0], 7),
            old_set(redis_client, clock, 6, batches[1], 1),
            old_set(redis_client, clock, 40, batches[2], 6)]  # fmt: skip
    steps = []
    while True:
        progress = dedupe_migration.convert_tenant(redis_client, TENANT, clock.now, 7, budget=1000)
        steps.append(progress)
        left = sum(redis_client.scard(key) for key in kept)
        in_buckets = sum(redis_client.scard(name) for name in today_buckets(redis_client, clock))
        assert left + in_buckets == 4000  # every id in one place or the other, after each call
        assert len(steps) <= 10
        if progress.done:
            break
        assert 1000 <= progress.moved < 1000 + dedupe_migration.STEP  # a step at most over
    assert sum(step.moved for step in steps) == 4000
    assert sum(step.sets for step in steps) == 3
    assert not redis_client.exists(*kept)
    assert len(steps) >= 4  # 4,000 ids at most about 1,000 a call
    # Every converted id is known to the ingest scripts, the 40-day-old set's too.
    assert ingest(redis_client, clock, [r for batch in batches for r in batch]) == (0, 4000)


def test_buckets_live_at_least_as_long_as_the_old_sets_would_have(redis_client, clock):
    old_set(redis_client, clock, 2, records(clock, "x", 10), 3)
    assert dedupe_migration.convert_tenant(redis_client, TENANT, clock.now, 7).done
    found = today_buckets(redis_client, clock)
    assert found
    expected = 3 * 86400 + trace_store.BUCKET_MARGIN_SECONDS
    for name in found:
        assert abs(redis_client.ttl(name) - expected) <= 3
    # A bucket already living longer (today's, after new mail) keeps its lifetime.
    for name in found:
        redis_client.expire(name, 8 * 86400)
    old_set(redis_client, clock, 5, records(clock, "x", 10), 1)  # the same ids, once more
    assert dedupe_migration.convert_tenant(redis_client, TENANT, clock.now, 7).done
    for name in found:
        assert redis_client.ttl(name) > 7 * 86400


def test_a_conversion_stopped_midway_carries_on(redis_client, clock):
    batch = records(clock, "s", 3000)
    old_set(redis_client, clock, 1, batch, 6)
    first = dedupe_migration.convert_tenant(redis_client, TENANT, clock.now, 7, budget=1)
    assert (first.moved, first.done) == (1000, False)
    rest = dedupe_migration.convert_tenant(redis_client, TENANT, clock.now, 7)
    assert rest.done and first.moved + rest.moved == 3000
    assert ingest(redis_client, clock, batch[1:]) == (0, 2999)
