"""What an idle worker costs: Redis commands per second and worker CPU, many tenants, no mail.

    python -m bench.idle                          # 1,000 tenants, 60 s measured
    python -m bench.idle --tenants 200 --seconds 10
    python -m bench.idle --worker-source DIR      # the worker of another checkout (before/after)

Each tenant ingests one trace, a burst worker folds them all, then one ``mailflow worker`` runs
on the idle store: after a warm-up (its first sweep and evaluation pass), the Redis commands it
sends are counted with INFO commandstats over a fixed span, its CPU from /proc and the Redis
server's from INFO CPU (both as a percent of one core). Everything started here (Redis, the
workers) is stopped before it returns. ``section`` repeats it and reports the medians.
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

from bench.harness import ROOT, median, redis_stack, tree_cpu_seconds
from service.core.traces import IngestWindow, normalize_trace
from service.store import traces as trace_store
from service.store.traces import DedupeWindow

WARMUP_SECONDS = 5.0
# A span as long as the worker's slowest idle schedule (the evaluation pass over every tenant,
# EVALUATE_EVERY_SECONDS), so that each holds the same work.
SPAN_SECONDS = 60.0
TARGET_PERCENT = 2.0  # of one core, for the worker (issue #20)


def command_counts(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def server_cpu_seconds(client: redis.Redis) -> float:
    """CPU (user + system) the Redis server has used so far, as it reports it."""
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def _seed(client: redis.Redis, tenants: int) -> None:
    now = datetime.now(UTC)
    window = IngestWindow.at(now, 90)
    trace = {"timestamp": now.isoformat(), "direction": "inbound", "tls_version": "TLS1.3"}
    for n in range(tenants):
        tenant = f"idle{n:05d}"
        trace_store.register_tenant(client, tenant)
        trace_store.ingest(client, tenant, [normalize_trace(trace, window)], DedupeWindow(now, 7))


def _worker(env: dict[str, str], source: Path, *args: str) -> subprocess.Popen[bytes]:
    env = dict(env, PYTHONPATH=str(source))
    return subprocess.Popen([sys.executable, "-m", "service.cli", "worker", *args], env=env,
                            cwd=source)  # fmt: skip


def measure(
    tenants: int = 1000, seconds: float = SPAN_SECONDS, spans: int = 1, source: Path = ROOT
) -> list[dict[str, Any]]:
    """One idle worker on a seeded store, measured over ``spans`` consecutive spans."""
    with redis_stack() as stack:
        _seed(stack.client, tenants)
        burst = _worker(stack.env, source, "--burst")
        if burst.wait(300) != 0:
            raise RuntimeError("the burst worker failed")
        worker = _worker(stack.env, source, "--name", "idle")
        try:
            time.sleep(WARMUP_SECONDS)  # a benchmark of real time: its first passes are done
            results = [_span(stack.client, worker.pid, tenants, seconds) for _ in range(spans)]
        finally:
            worker.terminate()
            worker.wait(30)
        stack.client.close()
    return results


def _span(client: redis.Redis, pid: int, tenants: int, seconds: float) -> dict[str, Any]:
    cpu_before, before = tree_cpu_seconds(pid), command_counts(client)
    server_before = server_cpu_seconds(client)
    started = time.monotonic()
    time.sleep(seconds)
    after = command_counts(client)
    server_cpu = server_cpu_seconds(client) - server_before
    elapsed = time.monotonic() - started
    cpu = tree_cpu_seconds(pid) - cpu_before
    delta = {name: after[name] - before.get(name, 0) for name in after}
    delta.pop("info", None)  # our own measuring
    busiest = sorted(((n, c) for n, c in delta.items() if c), key=lambda x: -x[1])[:6]
    return {
        "tenants": tenants,
        "seconds": round(elapsed, 1),
        "commands_per_second": round(sum(delta.values()) / elapsed, 1),
        "worker_cpu_percent": round(100 * cpu / elapsed, 2),
        "redis_cpu_percent": round(100 * server_cpu / elapsed, 2),
        "busiest": ", ".join(f"{name} {count / elapsed:.1f}/s" for name, count in busiest),
    }


def section(quick: bool) -> list[dict[str, Any]]:
    """The bench table's rows: the median of 3 consecutive spans (``quick``: one span)."""
    tenants, spans = 1000, (1 if quick else 3)
    results = measure(tenants, SPAN_SECONDS, spans)
    note = (
        f"{tenants:,} tenants that each had mail once, all folded; "
        f"{'median of 3 consecutive spans' if spans > 1 else 'one span'} of "
        f"{SPAN_SECONDS:.0f} s (each holds one evaluation pass over every tenant) "
        f"after a {WARMUP_SECONDS:.0f} s warm-up"
    )

    def middle(key: str) -> float:
        return round(median([float(r[key]) for r in results]), 2)

    busiest = min(
        results, key=lambda r: abs(float(r["commands_per_second"]) - middle("commands_per_second"))
    )["busiest"]
    return [
        {"measure": "idle `mailflow worker`, CPU", "value": middle("worker_cpu_percent"),
         "unit": "% of one core", "note": f"{note}; target <= {TARGET_PERCENT:.0f} %"},
        {"measure": "  Redis server CPU meanwhile (INFO CPU)",
         "value": middle("redis_cpu_percent"), "unit": "% of one core", "note": ""},
        {"measure": "  Redis commands while idle (INFO commandstats)",
         "value": middle("commands_per_second"), "unit": "commands/s",
         "note": f"busiest: {busiest}"},
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=SPAN_SECONDS)
    parser.add_argument("--spans", type=int, default=1)
    parser.add_argument("--worker-source", type=Path, default=ROOT,
                        help="a checkout whose worker is measured (default: this one)")  # fmt: skip
    args = parser.parse_args()
    for result in measure(args.tenants, args.seconds, args.spans, args.worker_source.resolve()):
        for name, value in result.items():
            print(f"{name:>20}: {value}")


if __name__ == "__main__":
    os.environ.setdefault("MAILFLOW_LOG_LEVEL", "WARNING")
    main()
