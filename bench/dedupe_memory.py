"""The dedupe window: Redis memory per million trace ids, and the ingest script's time with it.

python -m bench.dedupe_memory               # 1,000,000 ids over 8 acceptance days
python -m bench.dedupe_memory --ids 200000  # a smaller run

Starts its own embedded Redis in a temp dir and stops it (and removes the dir) on the way out.
The ids go through ``traces.ingest`` as the API sends them (5,000-trace batches, the fast path),
their acceptance spread over MAILFLOW_DEDUPE_DAYS + 1 days of an injected clock, so every
seen-bucket a lookup reads is full. Then it times the two scripts on batches of 5,000 against
that window: all new (the fast path) and half resent (the fast path declines, the exact path
counts trace by trace), by the wall clock and by the CPU time of server and client. Beside
it, the memory the same ids took in the format before the buckets (one set of whole 16-byte
digests per day), on a server of its own.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson
import redis

from bench.harness import redis_stack
from bench.ingest import BATCH, make_bodies
from service.core.traces import AcceptedBatch, IngestWindow, normalize_trace
from service.store import keys
from service.store import traces as trace_store
from service.store.seen_buckets import day_buckets
from service.store.traces import DedupeWindow

TENANT = "bench"
MIB = 1024 * 1024


def template_batch(now: datetime) -> AcceptedBatch:
    """5,000 realistic traces (days, counting keys, times); each use gets its own ids."""
    window = IngestWindow.at(now, 90)
    (body,) = make_bodies(BATCH, seed=7, prefix="template")
    return AcceptedBatch.of(normalize_trace(t, window) for t in orjson.loads(body))


def with_ids(template: AcceptedBatch, ids: Sequence[int], prefix: str) -> AcceptedBatch:
    """The template's first ``len(ids)`` traces, with the ids ``prefix + i``."""
    digests = [hashlib.blake2b(f"{prefix}{i}".encode(), digest_size=16).digest() for i in ids]
    n = len(digests)
    return AcceptedBatch(template.days[:n], digests, template.counting_keys[:n],
                         template.epochs_ms[:n])  # fmt: skip


