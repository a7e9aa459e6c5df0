"""Prometheus metrics, correct across every gunicorn worker, worker process and host.

Each process counts in memory (a dict increment per event) and adds its counts to one Redis
hash every second (``flush``); ``/metrics`` renders that hash plus a few gauges read from Redis
at scrape time. A crashed process loses at most its last second of counts — acceptable for
monitoring, never for mail data, which does not go this way.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache

import redis

from service.core.local_days import local_today
from service.core.traces import KNOWN_FIELDS, split_security_field
from service.store import keys, tenant_zone, webhooks_store

Labels = tuple[tuple[str, str], ...]
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# name -> (type, help). Every metric mailflow exports is listed here.
CATALOGUE: dict[str, tuple[str, str]] = {
    "mailflow_http_requests_total": (
        "counter",
        "HTTP requests by route, method and status",
    ),
    "mailflow_http_request_duration_seconds": (
        "histogram",
        "HTTP request latency by route and status",
    ),
    "mailflow_traces_total": (
        "counter",
        "Ingested traces by outcome: accepted, duplicate, rejected",
    ),
    "mailflow_traces_rejected_total": (
        "counter",
        "Rejected traces by the field at fault",
    ),
    "mailflow_folded_traces_total": (
        "counter",
        "Traces folded into the daily counters",
    ),
    "mailflow_fold_batches_total": (
        "counter",
        "Fold calls (each one atomic Lua call)",
    ),
    "mailflow_fold_duration_seconds": (
        "histogram",
        "Time of one fold: read, sum, Lua call",
    ),
    "mailflow_claimed_entries_total": (
        "counter",
        "Stream entries taken over from dead consumers",
    ),
    "mailflow_view_build_duration_seconds": (
        "histogram",
        "Time to rebuild a tenant's precomputed views",
    ),
    "mailflow_insight_evaluation_duration_seconds": (
        "histogram",
        "Time to evaluate a tenant's insight rules",
    ),
    "mailflow_stream_backlog_entries": (
        "gauge",
        "Ingested batches not yet folded, per tenant",
    ),
    "mailflow_stream_oldest_entry_age_seconds": (
        "gauge",
        "Age of the oldest unfolded batch, per tenant",
    ),
    "mailflow_workers_alive": (
        "gauge",
        "Workers with a fresh heartbeat",
    ),
    "mailflow_tlsrpt_reports_total": (
        "counter",
        "TLS-RPT reports posted, by outcome: counted, duplicate, rejected, day-full, reports-full",
    ),
    "mailflow_webhook_deliveries_total": (
        "counter",
        "Webhook delivery attempts by outcome: delivered, pending (to be retried), failed",
    ),
    "mailflow_webhook_delivery_duration_seconds": (
        "histogram",
        "Time of one webhook post, until the answer or the failure",
    ),
    "mailflow_webhook_queue_oldest_age_seconds": (
        "gauge",
        "Age of the oldest webhook delivery not yet delivered, over every tenant",
    ),
    "mailflow_messages_total": (
        "counter",
        "Messages counted into each tenant's local today, per tenant, direction, connector, TLS "
        "version and transport security class (resets at the tenant's local midnight: use "
        "rate() or increase()); only with MAILFLOW_METRICS_TOKEN",
    ),
}


# Labels whose values a client chooses: each maps onto a fixed set, anything else to "other".
# The series live in one Redis hash without expiry, so an unbounded label (a made-up field
# name per request, a made-up HTTP method) would mint series without end.
BOUNDED_LABELS: dict[str, frozenset[str]] = {
    "field": frozenset({*KNOWN_FIELDS, "body", "traces"}),
    "method": frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}),
}
OTHER = "other"


@lru_cache(maxsize=4096)
def _series(name: str, labels: Labels) -> str:
    if not labels:
        return name
    inner = ",".join(f'{k}="{_escape(_bounded(k, v))}"' for k, v in labels)
    return f"{name}{{{inner}}}"


def _bounded(label: str, value: str) -> str:
    allowed = BOUNDED_LABELS.get(label)
    return value if allowed is None or value in allowed else OTHER


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@lru_cache(maxsize=1024)
@lru_cache(maxsize=4096)
def _histogram_series(name: str, labels: Labels) -> tuple[tuple[tuple[float, str], ...], str, str]:
    """The series names of one histogram: (bound, bucket series)..., sum, count."""
    bounds = [*LATENCY_BUCKETS, float("inf")]
    buckets = tuple(
        (
            bound,
            _series(
                name + "_bucket", (*labels, ("le", "+Inf" if bound == float("inf") else str(bound)))
            ),
        )
        for bound in bounds
    )
    return buckets, _series(name + "_sum", labels), _series(name + "_count", labels)


class Metrics:
    """In-memory counts of one process, flushed to Redis."""

    def __init__(self) -> None:
        self._pending: defaultdict[str, float] = defaultdict(float)
        self._lock = threading.Lock()
        self._flusher: threading.Thread | None = None

    def inc(self, name: str, labels: Labels = (), amount: float = 1) -> None:
        with self._lock:
            self._pending[_series(name, labels)] += amount

    def observe(self, name: str, labels: Labels, seconds: float) -> None:
        buckets, total, count = _histogram_series(name, labels)
        with self._lock:
            pending = self._pending
            for bound, series in buckets:
                if seconds <= bound:
                    pending[series] += 1
            pending[total] += seconds
            pending[count] += 1

    @contextmanager
    def timer(self, name: str, labels: Labels = ()) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.observe(name, labels, time.perf_counter() - started)

    def flush(self, client: redis.Redis) -> None:
        with self._lock:
            pending, self._pending = self._pending, defaultdict(float)
        if not pending:
            return
        pipe = client.pipeline(transaction=False)
        for series, amount in pending.items():
            pipe.hincrbyfloat(keys.metrics(), series, amount)
        try:
            pipe.execute()
        except redis.RedisError:
            with self._lock:  # keep the counts for the next try
                for series, amount in pending.items():
                    self._pending[series] += amount

    def start_flusher(self, client: redis.Redis, interval: float = 1.0) -> None:
        """A daemon thread flushing every ``interval`` seconds (started after a fork)."""
        if self._flusher is not None and self._flusher.is_alive():
            return

        def loop() -> None:
            while True:
                time.sleep(interval)  # a background cadence, not a wait for a result
                self.flush(client)

        self._flusher = threading.Thread(target=loop, name="metrics-flush", daemon=True)
        self._flusher.start()


METRICS = Metrics()  # one per process: every part of a process counts into the same place


def render(
    client: redis.Redis,
    now: float,
    worker_stale_seconds: float,
    per_tenant: bool,
    messages_day: str | datetime | None = None,
) -> str:
    """The Prometheus text exposition of everything counted, plus gauges read now;
    ``messages_day``: also the message counters per tenant of that instant's local today in
    each tenant's zone, or of that day (``tenant_messages``)."""
    stored = {k.decode(): float(v) for k, v in client.hgetall(keys.metrics()).items()}
    gauges = dict(_gauges(client, now, worker_stale_seconds, per_tenant))
    if messages_day is not None:
        gauges.update(tenant_messages(client, messages_day, per_tenant))
    lines: list[str] = []
    # Each sample under its metric's name, found once (a histogram's series by their prefix).
    by_base: dict[str, dict[str, float]] = {}
    for series, value in {**stored, **gauges}.items():
        by_base.setdefault(series.split("{", 1)[0], {})[series] = value
    for name, (kind, help_text) in CATALOGUE.items():
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        prefix = (name + "_") if kind == "histogram" else name
        samples = {s: v for base, group in by_base.items() if _belongs(base, name, prefix)
                   for s, v in group.items()}  # fmt: skip
        lines.extend(f"{series} {_number(value)}" for series, value in sorted(samples.items()))
    return "\n".join(lines) + "\n"


