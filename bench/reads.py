"""Cached report endpoints against a bare Flask JSON endpoint, same gunicorn settings, same run."""

from __future__ import annotations

from datetime import UTC, datetime

from bench.harness import Stack, gunicorn, make_key, median, redis_stack, run_wrk
from service.config import Settings
from service.core.traces import IngestWindow, normalize_trace
from service.demo import demo_traces
from service.store import traces as trace_store
from service.worker import Worker

ENDPOINTS = ("/api/v1/mailflow/snapshot", "/api/v1/mailflow/tls", "/api/v1/connectors",
             "/api/v1/insights")  # fmt: skip


def load_demo(stack: Stack, tenant: str = "bench") -> None:
    now = datetime.now(UTC)
    window = IngestWindow.at(now, 90)
    accepted = [normalize_trace(t, window) for t in demo_traces(now)]
    trace_store.register_tenant(stack.client, tenant)
    for start in range(0, len(accepted), 5000):
        trace_store.ingest(stack.client, tenant, accepted[start : start + 5000], 7 * 86400)
    Worker(stack.client, Settings(redis_url=stack.redis_url)).work(burst=True)


def cached_reads(seconds: int = 5, rounds: int = 3, connections: int = 16) -> list[dict]:
    """Requests/s and latency of each endpoint and of the bare endpoint, alternating rounds."""
    with redis_stack() as stack:
        load_demo(stack)
        auth = {"Authorization": f"Bearer {make_key(stack)}"}
        samples: dict[str, list] = {path: [] for path in (*ENDPOINTS, "bare")}
        with gunicorn("service.wsgi:app", stack.env) as mailflow_url, \
             gunicorn("bench.bare_app:app", stack.env) as bare_url:  # fmt: skip
            for _ in range(rounds):
                samples["bare"].append(run_wrk(bare_url + "/json", seconds, connections, {}))
                for path in ENDPOINTS:
                    result = run_wrk(mailflow_url + path, seconds, connections, auth)
                    if result.non_2xx:
                        raise RuntimeError(f"{path}: {result.non_2xx} non-2xx responses")
                    samples[path].append(result)
        bare_rps = median([r.requests_per_second for r in samples["bare"]])
        rows = []
        for path, results in samples.items():
            rps = median([r.requests_per_second for r in results])
            rows.append({
                "endpoint": path, "requests_per_second": rps,
                "p50_ms": median([r.p50_ms for r in results]),
                "p99_ms": median([r.p99_ms for r in results]),
                "ratio_to_bare": rps / bare_rps,
            })  # fmt: skip
        return rows


if __name__ == "__main__":
    for row in cached_reads():
        print(row)
