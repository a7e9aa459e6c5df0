"""Per-domain report at the limits: 30 days x 20,000 domains a day (docs/domains.md).

The per-domain counters of 30 days are written as the worker's fold leaves them (the same
fields, ``core.who.GroupCounts.fields``; the same 20,000 domains every day, each with one or two
TLS versions, one connector and one or two remote hosts), plus the names hash the fold's
admission keeps. Then, timed:
- ``build after a fold into today``: one trace folded into today through the ingest script
  and the worker (so the data version moved and the rows must be built again), then the rows
  view built: what the worker does after each fold of a tenant at the limit (a request never
  pays it: the worker keeps the 7- and 30-day views built);
- ``cold build``: the same with no cached sum of days at all (a history never summed before);
- the worker's cold rebuild: those sums made in slices (``who_rows.sum_stale_days``), the
  longest slice, and the build after them;
- ``cached first page``: the default first page of the 30-day report once built (what a
  request costs);
- the longest Redis command of the build (SLOWLOG), and the memory of one day's counters and
  names hash (MEMORY USAGE).

Run: ``.venv/bin/python -m bench.who_reports`` (starts a private Redis; nothing to set up).
"""

from __future__ import annotations

import random
import statistics
import tempfile
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from time import perf_counter
from typing import Any

import redis

from service.config import Settings
from service.core.traces import IngestWindow, normalize_trace
from service.core.who import DOMAINS, GroupCounts
from service.core.windows import Window
from service.reports import who_reports, who_rows
from service.store import keys
from service.store import traces as trace_store
from service.store.cursor_secret import CursorSecret
from service.store.embedded import EmbeddedRedis
from service.store.traces import DedupeWindow
from service.worker.loop import VIEW_SLICE_FIELDS, Worker

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
DAYS = 30
DOMAINS_PER_DAY = 20_000
TENANT = "bench-domains"


def window() -> Window:
    return Window(NOW.date() - timedelta(days=DAYS - 1), NOW.date())


def write_counters(client: redis.Redis, seed: int = 3) -> None:
    rng = random.Random(seed)
    version = client.hincrby(keys.meta(TENANT), "version", 1)
    for day in window().days:
        pipe = client.pipeline(transaction=False)
        fields: dict[str, int] = {}
        names: dict[str, str] = {}
        group = GroupCounts("outbound")
        for n in range(DOMAINS_PER_DAY):
            domain = f"partner{n}.example"
            versions = ("TLS1.2", "TLS1.3") if n % 3 else ("TLS1.2",)
            for tls in versions:
                group.add(domain, tls, "", f"mx{rng.randrange(2)}.{domain}", rng.randint(1, 40))
            names[domain] = "\x1f".join(group.extras[domain])
        fields.update(group.fields(group.extras))
        items = list(fields.items())
        for at in range(0, len(items), 5000):
            pipe.hset(
                keys.who_counts(TENANT, DOMAINS.name, day), mapping=dict(items[at : at + 5000])
            )
        name_items = list(names.items())
        for at in range(0, len(name_items), 5000):
            pipe.hset(keys.who_names(TENANT, DOMAINS.name, "outbound", day),
                      mapping=dict(name_items[at : at + 5000]))  # fmt: skip
        pipe.set(keys.who_version(TENANT, DOMAINS.name, day), version)
        pipe.execute()


def fold_one_trace(client: redis.Redis, url: str, number: int) -> None:
    trace = {"id": f"late{number}", "direction": "outbound", "tls_version": "TLS1.2",
             "recipient_domain": "partner1.example",
             "timestamp": datetime.combine(NOW.date(), time(11), UTC).isoformat()}  # fmt: skip
    trace_store.register_tenant(client, TENANT)
    trace_store.ingest(client, TENANT, [normalize_trace(trace, IngestWindow.at(NOW, 90))],
                       DedupeWindow(NOW, 1))  # fmt: skip
    assert Worker(client, Settings(redis_url=url), clock=lambda: NOW).fold_tenant(TENANT) == 1


def fold_new_domains(client: redis.Redis, url: str, tenant: str, count: int = 5000) -> float:
    """``count`` traces of as many new domains (and users) ingested and folded; the longest
    Redis command of it in ms (SLOWLOG)."""
    client.slowlog_reset()
    window = IngestWindow.at(NOW, 90)
    batch = [normalize_trace({"id": f"new{tenant}{n}", "direction": "outbound",
                              "tls_version": "TLS1.2", "recipient_domain": f"new{n}.example",
                              "remote_host": f"mx.new{n}.example", "remote_ip": "192.0.2.1",
                              "auth_user": f"user{n}@example.com",
                              "timestamp": datetime.combine(NOW.date(), time(10), UTC).isoformat()},
                             window) for n in range(count)]  # fmt: skip
    trace_store.register_tenant(client, tenant)
    trace_store.ingest(client, tenant, batch, DedupeWindow(NOW, 1))
    assert Worker(client, Settings(redis_url=url), clock=lambda: NOW).fold_tenant(tenant) == count
    return max((e["duration"] for e in client.slowlog_get(128)), default=0) / 1000


