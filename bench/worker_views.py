"""The worker loop under arriving mail: how fast it counts, and its share in view rebuilds.

One tenant; ``total`` traces (``bench.ingest.make_bodies``, so ``MAILFLOW_BENCH_WHO`` picks the
traffic) in batches of 5,000 appended to its stream every ``interval`` seconds by a thread, as
the API would; the real loop (``Worker.work``, not burst) runs until every trace is counted.
The share is the worker's time in rebuilds and their slices (``WorkerStats.rebuild_seconds``)
over the whole run (docs/scaling.md, *Views of big tenants in the worker*).

Run: ``MAILFLOW_BENCH_WHO=users .venv/bin/python -m bench.worker_views``.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import orjson
import redis

from bench.harness import redis_stack
from bench.ingest import counted, make_bodies
from service.config import Settings
from service.core.traces import IngestWindow, normalize_trace
from service.store import traces as trace_store
from service.store import worker_signals
from service.store.traces import DedupeWindow
from service.worker.loop import Worker


def under_arrival(total: int = 100_000, interval: float = 0.1) -> dict[str, Any]:
    with redis_stack() as stack:
        now = datetime.now(UTC)
        window = IngestWindow.at(now, 90)
        trace_store.register_tenant(stack.client, "bench")
        batches = [[normalize_trace(t, window) for t in orjson.loads(body)]
                   for body in make_bodies(total, seed=2, prefix="arrive")]  # fmt: skip
        feeder_client = redis.Redis.from_url(stack.redis_url)

        def arrive() -> None:
            for batch in batches:
                trace_store.ingest(feeder_client, "bench", batch, DedupeWindow(now, 7))
                worker_signals.signal_new_entries(feeder_client, "bench")
                time.sleep(interval)

        worker = Worker(stack.client, Settings(redis_url=stack.redis_url))
        feeder = threading.Thread(target=arrive)
        started = time.perf_counter()
        feeder.start()
        worker.work(until=lambda: worker.stats.traces >= total)
        elapsed = time.perf_counter() - started
        feeder.join()
        feeder_client.close()
        assert counted(stack, "bench") == total
    return {"traces_per_second": round(total / elapsed),
            "rebuild_share": round(worker.stats.rebuild_seconds / elapsed, 3),
            "view_slices": worker.stats.view_slices}  # fmt: skip


if __name__ == "__main__":
    print(under_arrival())
