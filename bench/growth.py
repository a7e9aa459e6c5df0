"""Freshness under load, report latency as history grows, and Redis memory per million traces."""

from __future__ import annotations

import random
import threading
import time
import urllib.request
from datetime import UTC, date, datetime, timedelta

import orjson
import redis

from bench.harness import gunicorn, make_key, median, redis_stack, workers
from bench.ingest import make_bodies, post_all
from service.config import Settings
from service.core.tls import TLS_VERSIONS
from service.core.traces import IngestWindow, counter_field, normalize_trace
from service.core.windows import Window
from service.reports.builders import build_snapshot_view
from service.store import keys, seen_buckets
from service.store import traces as trace_store
from service.store.traces import DedupeWindow
from service.worker.loop import Worker


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def freshness(
    probes: int = 30, load_traces: int = 300_000, load_rate: int = 15_000
) -> dict[str, float]:
    """Seconds from a 202 to the trace showing in the snapshot, while a shipper loads the API
    at ``load_rate`` traces/s (new traces first, then the same again: new and duplicate load)."""
    with redis_stack() as stack:
        key = make_key(stack, "bench")
        probe_key = make_key(stack, "probe")
        bodies = make_bodies(load_traces, 9, "load")
        stop = threading.Event()
        with gunicorn("service.wsgi:app", stack.env) as url, workers(stack.env, 1):
            loader = threading.Thread(target=_load, args=(url, key, bodies, load_rate, stop))
            loader.start()
            try:
                delays = [_probe(url, probe_key, n) for n in range(probes)]
            finally:
                stop.set()
                loader.join()
    return {"probes": len(delays), "p50_s": _percentile(delays, 0.5), "p99_s": _percentile(delays, 0.99),
            "max_s": max(delays)}  # fmt: skip


def _load(url: str, key: str, bodies: list[bytes], rate: int, stop: threading.Event) -> None:
    n = 0
    started = time.monotonic()
    while not stop.is_set():
        post_all(url, key, [bodies[n % len(bodies)]], 1)
        n += 1
        due = started + n * 5000 / rate
        stop.wait(max(0.0, due - time.monotonic()))  # pace the shipper


def _probe(url: str, key: str, n: int) -> float:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    trace = [{"id": f"probe-{n}", "timestamp": datetime.now(UTC).isoformat(), "direction": "inbound",
              "tls_version": "TLS1.3"}]  # fmt: skip
    request = urllib.request.Request(
        url + "/api/v1/traces", orjson.dumps(trace), headers, method="POST"
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 202
        accepted_at = time.monotonic()
    snapshot = urllib.request.Request(url + "/api/v1/mailflow/snapshot", headers=headers)
    while True:
        with urllib.request.urlopen(snapshot) as response:
            body = orjson.loads(response.read())
        if body["directions"]["inbound"]["messages"] >= n + 1:
            return time.monotonic() - accepted_at
        time.sleep(0.01)  # a dashboard polling: how soon does it see the trace?


def _write_history(
    client: redis.Redis, tenant: str, traces: int, connectors: int, days: int
) -> int:
    """Daily counters as the fold leaves them after ``traces`` traces spread over the cells."""
    rng = random.Random(1)
    today = datetime.now(UTC).date()
    cells = [(today - timedelta(days=d), counter_field(direction, f"Connector {c}",
              "partner", tls)) for d in range(days) for c in range(connectors)
             for direction in ("inbound", "outbound") for tls in TLS_VERSIONS]  # fmt: skip
    per_cell = max(1, traces // len(cells))
    pipe = client.pipeline(transaction=False)
    for day, field in cells:
        pipe.hincrby(keys.day_counts(tenant, day.isoformat()), field, per_cell + rng.randint(0, 1))
    pipe.execute()
    return len(cells)


def growth(connectors: int = 50, days: int = 90) -> list[dict]:
    """Snapshot build (uncached) and cached read, after 10 thousand vs 10 million traces."""
    rows = []
    with redis_stack() as stack:
        today = datetime.now(UTC).date()
        window = Window(today - timedelta(days=days - 1), today)
        for traces in (10_000, 10_000_000):
            stack.client.flushall()
            cells = _write_history(stack.client, "bench", traces, connectors, days)
            builds = []
            for _ in range(7):
                started = time.perf_counter()
                build_snapshot_view(stack.client, "bench", window, datetime.now(UTC))
                builds.append((time.perf_counter() - started) * 1000)
            rows.append({"history": f"{traces:,} traces", "counter cells": cells,
                         "snapshot build ms (90 days, uncached)": round(median(builds), 2)})  # fmt: skip
    ratio = (
        rows[1]["snapshot build ms (90 days, uncached)"]
        / rows[0]["snapshot build ms (90 days, uncached)"]
    )
    rows[1]["ratio to 10k"] = round(ratio, 2)
    return rows


def memory_per_million(traces: int = 200_000) -> list[dict]:
    """MEMORY USAGE of the stream (unfolded backlog), the dedupe sets and the counters."""
    scale = 1_000_000 / traces
    with redis_stack() as stack:
        now = datetime.now(UTC)
        window = IngestWindow.at(now, 90)
        trace_store.register_tenant(stack.client, "bench")
        for body in make_bodies(traces, seed=3, prefix="mem"):
            accepted = [normalize_trace(t, window) for t in orjson.loads(body)]
            trace_store.ingest(stack.client, "bench", accepted, DedupeWindow(now, 7))
        stream = stack.client.memory_usage(keys.stream("bench"), samples=0) or 0
        days = [(now.date() - timedelta(days=i)).isoformat() for i in range(8)]
        seen = seen_buckets.memory_usage(stack.client, "bench", days)
        Worker(stack.client, Settings(redis_url=stack.redis_url)).work(burst=True)
        counters = sum(stack.client.memory_usage(keys.day_counts("bench", d), samples=0) or 0
                       for d in days)  # fmt: skip
        after_fold = stack.client.memory_usage(keys.stream("bench"), samples=0) or 0
    mib = 1024 * 1024
    return [
        {"structure": "stream backlog (accepted, not yet folded)", "MiB per million traces":
         round(stream * scale / mib, 1), "note": f"after the fold: {after_fold} bytes (entries trimmed)"},
        # The label stays the older commit's, so that make bench puts the two side by side.
        {"structure": f"dedupe window (seen-sets, 16-byte digests) for {traces:,} ids",
         "MiB per million traces": round(seen * scale / mib, 1),
         "note": "kept MAILFLOW_DEDUPE_DAYS; now 71 bits of each digest, as intset buckets"},
        {"structure": "daily counters (36 connectors x 2 directions x 6 versions x 7 days)",
         "MiB per million traces": round(counters / mib, 3),
         "note": "grows with days x connectors, not with traces"},
    ]  # fmt: skip


def day(value: str) -> date:
    return date.fromisoformat(value)


if __name__ == "__main__":
    print(memory_per_million())
    print(growth())
    print(freshness())
