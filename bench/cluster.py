"""On a Redis Cluster (3 masters, 1 replica each): end-to-end ingest with 1, 2 and 3 workers,
and what Redis memory a trace, a tenant and a connector-day cost.

python -m bench.cluster            # prints both tables
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from redis.cluster import key_slot

from bench.harness import UNLIMITED, Stack, embedded_server, gunicorn, make_key, median, workers
from bench.ingest import counted, make_bodies, post_all
from service.core.traces import IngestWindow, normalize_trace
from service.store import keys, seen_buckets
from service.store import traces as trace_store
from service.store.connection import connect_url
from service.store.local_cluster import LocalCluster
from service.store.traces import DedupeWindow

Row = dict[str, Any]


@contextmanager
def cluster_stack() -> Iterator[tuple[Stack, LocalCluster]]:
    data_dir = Path(tempfile.mkdtemp(prefix="mailflow-cluster-bench-"))
    cluster = LocalCluster(data_dir / "cluster", server=embedded_server()).start()
    env = {"MAILFLOW_REDIS_URL": cluster.url, "MAILFLOW_LOG_LEVEL": "WARNING",
           "MAILFLOW_RATE_LIMIT_PER_MINUTE": UNLIMITED,
           "MAILFLOW_RATE_LIMIT_INGEST_PER_MINUTE": UNLIMITED}  # fmt: skip
    client = connect_url(cluster.url)
    try:
        yield Stack(cluster.url, client, dict(os.environ, **env), data_dir), cluster
    finally:
        client.close()
        cluster.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def tenant_per_master(cluster: LocalCluster) -> list[str]:
    chosen: dict[int, str] = {}
    number = 0
    while len(chosen) < cluster.masters:
        name = f"bench{number}"
        number += 1
        port = cluster.master_of_slot(key_slot(keys.stream(name).encode())).port
        chosen.setdefault(port, name)
    return list(chosen.values())


def end_to_end(fold_workers: int, per_tenant: int, runs: int) -> Row:
    """Three tenants (one per master) posting at once through two API processes."""
    rates, exact = [], True
    for run in range(runs):
        with cluster_stack() as (stack, cluster):
            tenants = tenant_per_master(cluster)
            api_keys = {t: make_key(stack, t) for t in tenants}
            bodies = {t: make_bodies(per_tenant, seed=run, prefix=f"{t}-{run}") for t in tenants}
            with gunicorn("service.wsgi:app", stack.env, workers=1) as api_a, \
                 gunicorn("service.wsgi:app", stack.env, workers=1) as api_b, \
                 workers(stack.env, fold_workers):  # fmt: skip
                started = time.perf_counter()
                posters = [threading.Thread(target=post_all, args=(
                    (api_a, api_b)[n % 2], api_keys[t], bodies[t], 2))
                    for n, t in enumerate(tenants)]  # fmt: skip
                for poster in posters:
                    poster.start()
                for poster in posters:
                    poster.join()
                deadline = time.monotonic() + 300
                while sum(counted(stack, t) for t in tenants) < per_tenant * len(tenants):
                    if time.monotonic() > deadline:
                        raise RuntimeError("the workers did not fold everything in time")
                    time.sleep(0.02)
                done = time.perf_counter()
                exact = exact and all(counted(stack, t) == per_tenant for t in tenants)
        rates.append(per_tenant * len(tenants) / (done - started))
    return {"workers": fold_workers, "traces/s": round(median(rates)),
            "traces": per_tenant * 3, "runs": runs, "counts exact": exact}  # fmt: skip


def memory(traces: int = 100_000) -> list[Row]:
    """MEMORY USAGE of a tenant's keys after ``traces`` traces (ingested, then folded)."""
    from service.config import Settings
    from service.worker.loop import Worker

    rows: list[Row] = []
    with cluster_stack() as (stack, _):
        client, tenant = stack.client, "memory"
        now = datetime.now(UTC)
        window = IngestWindow.at(now, 90)
        trace_store.register_tenant(client, tenant)
        for body in make_bodies(traces, seed=1, prefix="m"):
            accepted = [normalize_trace(t, window) for t in orjson.loads(body)]
            trace_store.ingest(client, tenant, accepted, DedupeWindow(now, 7))
        stream = client.memory_usage(keys.stream(tenant), samples=0)
        days = sorted({t.day for t in accepted})
        all_days = [(now.date().fromordinal(now.date().toordinal() - i)).isoformat()
                    for i in range(8)]  # fmt: skip
        seen = seen_buckets.memory_usage(client, tenant, all_days)
        rows.append({"what": "stream backlog (not yet folded)", "bytes": stream,
                     "per trace": round(stream / traces, 1)})  # fmt: skip
        rows.append({"what": "seen-sets (dedupe window, 7 days)", "bytes": seen,
                     "per trace": round(seen / traces, 1)})  # fmt: skip
        Worker(client, Settings(redis_url=stack.redis_url)).work(burst=True)
        counters = sum(client.memory_usage(keys.day_counts(tenant, d), samples=0) or 0
                       for d in all_days)  # fmt: skip
        fields = sum(client.hlen(keys.day_counts(tenant, d)) for d in all_days)
        after = client.memory_usage(keys.stream(tenant), samples=0)
        rows.append({"what": f"daily counters ({fields} fields over {len(days)} days)",
                     "bytes": counters, "per trace": round(counters / traces, 2),
                     "per field": round(counters / fields, 1)})  # fmt: skip
        rows.append({"what": "stream after folding (trimmed)", "bytes": after,
                     "per trace": round(after / traces, 2)})  # fmt: skip
    return rows


def print_table(rows: list[Row]) -> None:
    columns = list(dict.fromkeys(c for row in rows for c in row))
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns))


def main(quick: bool = False) -> list[Row]:
    per_tenant, runs = (10_000, 1) if quick else (40_000, 2)
    rows = [end_to_end(n, per_tenant, runs) for n in (1, 2, 3)]
    print("end-to-end ingest on a 3-master cluster, 2 API processes, HTTP -> counters")
    print_table(rows)
    print()
    print("Redis memory of one tenant after 100,000 traces")
    print_table(memory())
    return rows


if __name__ == "__main__":
    main()
