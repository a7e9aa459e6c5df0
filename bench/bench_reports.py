"""Connector report build time: 90 days x 500 connectors, and independence of the trace count.

A report reads only the daily counters (one hash per UTC day, one field per direction,
connector, type and TLS version), so its cost is set by days x connectors x versions seen,
never by how many traces were folded into those counters. The 10,000,000-trace case writes the
counters directly (HINCRBY, exactly what the worker's fold does per trace batch) instead of
pushing ten million traces through the API; the 10,000-trace case goes through the real path
(POST /api/v1/traces, then the worker).

A build is timed the way a request meets it: right after the worker folded a trace into today
(so the data version moved and the rows must be built again), the first page is asked for. The
per-connector report sums its window from cached sums of runs of days that stay valid while
their days do not change (``service/store/window_sums.py``), so ``cold_build_ms`` also times it
with no cached sum at all (a history never summed before), and ``past_day_build_ms`` right
after a trace was folded into a day 40 days back (the window's run and one 8-day block summed
again; also what the first request of a day costs, when the window's run is new).

The three cases live side by side in one Redis, as three tenants, and every measurement takes
its samples from them in turn: the machine's changing load then falls on all of them alike, and
their ratio means something even when the absolute figures move from run to run.

Run: ``.venv/bin/python -m bench.bench_reports`` (starts a private Redis; nothing to set up).
"""

from __future__ import annotations

import itertools
import random
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from time import perf_counter
from typing import Any

import orjson
import redis

from bench.harness import embedded_server
from service.core.connectors import RowFilter
from service.core.tls import TLS_VERSIONS
from service.core.traces import IngestWindow, counter_field, normalize_trace
from service.core.windows import Window
from service.reports import builders, connector_pages
from service.store import keys
from service.store import traces as trace_store
from service.store.cursor_secret import CursorSecret
from service.store.embedded import EmbeddedRedis
from service.store.traces import DedupeWindow

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
DAYS = 90
CONNECTORS = 500
# Versions each connector carries every day: most modern, some with legacy TLS or plaintext.
PROFILES = (
    (0.60, ("TLS1.2", "TLS1.3")),
    (0.25, ("TLS1.2", "TLS1.3", "TLS1.0")),
    (0.15, ("TLS1.2", "TLS1.3", "TLS1.0", "none")),
)
# (label, tenant, traces, through the API and the worker rather than written as counters)
CASES = (
    ("10,000 traces (API + worker)", "bench-10k", 10_000, True),
    ("180,000 traces (counters)", "bench-180k", 0, False),
    ("10,000,000 traces (counters)", "bench-10m", 10_000_000, False),
)


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


