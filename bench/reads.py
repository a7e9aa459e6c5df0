"""Cached report endpoints against a bare Flask JSON endpoint, same gunicorn settings, same run."""

from __future__ import annotations

import http.client
import threading
import time
from datetime import UTC, datetime
from urllib.parse import urlparse

from bench.harness import (
    SERVER_PIDS,
    Stack,
    WrkResult,
    gunicorn,
    make_key,
    median,
    redis_stack,
    run_wrk,
    tree_cpu_seconds,
)
from service.cli.demo import demo_traces
from service.config import Settings
from service.core.traces import IngestWindow, normalize_trace
from service.store import traces as trace_store
from service.store.traces import DedupeWindow
from service.worker.loop import Worker

ENDPOINTS = ("/api/v1/mailflow/snapshot", "/api/v1/mailflow/tls", "/api/v1/connectors",
             "/api/v1/insights")  # fmt: skip


def load_demo(stack: Stack, tenant: str = "bench") -> None:
    now = datetime.now(UTC)
    window = IngestWindow.at(now, 90)
    accepted = [normalize_trace(t, window) for t in demo_traces(now)]
    trace_store.register_tenant(stack.client, tenant)
    for start in range(0, len(accepted), 5000):
        trace_store.ingest(
            stack.client, tenant, accepted[start : start + 5000], DedupeWindow(now, 7)
        )
    Worker(stack.client, Settings(redis_url=stack.redis_url)).work(burst=True)


def fixed_rate_latency(
    url: str, headers: dict[str, str], rate: int, seconds: float
) -> tuple[float, float]:
    """p50 and p99 (ms) of requests sent at a fixed rate (open loop: a slow answer does not
    slow the schedule, so queueing shows in the latency instead of being hidden)."""
    parsed = urlparse(url)
    latencies: list[float] = []
    lock = threading.Lock()
    start = time.perf_counter() + 0.05
    total = int(rate * seconds)

    def sender(offset: int, step: int) -> None:
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
        for n in range(offset, total, step):
            due = start + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)  # the schedule of an open-loop load generator
            connection.request("GET", parsed.path, headers=headers)
            response = connection.getresponse()
            response.read()
            elapsed = time.perf_counter() - due
            with lock:
                latencies.append(elapsed * 1000)

    threads = [threading.Thread(target=sender, args=(i, 8)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()
    return latencies[len(latencies) // 2], latencies[
        min(len(latencies) - 1, int(0.99 * len(latencies)))
    ]


def _measured(base: str, path: str, seconds: int, connections: int,
              headers: dict[str, str]) -> tuple[WrkResult, float]:  # fmt: skip
    """wrk's result, and the server's CPU microseconds per request during it (all its processes):
    a measure of the app's own cost that the machine's other load disturbs far less."""
    pid = SERVER_PIDS[base]
    before = tree_cpu_seconds(pid)
    result = run_wrk(base + path, seconds, connections, headers)
    used = tree_cpu_seconds(pid) - before
    return result, used * 1e6 / max(1.0, result.requests_per_second * seconds)


def cached_reads(
    seconds: int = 5, rounds: int = 3, connections: int = 16, rate: int = 100
) -> list[dict]:
    """Requests/s and latency of each endpoint and of the bare endpoint, alternating rounds."""
    with redis_stack() as stack:
        load_demo(stack)
        auth = {"Authorization": f"Bearer {make_key(stack)}"}
        samples: dict[str, list] = {path: [] for path in (*ENDPOINTS, "bare")}
        with gunicorn("service.wsgi:app", stack.env) as mailflow_url, \
             gunicorn("bench.bare_app:app", stack.env) as bare_url:  # fmt: skip
            for _ in range(rounds):
                samples["bare"].append(_measured(bare_url, "/json", seconds, connections, {}))
                for path in ENDPOINTS:
                    result = _measured(mailflow_url, path, seconds, connections, auth)
                    if result[0].non_2xx:
                        raise RuntimeError(f"{path}: {result[0].non_2xx} non-2xx responses")
                    samples[path].append(result)
            fixed = {"bare": fixed_rate_latency(bare_url + "/json", {}, rate, seconds)}
            for path in ENDPOINTS:
                fixed[path] = fixed_rate_latency(mailflow_url + path, auth, rate, seconds)
        bare_rps = median([r.requests_per_second for r, _ in samples["bare"]])
        bare_cpu = median([cpu for _, cpu in samples["bare"]])
        rows = []
        for path, measured in samples.items():
            results = [r for r, _ in measured]
            rps = median([r.requests_per_second for r in results])
            cpu_us = median([cpu for _, cpu in measured])
            rows.append({
                "endpoint": path, "requests_per_second": rps,
                "p50_ms": median([r.p50_ms for r in results]),
                "p99_ms": median([r.p99_ms for r in results]),
                "ratio_to_bare": rps / bare_rps,
                "server_cpu_us": cpu_us, "cpu_ratio_to_bare": bare_cpu / cpu_us,
                "fixed_rate": rate, "fixed_p50_ms": fixed[path][0], "fixed_p99_ms": fixed[path][1],
            })  # fmt: skip
        return rows


if __name__ == "__main__":
    for row in cached_reads():
        print(row)