def _belongs(series: str, name: str, prefix: str) -> bool:
    base = series.split("{", 1)[0]
    return base == name or (prefix != name and base.startswith(prefix))


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def _gauges(
    client: redis.Redis, now: float, stale: float, per_tenant: bool
) -> Iterable[tuple[str, float]]:
    yield (
        "mailflow_workers_alive",
        float(client.zcount(keys.worker_heartbeats(), now - stale, "+inf")),
    )
    tenants = sorted(t.decode() for t in client.smembers(keys.tenants()))
    pipe = client.pipeline(transaction=False)
    for tenant in tenants:
        pipe.xlen(keys.stream(tenant))
        pipe.xrange(keys.stream(tenant), count=1)
    replies = pipe.execute() if tenants else []
    total, oldest = 0, 0.0
    for i, tenant in enumerate(tenants):
        backlog, first = replies[2 * i], replies[2 * i + 1]
        age = max(0.0, now - int(first[0][0].split(b"-")[0]) / 1000) if first else 0.0
        total += backlog
        oldest = max(oldest, age)
        if per_tenant:
            labels = (("tenant", tenant),)
            yield _series("mailflow_stream_backlog_entries", labels), float(backlog)
            yield _series("mailflow_stream_oldest_entry_age_seconds", labels), round(age, 3)
    if not per_tenant:
        yield "mailflow_stream_backlog_entries", float(total)
        yield "mailflow_stream_oldest_entry_age_seconds", round(oldest, 3)
    yield "mailflow_webhook_queue_oldest_age_seconds", _webhook_queue_age(client, now)