def measure(ids: int, dedupe_days: int = 7, timed_batches: int = 10) -> dict[str, object]:
    now = datetime.now(UTC)
    template = template_batch(now)
    buckets = dedupe_days + 1
    per_bucket = -(-ids // buckets)
    with redis_stack() as stack:
        client = stack.client
        trace_store.register_tenant(client, TENANT)
        client.delete(keys.stream(TENANT))
        before = int(client.info("memory")["used_memory"])
        accepted = 0
        for bucket in range(buckets):  # the oldest acceptance day first
            at = now - timedelta(days=buckets - 1 - bucket)
            first, last = bucket * per_bucket, min((bucket + 1) * per_bucket, ids)
            for start in range(first, last, BATCH):
                batch = with_ids(template, range(start, min(start + BATCH, last)), "id")
                accepted += trace_store.ingest(client, TENANT, batch,
                                               DedupeWindow(at, dedupe_days)).accepted  # fmt: skip
        assert accepted == ids, (accepted, ids)
        stream_bytes = client.memory_usage(keys.stream(TENANT), samples=0) or 0
        used_delta = int(client.info("memory")["used_memory"]) - before - stream_bytes
        window = DedupeWindow(now, dedupe_days)
        bucket_keys = [key for day in window.bucket_days for key in day_buckets(TENANT, day)]
        bucket_keys = [key for key in bucket_keys if client.exists(key)]  # not tomorrow's
        seen_bytes = sum(client.memory_usage(key, samples=0) or 0 for key in bucket_keys)
        encodings = sorted({client.object("encoding", key).decode() for key in bucket_keys})
        largest = max(client.scard(key) for key in bucket_keys)

        fast, exact = [], []
        new_batches = [with_ids(template, range(BATCH), f"new{n}-") for n in range(timed_batches)]
        cpu = CpuClock(client)
        for batch in new_batches:
            started = time.perf_counter()
            result = trace_store.ingest(client, TENANT, batch, window)
            fast.append(time.perf_counter() - started)
            assert result.duplicates == 0
        fast_cpu = cpu.lap()
        half, step = BATCH // 2, max(1, ids // (BATCH // 2))
        mixed = []
        for n in range(timed_batches):  # half resent ids from across the window, half new
            resent = with_ids(template, [(n * 997 + k * step) % ids for k in range(half)], "id")
            new = with_ids(template, range(half), f"mixed{n}-")
            mixed.append(replace(template, digests=resent.digests + new.digests))
        cpu.lap()
        for batch in mixed:
            started = time.perf_counter()
            result = trace_store.ingest(client, TENANT, batch, window)
            exact.append(time.perf_counter() - started)
            assert (result.accepted, result.duplicates) == (half, half), result
        exact_cpu = cpu.lap()
    ms = 1000
    return {
        "ids": ids,
        "dedupe days": dedupe_days,
        "seen-buckets read per lookup (+ tomorrow, absent)": dedupe_days + 1,
        "buckets (sets)": len(bucket_keys),
        "largest bucket": largest,
        "bucket encodings": ", ".join(encodings),
        "MEMORY USAGE, bytes per id": round(seen_bytes / ids, 1),
        "INFO used_memory delta, bytes per id": round(used_delta / ids, 1),
        "MiB per million ids (MEMORY USAGE)": round(seen_bytes / ids * 1_000_000 / MIB, 1),
        "5,000 new ids, ms (median / max)":
            f"{statistics.median(fast) * ms:.1f} / {max(fast) * ms:.1f}",
        "2,500 resent + 2,500 new, ms (median / max)":
            f"{statistics.median(exact) * ms:.1f} / {max(exact) * ms:.1f}",
        "5,000 new ids, CPU ms per batch (server / client)":
            f"{fast_cpu[0] * ms / timed_batches:.1f} / {fast_cpu[1] * ms / timed_batches:.1f}",
        "2,500 resent + 2,500 new, CPU ms (server / client)":
            f"{exact_cpu[0] * ms / timed_batches:.1f} / {exact_cpu[1] * ms / timed_batches:.1f}",
    }  # fmt: skip


class CpuClock:
    """CPU seconds of the Redis server (INFO cpu) and of this process since the last lap: on a
    shared machine steadier than the wall clock, which counts the time others had the cores."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.last = self._now()

    def _now(self) -> tuple[float, float]:
        info = self.client.info("cpu")
        return info["used_cpu_user"] + info["used_cpu_sys"], time.process_time()

    def lap(self) -> tuple[float, float]:
        now = self._now()
        server, client = now[0] - self.last[0], now[1] - self.last[1]
        self.last = now
        return server, client


def one_set_per_day(ids: int, buckets: int = 8) -> dict[str, object]:
    """The format before: one set of whole 16-byte digests per acceptance day (written
    directly, on a server of its own), for the memory side by side."""
    with redis_stack() as stack:
        client = stack.client
        pipe = client.pipeline(transaction=False)
        for start in range(0, ids, BATCH):
            digests = [hashlib.blake2b(f"id{i}".encode(), digest_size=16).digest()
                       for i in range(start, min(start + BATCH, ids))]  # fmt: skip
            pipe.sadd(f"{keys.seen(TENANT, str(start // BATCH % buckets))}", *digests)
        pipe.execute()
        used = sum(client.memory_usage(keys.seen(TENANT, str(b)), samples=0) or 0
                   for b in range(buckets))  # fmt: skip
    return {
        "before: one set per day, MiB per million ids": round(used / ids * 1_000_000 / MIB, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ids", type=int, default=1_000_000)
    parser.add_argument("--dedupe-days", type=int, default=7)
    args = parser.parse_args()
    results = measure(args.ids, args.dedupe_days)
    results.update(one_set_per_day(args.ids, args.dedupe_days + 1))
    for name, value in results.items():
        print(f"{name:50} {value}")


if __name__ == "__main__":
    main()