def write_counters(client: redis.Redis, tenant: str, total_traces: int, seed: int = 2) -> int:
    """Counters of ``total_traces`` spread over every day, connector and its versions, with
    the data version and each day's version as the fold leaves them."""
    profiles = connector_profiles()
    cells = [(d, c) for d in window().days for c in profiles for _ in c[3]]
    per_cell = max(1, total_traces // len(cells))
    rng = random.Random(seed)
    data_version = client.hincrby(keys.meta(tenant), "version", 1)
    pipe = client.pipeline(transaction=False)
    for day in window().days:
        fields: dict[str, int] = {}
        for direction, name, ctype, versions in profiles:
            for tls in versions:
                field = counter_field(direction, name, ctype, tls)
                fields[field] = per_cell + rng.randrange(0, 3) - 1 if per_cell > 1 else 1
        for field, amount in fields.items():
            pipe.hincrby(keys.day_counts(tenant, day), field, amount)
        pipe.set(keys.day_version(tenant, day), data_version)
    pipe.execute()
    return len(cells)


_trace_ids = itertools.count()


def fold_one_trace(client: redis.Redis, url: str, tenant: str, day: date) -> None:
    """One more trace of ``day`` through the ingest script and the worker's fold."""
    from service.config import Settings
    from service.worker.loop import Worker

    direction, name, ctype, versions = connector_profiles()[0]
    trace = {"id": f"late{next(_trace_ids)}", "direction": direction, "connector": name,
             "connector_type": ctype, "tls_version": versions[0],
             "timestamp": datetime.combine(day, time(11), UTC).isoformat()}  # fmt: skip
    trace_store.register_tenant(client, tenant)
    trace_store.ingest(
        client, tenant, [normalize_trace(trace, IngestWindow.at(NOW, DAYS))], DedupeWindow(NOW, 1)
    )
    assert Worker(client, Settings(redis_url=url), clock=lambda: NOW).fold_tenant(tenant) == 1


def drop_cached_sums(client: redis.Redis, tenant: str) -> None:
    for key in client.scan_iter(match=keys.block_sum(tenant, "*", "*")):
        client.delete(key)


def ingest_traces(client: redis.Redis, url: str, tenant: str, count: int) -> int:
    """``count`` traces through the API and the worker (the real ingest path)."""
    from service.app import create_app
    from service.config import Settings
    from service.store.api_keys import create_key
    from service.worker.loop import Worker

    app = create_app({"redis_url": url, "CLOCK": lambda: NOW})
    key = create_key(client, tenant, ("ingest",), "bench", NOW)
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
    return sum(client.hlen(keys.day_counts(tenant, d)) for d in window().days)


Step = Callable[[], Any]


def timed_side_by_side(
    actions: dict[str, Step], before: dict[str, Step] | None = None, repeat: int = 7
) -> dict[str, float]:
    """Median milliseconds of each case's action, its runs interleaved with the other cases'
    (after one warm-up run each), each run after that case's untimed ``before``."""
    samples: dict[str, list[float]] = {case: [] for case in actions}
    for sample in range(repeat + 1):
        for case, action in actions.items():
            if before:
                before[case]()
            started = perf_counter()
            action()
            if sample:
                samples[case].append((perf_counter() - started) * 1000)
    return {case: statistics.median(times) for case, times in samples.items()}


def report_timings(
    client: redis.Redis, url: str, tenants: list[str], group_by: str
) -> dict[str, dict[str, float]]:
    """Per tenant, milliseconds: the first page right after a fold into today (the rows built
    from the counters), the first page from the cached rows, and a later page through its
    cursor (cut from the pinned rows); for ``group_by=connector`` also the build with no
    cached sum and the build after a fold into a past day."""
    query = connector_pages.ReportQuery(window(), group_by, RowFilter(), "-messages", 100,
                                        None, "bench")  # fmt: skip
    today, past_day = NOW.date(), NOW.date() - timedelta(days=40)
    cursor_secret = CursorSecret("bench")

    def first(tenant: str) -> Step:
        return lambda: (
            connector_pages.report_page(client, tenant, query, NOW, 60, cursor_secret).body
        )

    def fold_into(tenant: str, day: date, cold: bool = False) -> Step:
        def fold() -> None:
            fold_one_trace(client, url, tenant, day)
            if cold:
                drop_cached_sums(client, tenant)

        return fold

    def later(tenant: str) -> Step:
        cursor = orjson.loads(first(tenant)())["next_cursor"]
        later = replace(query, cursor=cursor)
        return lambda: connector_pages.report_page(client, tenant, later, NOW, 60, cursor_secret)

    pages = {t: first(t) for t in tenants}
    measured = {"build_ms": timed_side_by_side(
        pages, {t: fold_into(t, today) for t in tenants}, repeat=15)}  # fmt: skip
    if group_by == "connector":
        measured["cold_build_ms"] = timed_side_by_side(
            pages, {t: fold_into(t, today, cold=True) for t in tenants})  # fmt: skip
        measured["past_day_build_ms"] = timed_side_by_side(
            pages, {t: fold_into(t, past_day) for t in tenants})  # fmt: skip
    measured["page1_ms"] = timed_side_by_side(pages)
    measured["next_page_ms"] = timed_side_by_side({t: later(t) for t in tenants})
    return {t: {name: ms[t] for name, ms in measured.items()} for t in tenants}


def counted_here(client: redis.Redis, tenant: str) -> dict[tuple[str, str | None], dict[str, int]]:
    """Messages per connector and TLS version over the window, summed here, in plain Python,
    from every day's counters."""
    totals: dict[tuple[str, str | None], dict[str, int]] = {}
    for day in window().days:
        for field, count in client.hgetall(keys.day_counts(tenant, day)).items():
            direction, name, _, version = field.decode().split("\x1f")
            tally = totals.setdefault((direction, name or None), {})
            tally[version] = tally.get(version, 0) + int(count)
    return totals


def reported(client: redis.Redis, tenant: str) -> dict[tuple[str, str | None], dict[str, int]]:
    """The same numbers as the per-connector report's rows give them."""
    view, _ = builders.build_connector_rows_view(client, tenant, window(), "connector")
    return {(row[1], row[2]): {v: n for v, n in zip(TLS_VERSIONS, row[6], strict=True) if n}
            for row in orjson.loads(view.body)["rows"]}  # fmt: skip


def main() -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as data:
        server = EmbeddedRedis(Path(data), port=0, server=embedded_server()).start()
        try:
            client = redis.Redis.from_url(server.url)
            for label, tenant, traces, real in CASES:
                if real:
                    cells = ingest_traces(client, server.url, tenant, traces)
                else:
                    cells = write_counters(client, tenant, traces)
                    traces = max(traces, cells)
                rows.append({"case": label, "traces": traces, "counter_fields": cells})
            tenants = [tenant for _, tenant, _, _ in CASES]
            for prefix, group_by in (("", "connector"), ("by_day_", "day")):
                timings = report_timings(client, server.url, tenants, group_by)
                for row, tenant in zip(rows, tenants, strict=True):
                    row |= {f"{prefix}{name}": round(ms, 1) for name, ms in timings[tenant].items()}
            for row, tenant in zip(rows, tenants, strict=True):
                # Built from cached sums, the report must hold what summing every day gives.
                assert reported(client, tenant) == counted_here(client, tenant), row["case"]
        finally:
            server.stop()
    print_table(rows)
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"connector report, {DAYS} days x {CONNECTORS} connectors, sort=-messages, limit=100: "
          "build = first page right after a fold into today (read counters + build rows + "
          "page); cold_build = the same with no cached block sum; past_day_build = after a "
          "fold into a day 40 days back; page1 = first page from the cached rows; next_page = "
          f"a later page through its cursor; by_day_ = group_by=day ({DAYS * CONNECTORS:,} rows)")  # fmt: skip
    header = ("case", "traces", "counter_fields", "build_ms", "cold_build_ms",
              "past_day_build_ms", "page1_ms", "next_page_ms", "by_day_build_ms",
              "by_day_page1_ms", "by_day_next_page_ms")  # fmt: skip
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
