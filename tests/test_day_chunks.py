"""Reads of many days split into bounded calls still return exactly the counters of every day."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from bench.at_limits import TENANT, populate
from service.core.connectors import unpack
from service.core.windows import Window
from service.store import aggregates, connectors_store, day_chunks, keys, window_sums

CONNECTORS, DAYS = 1000, 12  # 6,000 fields a day: one call per day


def truth(redis_client, days):
    return {day: {f.decode(): int(n) for f, n in
                  redis_client.hgetall(keys.day_counts(TENANT, day)).items()}
            for day in days}  # fmt: skip


def test_every_way_of_reading_many_days_reads_each_day_exactly(redis_client, clock):
    populate(redis_client, TENANT, clock.now, CONNECTORS, DAYS)
    today = clock.now.date()
    window = Window(today - timedelta(days=DAYS - 1), today)
    chunks = day_chunks.chunk_days(redis_client, TENANT, window.days)
    assert len(chunks) == DAYS and [d for c in chunks for d in c] == window.days
    expected = truth(redis_client, window.days)
    version = int(redis_client.hget(keys.meta(TENANT), "version"))

    counters = connectors_store.read_report_counters(redis_client, TENANT, window.days, "days")
    assert counters.version == version
    assert [dict(unpack(p)) for p in counters.packed] == [expected[d] for d in window.days]

    snapshot = aggregates.read_counters(redis_client, TENANT, window.days)
    assert snapshot.version == version and snapshot.days == expected

    summed = Counter[str]()
    for counts in expected.values():
        summed.update(counts)
    for _ in range(2):  # summed from the days, then from the cached sums
        sums = window_sums.read_window_sum(redis_client, TENANT, window)
        assert sums.version == version
        assert dict(unpack(sums.packed[0])) == dict(summed)