def _timed(action: Any) -> float:
    started = perf_counter()
    action()
    return (perf_counter() - started) * 1000


def main(runs: int = 5) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as data:
        server = EmbeddedRedis(Path(data), port=0).start()
        try:
            client = redis.Redis.from_url(server.url)
            write_counters(client)
            day = NOW.date().isoformat()
            memory_counts = client.memory_usage(keys.who_counts(TENANT, DOMAINS.name, day))
            memory_names = client.memory_usage(
                keys.who_names(TENANT, DOMAINS.name, "outbound", day)
            )
            fields = client.hlen(keys.who_counts(TENANT, DOMAINS.name, day))

            def build() -> None:
                who_rows.build_rows_view(client, TENANT, DOMAINS, window())

            build()  # the cached sums of the settled days, as the worker leaves them
            client.config_set("slowlog-log-slower-than", 1000)
            client.slowlog_reset()
            warm, cold = [], []
            for run in range(runs):
                fold_one_trace(client, server.url, run)
                warm.append(_timed(build))
            for _ in range(max(1, runs // 2)):
                for key in client.scan_iter(match=keys.who_sum(TENANT, DOMAINS.name, "*", "*")):
                    client.delete(key)
                cold.append(_timed(build))
            # The worker's cold rebuild in slices (other tenants are served between them):
            # the sums of the windows it keeps built, slice by slice, then the build.
            slices, after_slices = [], []
            for _ in range(max(1, runs // 2)):
                for key in client.scan_iter(match=keys.who_sum(TENANT, "*", "*", "*")):
                    client.delete(key)
                while True:
                    started = perf_counter()
                    if not who_rows.sum_stale_days(client, TENANT, NOW.date(), VIEW_SLICE_FIELDS):
                        break  # what is left is summed by the build
                    slices.append((perf_counter() - started) * 1000)
                after_slices.append(_timed(build))
            # The bench's own DELs of cached sums (to time cold builds) are not the service's.
            slow = [
                e for e in client.slowlog_get(128) if not e["command"].upper().startswith(b"DEL")
            ]
            slowest = max((entry["duration"] for entry in slow), default=0)
            at_limit = fold_new_domains(client, server.url, TENANT)
            admitted = fold_new_domains(client, server.url, "bench-fresh")
            secret = CursorSecret("bench")
            query = who_reports.who_query(DOMAINS, {"limit": 100, "days": DAYS}, window())
            who_reports.report_page(client, TENANT, query, NOW, 60, secret)
            cached = [
                _timed(lambda: who_reports.report_page(client, TENANT, query, NOW, 60, secret))
                for _ in range(50)
            ]
            client.close()
        finally:
            server.stop()
    return [
        {"measure": f"30-day report rows built after a fold into today ({DOMAINS_PER_DAY:,} "
         "domains a day)", "value": round(statistics.median(warm), 1), "unit": "ms",
         "note": f"median of {runs}; budget < 200 ms; the worker's work, not a request's"},
        {"measure": "  the same with no cached sum of days (cold)",
         "value": round(statistics.median(cold), 1), "unit": "ms", "note": ""},
        {"measure": "  the worker's cold rebuild: longest slice of summing days",
         "value": round(max(slices), 1), "unit": "ms",
         "note": f"{len(slices) // max(1, runs // 2)} slices of about {VIEW_SLICE_FIELDS:,} "
                 "fields (7- and 30-day windows), other tenants served between them"},
        {"measure": "  the build after the slices", "value": round(statistics.median(
            after_slices), 1), "unit": "ms", "note": "as after a fold into today"},
        {"measure": "  first page of the built 30-day report (a request)",
         "value": round(statistics.median(cached), 2), "unit": "ms", "note": "median of 50"},
        {"measure": "  longest Redis command during the builds (SLOWLOG)",
         "value": round(slowest / 1000, 1), "unit": "ms", "note": "budget ~50 ms"},
        {"measure": "longest Redis command ingesting and folding 5,000 traces of 5,000 new "
         "domains and users, the day's domains at the limit", "value": round(at_limit, 1),
         "unit": "ms", "note": "all go to (other domains); budget ~50 ms"},
        {"measure": "  the same for a tenant with no domain yet", "value": round(admitted, 1),
         "unit": "ms", "note": "all 5,000 admitted by name"},
        {"measure": "memory of one day's domain counters at the limit (MEMORY USAGE)",
         "value": round(memory_counts / 2**20, 2), "unit": "MiB",
         "note": f"{fields:,} fields: {DOMAINS_PER_DAY:,} domains, one direction"},
        {"measure": "memory of one day's admitted-names hash at the limit",
         "value": round(memory_names / 2**20, 2), "unit": "MiB", "note": "with their hosts"},
    ]  # fmt: skip


if __name__ == "__main__":
    for row in main():
        print(row)
