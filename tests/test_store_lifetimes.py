"""Every expiry the store sets is a duration from the service's clock, never a moment that
Redis would compare with its own clock: a Redis whose clock differs from the API host's (or a
test's injected clock) keeps each day exactly as long as the service means to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.store import keys
from tests.helpers import post_batches

DAY_MS = 86_400_000


def _end_of_life(day: datetime, retention_days: int) -> datetime:
    midnight = day.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight + timedelta(days=retention_days + 1)


def test_a_days_counters_live_until_one_day_past_retention_by_the_service_clock(
    client, redis_client, run_worker, clock
):
    # A day at the far edge of retention, and today: both measured from the injected clock,
    # which is days or years away from the Redis server's own.
    oldest = clock.now - timedelta(days=89)
    traces = [
        {"id": "old", "timestamp": oldest.isoformat(), "direction": "inbound", "tls_version": "TLS1.2"},
        {"id": "new", "timestamp": clock.now.isoformat(), "direction": "inbound", "tls_version": None},
    ]  # fmt: skip
    assert post_batches(client, traces)["accepted"] == 2
    run_worker()
    for when in (oldest, clock.now):
        day = when.date().isoformat()
        expected_ms = (_end_of_life(when, 90) - clock.now).total_seconds() * 1000
        for key in (keys.day_counts("default", day), keys.day_version("default", day)):
            ttl = redis_client.pttl(key)
            # The fold ran a moment ago by the real clock: allow a minute for a slow machine.
            assert expected_ms - 60_000 <= ttl <= expected_ms, (key, ttl, expected_ms)
    # The oldest day still has two days to live however far the real date is from the clock.
    assert redis_client.pttl(keys.day_counts("default", oldest.date().isoformat())) > DAY_MS


def test_a_day_folded_after_its_end_of_life_is_not_deleted_by_the_fold(
    client, redis_client, run_worker, clock
):
    edge = clock.now - timedelta(days=89, hours=11)
    assert post_batches(client, [{"id": "edge", "timestamp": edge.isoformat(),
                                  "direction": "outbound", "tls_version": "TLS1.3"}])["accepted"] == 1  # fmt: skip
    clock.advance(days=3)  # the worker folds it only after the day left the window
    run_worker()
    assert redis_client.hgetall(keys.day_counts("default", edge.date().isoformat()))
    assert redis_client.pttl(keys.day_counts("default", edge.date().isoformat())) > 0
