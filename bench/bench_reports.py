"""Connector report build time: 90 days x 500 connectors, and independence of the trace count.

A report reads only the daily counters (one hash per UTC day, one field per direction,
connector, type and TLS version), so its cost is set by days x connectors x versions seen,
never by how many traces were folded into those counters. The 10,000,000-trace case writes the
counters directly (HINCRBY, exactly what the worker's fold does per trace batch) instead of
pushing ten million traces through the API; the 10,000-trace case goes through the real path
(POST /api/v1/traces, then the worker).

Run: ``.venv/bin/python -m bench.bench_reports`` (starts a private Redis; nothing to set up).
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import redis

from service import connector_views, views
from service.core.connectors import RowFilter
from service.core.traces import counter_field
from service.core.windows import Window
from service.store import keys
from service.store.embedded import EmbeddedRedis

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
DAYS = 90
CONNECTORS = 500
# Versions each connector carries every day: most modern, some with legacy TLS or plaintext.
PROFILES = (
    (0.60, ("TLS1.2", "TLS1.3")),
    (0.25, ("TLS1.2", "TLS1.3", "TLS1.0")),
    (0.15, ("TLS1.2", "TLS1.3", "TLS1.0", "none")),
)
TENANT = "bench"


def connector_profiles(seed: int = 1) -> list[tuple[str, str, str, tuple[str, ...]]]:
    rng = random.Random(seed)
    out = []
    for n in range(CONNECTORS):
        direction = "inbound" if n % 2 else "outbound"
        ctype = "partner" if n % 3 else "onpremises"
        weights = [p for p, _ in PROFILES]
        versions = rng.choices([v for _, v in PROFILES], weights)[0]
        out.append((direction, f"connector-{n:03d}", ctype, versions))
    return out


def window() -> Window:
    return Window(NOW.date() - timedelta(days=DAYS - 1), NOW.date())


def write_counters(client: redis.Redis, total_traces: int, seed: int = 2) -> int:
    """Counters of ``total_traces`` spread over every day, connector and its versions."""
    profiles = connector_profiles()
    cells = [(d, c) for d in window().days for c in profiles for _ in c[3]]
    per_cell = max(1, total_traces // len(cells))
    rng = random.Random(seed)
    pipe = client.pipeline(transaction=False)
    for day in window().days:
        fields: dict[str, int] = {}
        for direction, name, ctype, versions in profiles:
            for version in versions:
                field = counter_field(direction, name, ctype, version)
                fields[field] = per_cell + rng.randrange(0, 3) - 1 if per_cell > 1 else 1
        for field, amount in fields.items():
            pipe.hincrby(keys.day_counts(TENANT, day), field, amount)
    pipe.hincrby(keys.meta(TENANT), "version", 1)
    pipe.execute()
    return len(cells)


def ingest_traces(client: redis.Redis, url: str, count: int) -> int:
    """``count`` traces through the API and the worker (the real ingest path)."""
    from service.app import create_app
    from service.auth import create_key
    from service.config import Settings
    from service.worker import Worker

    app = create_app({"redis_url": url, "CLOCK": lambda: NOW})
    key = create_key(client, TENANT, ("ingest",), "bench", NOW)
    http = app.test_client()
    rng = random.Random(3)
    profiles = connector_profiles()
    start = datetime.combine(window().start, datetime.min.time(), UTC)
    traces = []
    for i in range(count):
        direction, name, ctype, versions = rng.choice(profiles)
        when = start + timedelta(seconds=rng.uniform(0, (NOW - start).total_seconds()))
        traces.append({"id": f"b{i}", "timestamp": when.isoformat(), "direction": direction,
                       "connector": name, "connector_type": ctype,
                       "tls_version": rng.choice(versions)})  # fmt: skip
    for at in range(0, count, 5000):
        response = http.post("/api/v1/traces", json=traces[at : at + 5000],
                             headers={"Authorization": f"Bearer {key}"})  # fmt: skip
        assert response.status_code == 202, response.data
    Worker(client, Settings(redis_url=url), clock=lambda: NOW).work(burst=True)
    return sum(client.hlen(keys.day_counts(TENANT, d)) for d in window().days)


def timed(action: Callable[[], Any], repeat: int = 7) -> float:
    """Median milliseconds of ``action`` (after one warm-up run)."""
    action()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def report_timings(client: redis.Redis, group_by: str = "connector") -> tuple[float, ...]:
    """Milliseconds: build from counters (+ first page), first page from the cached rows,
    and a later page through its cursor (cut from the pinned rows)."""
    query = connector_views.ReportQuery(window(), group_by, RowFilter(), "-messages", 100,
                                        None, "bench")  # fmt: skip

    def build() -> None:
        views.build_connector_rows_view(client, TENANT, window(), group_by)
        connector_views.report_page(client, TENANT, query, NOW, 60)

    def first() -> bytes:
        return connector_views.report_page(client, TENANT, query, NOW, 60).body

    cursor = orjson.loads(first())["next_cursor"]
    later = replace(query, cursor=cursor)
    return (timed(build), timed(first),
            timed(lambda: connector_views.report_page(client, TENANT, later, NOW, 60)))  # fmt: skip


def main() -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as data:
        server = EmbeddedRedis(Path(data), port=0).start()
        try:
            client = redis.Redis.from_url(server.url)
            for label, traces, real in (
                ("10,000 traces (API + worker)", 10_000, True),
                ("180,000 traces (counters)", 0, False),
                ("10,000,000 traces (counters)", 10_000_000, False),
            ):
                client.flushall()
                if real:
                    cells = ingest_traces(client, server.url, traces)
                else:
                    cells = write_counters(client, traces)
                    traces = max(traces, cells)
                row: dict[str, Any] = {"case": label, "traces": traces, "counter_fields": cells}
                for prefix, group_by in (("", "connector"), ("by_day_", "day")):
                    build, first, later = report_timings(client, group_by)
                    row |= {f"{prefix}build_ms": round(build, 1),
                            f"{prefix}page1_ms": round(first, 1),
                            f"{prefix}next_page_ms": round(later, 1)}  # fmt: skip
                rows.append(row)
        finally:
            server.stop()
    print_table(rows)
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"connector report, {DAYS} days x {CONNECTORS} connectors, sort=-messages, limit=100: "
          "build = read counters + build rows + first page; page1 = first page from the cached "
          "rows; next_page = a later page through its cursor; by_day_ = group_by=day "
          f"({DAYS * CONNECTORS:,} rows)")  # fmt: skip
    header = ("case", "traces", "counter_fields", "build_ms", "page1_ms", "next_page_ms",
              "by_day_build_ms", "by_day_page1_ms", "by_day_next_page_ms")  # fmt: skip
    print("  ".join(f"{h:>19}" if i else f"{h:<30}" for i, h in enumerate(header)))
    for row in rows:
        print("  ".join(f"{row[h]:>19}" if i else f"{row[h]:<30}" for i, h in enumerate(header)))
    print(
        "note: the counter cases write the daily counters directly (HINCRBY), as the worker's"
        " fold would after that many traces; a report reads only counters, so its time"
    )
    print("      follows counter_fields (days x connectors x versions), not traces.")


if __name__ == "__main__":
    main()
