"""The dedupe window kept in small integer sets: 128 buckets per acceptance day, named by the
first bits of an id's digest, holding its bytes 8..15 as an integer (store/seen_buckets.py).
Exact whatever encoding the server chooses for them."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta

import pytest

from service.core.traces import IngestWindow, normalize_trace
from service.store import keys, seen_buckets, tenants
from service.store import traces as trace_store
from service.store.local_cluster import LocalCluster
from service.worker.loop import Worker

TENANT = "default"


def trace(clock, trace_id: str, hours_ago: float = 1.0) -> dict:
    when = clock.now - timedelta(hours=hours_ago)
    return {"id": trace_id, "timestamp": when.isoformat(), "direction": "inbound",
            "tls_version": "TLSv1.2"}  # fmt: skip


def accepted(clock, records: list[dict]):
    window = IngestWindow.at(clock.now, 90)
    return [normalize_trace(record, window) for record in records]


def ingest(redis_client, clock, records: list[dict], dedupe_days: int = 7) -> tuple[int, int]:
    trace_store.register_tenant(redis_client, TENANT)
    result = trace_store.ingest(redis_client, TENANT, accepted(clock, records),
                                trace_store.DedupeWindow(clock.now, dedupe_days))  # fmt: skip
    return result.accepted, result.duplicates


def buckets_of_today(redis_client, clock) -> list[str]:
    names = seen_buckets.day_buckets(TENANT, clock.now.date().isoformat())
    return [name for name in names if redis_client.exists(name)]


def test_ids_are_kept_as_integers_in_the_buckets_their_digests_name(redis_client, clock):
    records = [trace(clock, f"id{n}") for n in range(3000)]
    assert ingest(redis_client, clock, records) == (3000, 0)
    day = clock.now.date().isoformat()
    assert not redis_client.exists(keys.seen(TENANT, day))  # no set of whole digests
    found = buckets_of_today(redis_client, clock)
    assert len(found) == seen_buckets.PREFIXES  # 3,000 ids fill all 128
    assert sum(redis_client.scard(name) for name in found) == 3000
    assert {redis_client.object("encoding", name) for name in found} == {b"intset"}
    for one in accepted(clock, records[:50]):
        (prefix,), (member,) = seen_buckets.split([one.digest])
        assert redis_client.sismember(keys.seen_bucket(TENANT, day, prefix), member)


@contextmanager
def intset_entries(redis_server, redis_client, entries: int) -> Iterator[None]:
    """The server's set-max-intset-entries (every master of a cluster), restored after."""
    if isinstance(redis_server, LocalCluster):
        clients = [redis_server.client_of(node) for node in redis_server.masters_now()]
    else:
        clients = [redis_client]
    before = [client.config_get("set-max-intset-entries")["set-max-intset-entries"]
              for client in clients]  # fmt: skip
    for client in clients:
        client.config_set("set-max-intset-entries", entries)
    try:
        yield
    finally:
        for client, value in zip(clients, before, strict=True):
            client.config_set("set-max-intset-entries", value)
        if isinstance(redis_server, LocalCluster):
            for client in clients:
                client.close()


def test_exact_when_the_server_keeps_the_buckets_in_another_encoding(
    redis_server, redis_client, clock
):
    """A server configured otherwise (here: no intset above 1 member) keeps bigger buckets
    (listpacks on Valkey, hash tables on Redis 6.2), and the same answers."""
    with intset_entries(redis_server, redis_client, 1):
        records = [trace(clock, f"id{n}") for n in range(2000)]
        assert ingest(redis_client, clock, records) == (2000, 0)
        encodings = {
            redis_client.object("encoding", n) for n in buckets_of_today(redis_client, clock)
        }
        assert b"intset" not in encodings
        assert ingest(redis_client, clock, records[:500] + records[:10]) == (0, 510)
        more = [trace(clock, f"new{n}") for n in range(700)]
        assert ingest(redis_client, clock, records[1500:] + more + more[:5]) == (700, 505)


def test_exact_against_a_model_over_the_days_of_the_window(redis_client, clock):
    """Random batches over twelve acceptance days (two-day window), ids resent within a batch,
    across batches and across days: every batch's accepted and duplicates are the model's."""
    rng = random.Random(20)
    first_accepted: dict[str, int] = {}  # id -> acceptance day number, as the window keeps it
    for day in range(12):
        for _ in range(3):
            ids = [f"id{rng.randrange(4000)}" for _ in range(rng.choice((1, 40, 1500)))]
            if rng.random() < 0.3:  # all new: the fast path
                ids = list(dict.fromkeys(f"fresh{day}-{rng.random()}" for _ in range(300)))
            new = 0
            for trace_id in ids:
                seen_on = first_accepted.get(trace_id)
                if seen_on is None or day - seen_on > 2:
                    first_accepted[trace_id] = day
                    new += 1
            records = [trace(clock, trace_id, hours_ago=rng.uniform(0, 30)) for trace_id in ids]
            assert ingest(redis_client, clock, records, dedupe_days=2) == (new, len(ids) - new)
        clock.advance(days=1)


def test_a_big_batch_splits_its_ids_over_every_bucket_of_each_day(redis_client, clock):
    """5,000 ids land in all 128 buckets; resent a day later (another day's buckets read) with
    5,000 new ones, in one batch: half are duplicates, exactly."""
    records = [trace(clock, f"id{n}") for n in range(5000)]
    assert ingest(redis_client, clock, records) == (5000, 0)
    assert len(buckets_of_today(redis_client, clock)) == seen_buckets.PREFIXES
    clock.advance(days=1)
    more = [trace(clock, f"more{n}") for n in range(5000)]
    assert ingest(redis_client, clock, records + more) == (5000, 5000)
    assert ingest(redis_client, clock, more[::-1] + records[::-1]) == (0, 10000)


@pytest.mark.parametrize("dedupe_days", [0, 31])
def test_the_shortest_and_the_longest_window(redis_client, clock, dedupe_days):
    records = [trace(clock, f"id{n}") for n in range(600)]
    assert ingest(redis_client, clock, records, dedupe_days) == (600, 0)
    clock.advance(days=dedupe_days)
    assert ingest(redis_client, clock, records, dedupe_days) == (0, 600)
    clock.advance(days=1, seconds=1)
    assert ingest(redis_client, clock, records, dedupe_days) == (600, 0)


def test_after_a_reset_the_ids_of_the_day_count_once_more(redis_client, settings, clock):
    """A reset trace day's ids are looked up under digests keyed with its generation: new once
    (whichever buckets the first copies sit in), known again after that."""
    reset = [trace(clock, f"r{n}", hours_ago=30) for n in range(400)]  # one trace day
    kept = [trace(clock, f"k{n}", hours_ago=1) for n in range(400)]  # another
    assert ingest(redis_client, clock, reset + kept) == (800, 0)
    Worker(redis_client, settings, clock=clock).work(burst=True)
    day = date.fromisoformat(accepted(clock, reset[:1])[0].day)
    tenants.reset_days(redis_client, TENANT, day, day, clock.now, 90, 5.0)
    clock.advance(days=1)  # resent the next day: the first copies are in yesterday's buckets
    assert ingest(redis_client, clock, kept + reset + reset[:7]) == (400, 407)
    assert ingest(redis_client, clock, reset[::-1] + kept) == (0, 800)
