"""The ingest script's two ways of counting agree with a count made here: a batch of new traces
(counted by the API) and a batch with duplicates (counted in Redis, trace by trace). An id is
one trace whatever day its timestamp names."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

import pytest

from service.core.traces import IngestWindow, normalize_trace
from service.store import aggregates, keys
from service.store import traces as trace_store
from service.worker.loop import Worker


def trace(clock, trace_id: str, hours_ago: float, tls: str = "TLSv1.2") -> dict:
    when = clock.now - timedelta(hours=hours_ago)
    return {"id": trace_id, "timestamp": when.isoformat(), "direction": "inbound",
            "tls_version": tls}  # fmt: skip


def ingest(redis_client, clock, traces: list[dict]) -> trace_store.IngestResult:
    window = IngestWindow.at(clock.now, 90)
    trace_store.register_tenant(redis_client, "default")
    return trace_store.ingest(redis_client, "default", [normalize_trace(t, window) for t in traces],
                              trace_store.DedupeWindow(clock.now, 7))  # fmt: skip


def counted(redis_client, settings, clock) -> tuple[Counter, int | None]:
    """(messages per (day, TLS version), data_as_of in ms) once everything is folded."""
    Worker(redis_client, settings, clock=clock).work(burst=True)
    days = [(clock.now - timedelta(days=n)).date().isoformat() for n in range(8)]
    snapshot = aggregates.read_counters(redis_client, "default", days)
    per_day = Counter()
    for day, fields in snapshot.days.items():
        for field, count in fields.items():
            per_day[(day, field.rsplit("\x1f", 1)[1])] += count
    return per_day, snapshot.data_as_of_ms


def truth(clock, traces: list[dict]) -> Counter:
    """Counted here: the first trace of each id counts, later ones are duplicates."""
    window = IngestWindow.at(clock.now, 90)
    seen, result = set(), Counter()
    for record in traces:
        accepted = normalize_trace(record, window)
        if accepted.id not in seen:
            seen.add(accepted.id)
            result[(accepted.day, accepted.counter_field.rsplit("\x1f", 1)[1])] += 1
    return result


def epoch_ms(clock, hours_ago: float) -> int:
    return round((clock.now - timedelta(hours=hours_ago)).timestamp() * 1000)


def test_an_id_twice_in_one_batch_counts_once(redis_client, settings, clock):
    result = ingest(redis_client, clock, [trace(clock, "a", 1), trace(clock, "a", 1)])
    assert (result.accepted, result.duplicates) == (1, 1)
    assert sum(counted(redis_client, settings, clock)[0].values()) == 1


def test_an_id_on_two_days_is_one_trace(redis_client, settings, clock):
    """The seen-buckets are days of acceptance, not of the trace: the first copy counts, on its
    own day, in one batch (counted in Redis) and across batches (the API's count declined)."""
    result = ingest(redis_client, clock, [trace(clock, "a", 1), trace(clock, "a", 30)])
    assert (result.accepted, result.duplicates) == (1, 1)
    result = ingest(redis_client, clock, [trace(clock, "a", 50), trace(clock, "b", 50)])
    assert (result.accepted, result.duplicates) == (1, 1)
    per_day, _ = counted(redis_client, settings, clock)
    assert per_day == truth(clock, [trace(clock, "a", 1), trace(clock, "b", 50)])


def test_a_duplicate_with_a_later_time_moves_neither_counts_nor_data_as_of(
    redis_client, settings, clock
):
    ingest(redis_client, clock, [trace(clock, "x", 3)])
    result = ingest(redis_client, clock, [trace(clock, "x", 1), trace(clock, "y", 2)])
    assert (result.accepted, result.duplicates) == (1, 1)
    per_day, data_as_of = counted(redis_client, settings, clock)
    assert sum(per_day.values()) == 2
    assert data_as_of == epoch_ms(clock, 2)  # y's time: x's later copy was not counted


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mixed_batches_over_several_days_count_exactly(redis_client, settings, clock, seed):
    """Batches of up to 9,000 traces over five days, days interleaved, ids resent across and
    within batches: counts equal the truth counted here."""
    rng = random.Random(seed)
    versions = ["TLSv1.2", "TLSv1.3", "TLSv1", None]
    pool = [trace(clock, f"id{n}", rng.uniform(0, 100), rng.choice(versions))
            for n in range(12_000)]  # fmt: skip
    sent: list[dict] = []
    batches = [pool[:9000]]  # all new: counted by the API
    batches += [[rng.choice(pool) for _ in range(size)] for size in (9000, 5000, 2000)]
    for batch in batches:  # resends within and across batches: counted in Redis
        ingest(redis_client, clock, batch)
        sent += batch
    per_day, data_as_of = counted(redis_client, settings, clock)
    assert per_day == truth(clock, sent)
    window = IngestWindow.at(clock.now, 90)
    assert data_as_of == max(normalize_trace(t, window).epoch_ms for t in sent)


def test_one_day_in_chunks_of_4000_new_then_mixed(redis_client, settings, clock):
    """9,000 traces of one day: three SMISMEMBER chunks, all new; then 4,500 of them again
    with 4,500 new ones, so some chunks are partly known."""
    first = [trace(clock, f"one{n}", 1) for n in range(9000)]
    second = first[::2] + [trace(clock, f"two{n}", 1) for n in range(4500)]
    assert ingest(redis_client, clock, first).accepted == 9000
    result = ingest(redis_client, clock, second)
    assert (result.accepted, result.duplicates) == (4500, 4500)
    assert sum(counted(redis_client, settings, clock)[0].values()) == 13_500


def test_ids_known_in_several_acceptance_buckets_in_chunks_of_4000(redis_client, settings, clock):
    """9,000 ids accepted one day, 4,500 more the next; two days later a batch of all of them,
    4,500 new ones and a copy of each new one: each bucket is read in chunks, only the unknown
    rest goes on to the next, and the new ones count once."""
    first = [trace(clock, f"one{n}", 1) for n in range(9000)]
    assert ingest(redis_client, clock, first).accepted == 9000
    clock.advance(days=1)
    second = [trace(clock, f"two{n}", 1) for n in range(4500)]
    assert ingest(redis_client, clock, second).accepted == 4500
    clock.advance(days=2)
    new = [trace(clock, f"three{n}", 1) for n in range(4500)]
    result = ingest(redis_client, clock, second + new + first + new)
    assert (result.accepted, result.duplicates) == (4500, 18_000)
    assert ingest(redis_client, clock, new[:10]).duplicates == 10  # the fast path's lookup
    per_day, _ = counted(redis_client, settings, clock)
    assert sum(per_day.values()) == 18_000


def test_a_batch_over_300_trace_days_is_one_call_and_exact(redis_client, settings, clock):
    """With a long retention a batch may name hundreds of days: the seen-buckets do not depend
    on them (once split by day, 250 at a time), and each id still counts once."""
    window = IngestWindow.at(clock.now, 400)
    records = [trace(clock, f"d{n}", 24 * n + 1) for n in range(300)]
    records += [trace(clock, f"d{n}", 24 * (n + 50) + 1) for n in range(0, 300, 3)]  # moved
    accepted = [normalize_trace(record, window) for record in records]
    trace_store.register_tenant(redis_client, "default")
    result = trace_store.ingest(redis_client, "default", accepted,
                                trace_store.DedupeWindow(clock.now, 7))  # fmt: skip
    assert (result.accepted, result.duplicates) == (300, 100)
    assert redis_client.xlen(keys.stream("default")) == 1


def _entry(redis_client) -> dict[bytes, bytes] | None:
    entries = redis_client.xrevrange(keys.stream("default"), count=1)
    return dict(entries[0][1]) if entries else None


def _lines(text: bytes) -> dict[str, int]:
    return {line.rsplit("\t", 1)[0]: int(line.rsplit("\t", 1)[1])
            for line in text.decode().split("\n") if line}  # fmt: skip


@pytest.mark.parametrize("seed", range(6))
def test_the_known_traces_are_taken_off_the_batch_counts_exactly(redis_client, clock, seed):
    # The stream entry of a batch with known ids, repeated ids, the newest trace among the
    # known ones or not, with recipient domains or not: its count, newest time, counts and who
    # counts are those of its new traces, counted here.
    rng = random.Random(seed)
    window = IngestWindow.at(clock.now, 90)
    who = seed % 2 == 0
    pool = []
    for n in range(400):
        record = trace(clock, f"k{n}", rng.uniform(0, 60), rng.choice(["TLSv1.2", "TLSv1", None]))
        if who:
            record |= {"direction": "outbound", "recipient_domain": f"d{rng.randrange(30)}.example"}
        pool.append(record)
    known: set[str] = set()
    for size in (150, 300, 300, 200):
        batch = [rng.choice(pool) for _ in range(size)]
        if rng.random() < 0.5:  # the newest trace one known already, or not
            batch.append(max(pool, key=lambda r: r["timestamp"]))
        before = _entry(redis_client)
        result = ingest(redis_client, clock, batch)
        accepted = [normalize_trace(r, window) for r in batch]
        new, ids = [], set(known)
        for one in accepted:
            if one.id not in ids:
                ids.add(one.id)
                new.append(one)
        known = ids
        assert (result.accepted, result.duplicates) == (len(new), len(batch) - len(new))
        entry = _entry(redis_client)
        if not new:
            assert entry == before  # nothing appended
            continue
        assert int(entry[b"n"]) == len(new)
        assert int(entry[b"newest"]) == max(one.epoch_ms for one in new)
        assert _lines(entry[b"counts"]) == Counter(one.counting_key for one in new)
        assert _lines(entry[b"who"]) == Counter(one.who for one in new)
