"""What an idle worker costs: Redis commands per second and worker CPU, many tenants, no mail.

    python -m bench.idle                          # 1,000 tenants, 30 s measured
    python -m bench.idle --tenants 200 --seconds 10
    python -m bench.idle --worker-source DIR      # the worker of another checkout (before/after)

Each tenant ingests one trace, a burst worker folds them all, then one ``mailflow worker`` runs
on the idle store: after a warm-up (its first sweep and evaluation pass), the Redis commands it
sends are counted with INFO commandstats over a fixed span, and its CPU from /proc. Everything
started here (Redis, the workers) is stopped before it returns.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from bench.harness import ROOT, redis_stack, tree_cpu_seconds
from service.core.traces import IngestWindow, normalize_trace
from service.store import traces as trace_store

WARMUP_SECONDS = 5.0


def command_counts(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def _seed(client: redis.Redis, tenants: int) -> None:
    now = datetime.now(UTC)
    window = IngestWindow.at(now, 90)
    trace = {"timestamp": now.isoformat(), "direction": "inbound", "tls_version": "TLS1.3"}
    for n in range(tenants):
        tenant = f"idle{n:05d}"
        trace_store.register_tenant(client, tenant)
        trace_store.ingest(client, tenant, [normalize_trace(trace, window)], 86400)


def _worker(env: dict[str, str], source: Path, *args: str) -> subprocess.Popen[bytes]:
    env = dict(env, PYTHONPATH=str(source))
    return subprocess.Popen([sys.executable, "-m", "service.cli", "worker", *args], env=env,
                            cwd=source)  # fmt: skip


def measure(tenants: int = 1000, seconds: float = 30.0, source: Path = ROOT) -> dict[str, Any]:
    with redis_stack() as stack:
        _seed(stack.client, tenants)
        burst = _worker(stack.env, source, "--burst")
        if burst.wait(300) != 0:
            raise RuntimeError("the burst worker failed")
        worker = _worker(stack.env, source, "--name", "idle")
        try:
            time.sleep(WARMUP_SECONDS)  # a benchmark of real time: its first passes are done
            cpu_before, before = tree_cpu_seconds(worker.pid), command_counts(stack.client)
            started = time.monotonic()
            time.sleep(seconds)
            after = command_counts(stack.client)
            elapsed = time.monotonic() - started
            cpu = tree_cpu_seconds(worker.pid) - cpu_before
        finally:
            worker.terminate()
            worker.wait(30)
        stack.client.close()
    delta = {name: after[name] - before.get(name, 0) for name in after}
    delta.pop("info", None)  # our own measuring
    busiest = sorted(((n, c) for n, c in delta.items() if c), key=lambda x: -x[1])[:6]
    return {
        "tenants": tenants,
        "seconds": round(elapsed, 1),
        "commands_per_second": round(sum(delta.values()) / elapsed, 1),
        "worker_cpu_percent": round(100 * cpu / elapsed, 2),
        "busiest": ", ".join(f"{name} {count / elapsed:.1f}/s" for name, count in busiest),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--worker-source", type=Path, default=ROOT,
                        help="a checkout whose worker is measured (default: this one)")  # fmt: skip
    args = parser.parse_args()
    result = measure(args.tenants, args.seconds, args.worker_source.resolve())
    for name, value in result.items():
        print(f"{name:>20}: {value}")


if __name__ == "__main__":
    os.environ.setdefault("MAILFLOW_LOG_LEVEL", "WARNING")
    main()