def _webhook_queue_age(client: redis.Redis, now: float) -> float:
    oldest = [webhooks_store.oldest_pending_ms(client, tenant)
              for tenant in webhooks_store.webhook_tenants(client)]  # fmt: skip
    found = [ms for ms in oldest if ms is not None]
    return round(max(0.0, now - min(found) / 1000), 3) if found else 0.0


# Bounds on the message series (label cardinality): per tenant and direction, the connectors
# with the most messages today are labelled by name, the rest summed as OTHER_CONNECTORS; over
# MAX_MESSAGE_SERIES series in all, further tenants are summed into tenant OTHER.
MAX_CONNECTORS_LABELLED = 50
MAX_MESSAGE_SERIES = 20_000
NO_CONNECTOR = "(none)"  # mail to or from the internet without a connector
OTHER_CONNECTORS = "(other)"


def tenant_messages(
    client: redis.Redis, when: str | datetime, per_tenant: bool
) -> dict[str, float]:
    """``mailflow_messages_total`` series from the tenants' counters of today: with an instant,
    each tenant's local today in its own zone (as its reports see it); with a day, that day for
    every tenant. One pipeline of zone reads and one of HGETALLs, whatever the number of
    tenants (see docs/prometheus.md for its cost)."""
    tenants = sorted(t.decode() for t in client.smembers(keys.tenants()))
    days = _tenant_days(client, tenants, when)
    pipe = client.pipeline(transaction=False)
    for tenant, day in zip(tenants, days, strict=True):
        pipe.hgetall(keys.day_counts(tenant, day))
    replies = pipe.execute() if tenants else []
    out: dict[str, float] = {}
    for tenant, counts in zip(tenants, replies, strict=True):
        label = tenant if per_tenant and len(out) < MAX_MESSAGE_SERIES else OTHER
        prefix = f'mailflow_messages_total{{tenant="{_escape(label)}",direction="'
        for (direction, connector, tls, klass), n in _bounded_connectors(counts).items():
            # Built here rather than by _series: thousands of distinct series per scrape
            # would only churn its cache.
            series = (f'{prefix}{_escape(direction)}",connector="{_escape(connector)}",'
                      f'tls_version="{_escape(tls)}",security="{_escape(klass)}"}}')  # fmt: skip
            out[series] = out.get(series, 0.0) + n
    return out


def _tenant_days(client: redis.Redis, tenants: list[str], when: str | datetime) -> list[str]:
    """Each tenant's day to read: ``when`` itself, or the local today of instant ``when`` in
    the tenant's zone (the zones read in one pipeline: a scrape every 30 s costs one round trip
    more, and never reads a zone older than the one reports use)."""
    if isinstance(when, str):
        return [when] * len(tenants)
    pipe = client.pipeline(transaction=False)
    for tenant in tenants:
        pipe.get(keys.time_zone(tenant))
    names = pipe.execute() if tenants else []
    return [local_today(when, tenant_zone.zone_from_stored(name)).isoformat() for name in names]


def _bounded_connectors(counts: dict[bytes, bytes]) -> dict[tuple[str, str, str, str], int]:
    """A day's counters by (direction, connector, TLS version, transport security class), at
    most MAX_CONNECTORS_LABELLED connectors per direction named, by today's volume. The class
    is the one the snapshot reads: the field's own when it carries one, else what the version
    alone says."""
    rows: dict[tuple[str, str, str, str], int] = {}
    volume: dict[tuple[str, str], int] = {}
    for field, raw in counts.items():
        try:
            direction, connector, _, tls, klass, _ = split_security_field(field.decode())
        except ValueError:  # not a messages counter: a scrape never fails on one
            continue
        name = connector or NO_CONNECTOR
        rows[(direction, name, tls, klass)] = rows.get((direction, name, tls, klass), 0) + int(raw)
        volume[(direction, name)] = volume.get((direction, name), 0) + int(raw)
    kept: set[tuple[str, str]] = set()
    for direction in {d for d, _ in volume}:
        ranked = sorted((k for k in volume if k[0] == direction), key=lambda k: (-volume[k], k))
        kept.update(ranked[:MAX_CONNECTORS_LABELLED])
    bounded: dict[tuple[str, str, str, str], int] = {}
    for (direction, name, tls, klass), n in rows.items():
        key = (direction, name if (direction, name) in kept else OTHER_CONNECTORS, tls, klass)
        bounded[key] = bounded.get(key, 0) + n
    return bounded
