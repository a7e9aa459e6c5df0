"""Report views: built from the daily counters, cached as bytes with an ETag in Redis.

The worker rebuilds the precomputed windows of a tenant after its data changed; the API serves
those bytes as they are. Any other window (or parameter) is built on request and cached under
the data version it was built from, so a cached answer is never older than the counters.
Connector definitions are part of the data version (defining one bumps it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import redis

from service.core.connectors import GROUPINGS, build_rows, row_key, unpack
from service.core.snapshot import build_snapshot
from service.core.tls_report import build_tls_report, daily_tls, directions_for
from service.core.windows import Window
from service.store import aggregates, connectors_store, insights_store, keys, window_sums
from service.store.views import CachedView, get_view, put_view

# Windows the worker keeps built: (report, days ending today), with default parameters.
PRECOMPUTED_WINDOWS: tuple[tuple[str, int], ...] = (
    ("snapshot", 7), ("snapshot", 30), ("tls", 7), ("tls", 30),
    ("connectors", 7), ("connectors", 30),
)  # fmt: skip
PRECOMPUTED_TTL_SECONDS = 2 * 86400  # yesterday's windows fade out on their own

Clock = Callable[[], datetime]
Built = tuple[CachedView, int]  # the view and the data version it was built from


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ms_to_rfc3339(epoch_ms: int | None) -> str | None:
    if epoch_ms is None:
        return None
    return rfc3339(datetime.fromtimestamp(epoch_ms / 1000, UTC))


def is_precomputed(report: str, window: Window, today: date) -> bool:
    return window.end == today and any(
        name == report and window.start == today - timedelta(days=days - 1)
        for name, days in PRECOMPUTED_WINDOWS
    )


def serialise(tenant: str, document: Any) -> CachedView:
    body = orjson.dumps(document)
    # The tenant is part of the tag: equal data in two tenants never shares a validator.
    tag = hashlib.blake2b(tenant.encode() + b"\0" + body, digest_size=12).hexdigest()
    return CachedView(body, f'"{tag}"')


def cached_view(
    client: redis.Redis,
    tenant: str,
    report: str,
    window: Window,
    params: tuple[str, ...],
    now: datetime,
    cache_seconds: int,
    build: Callable[[], Built],
    precomputable: bool = True,
) -> CachedView:
    """The cached view of ``report`` for ``window`` and ``params``, built here when missing.

    Precomputed windows (default parameters) are kept fresh by the worker and served as they
    are; any other view is keyed by the current data version, so it is rebuilt after a change.
    """
    parts: tuple[str, ...] = (window.start.isoformat(), window.end.isoformat(), *params)
    if precomputable and is_precomputed(report, window, now.astimezone(UTC).date()):
        ttl = PRECOMPUTED_TTL_SECONDS
    else:
        parts += (str(aggregates.data_version(client, tenant)),)
        ttl = cache_seconds
    cached = get_view(client, tenant, report, *parts)
    if cached is not None:
        return cached
    view, version = build()
    put_view(client, tenant, report, parts, view, version, ttl)
    return view


# -- builders -------------------------------------------------------------------------------


def build_snapshot_view(client: redis.Redis, tenant: str, window: Window, now: datetime) -> Built:
    counters = aggregates.read_counters(client, tenant, window.days)
    document = build_snapshot(
        counters.days,
        window,
        generated_at=rfc3339(now),
        data_as_of=ms_to_rfc3339(counters.data_as_of_ms),
        active_insights=insights_store.count_active(client, tenant),
    )
    return serialise(tenant, document), counters.version


def build_tls_view(
    client: redis.Redis, tenant: str, window: Window, now: datetime, direction: str | None
) -> Built:
    counters = connectors_store.read_report_counters(client, tenant, window.days, "tls")
    daily = daily_tls(window.days, (unpack(p) for p in counters.packed))
    document = build_tls_report(
        daily, window, directions_for(direction), generated_at=rfc3339(now),
        data_as_of=ms_to_rfc3339(counters.data_as_of_ms),
    )  # fmt: skip
    return serialise(tenant, document), counters.version


def build_connector_rows_view(
    client: redis.Redis, tenant: str, window: Window, group_by: str
) -> Built:
    """Every row of the connector report, unfiltered and unsorted: what pages are cut from."""
    if group_by == "connector":
        counters = window_sums.read_window_sum(client, tenant, window)
        rows = build_rows(unpack(counters.packed[0]), counters.definitions)
    else:
        counters = connectors_store.read_report_counters(client, tenant, window.days, "days")
        rows = [
            row
            for day, packed in zip(window.days, counters.packed, strict=True)
            for row in build_rows(unpack(packed), counters.definitions, date=day)
        ]
    rows.sort(key=row_key)  # pages sort these again: presorted input makes that cheap
    document = {"version": counters.version,
                "data_as_of": ms_to_rfc3339(counters.data_as_of_ms), "rows": rows}  # fmt: skip
    return serialise(tenant, document), counters.version


# -- served views ----------------------------------------------------------------------------


def snapshot_view(
    client: redis.Redis, tenant: str, window: Window, now: datetime, cache_seconds: int
) -> CachedView:
    """The cached snapshot of ``window``, built and cached here when it is not there."""
    return cached_view(client, tenant, "snapshot", window, (), now, cache_seconds,
                       lambda: build_snapshot_view(client, tenant, window, now))  # fmt: skip


def tls_view(
    client: redis.Redis,
    tenant: str,
    window: Window,
    direction: str | None,
    now: datetime,
    cache_seconds: int,
) -> CachedView:
    return cached_view(
        client, tenant, "tls", window, (direction or "all",), now, cache_seconds,
        lambda: build_tls_view(client, tenant, window, now, direction),
        precomputable=direction is None,
    )  # fmt: skip


def connector_rows_view(
    client: redis.Redis,
    tenant: str,
    window: Window,
    group_by: str,
    now: datetime,
    cache_seconds: int,
) -> CachedView:
    def build() -> Built:
        return build_connector_rows_view(client, tenant, window, group_by)

    return cached_view(client, tenant, "connectors", window, (group_by,), now, cache_seconds, build)


def precomputed_keys(tenant: str, today: date, report: str) -> list[str]:
    """The keys of today's precomputed views of ``report`` (to invalidate them)."""
    names = []
    for name, days in PRECOMPUTED_WINDOWS:
        if name == report:
            start = (today - timedelta(days=days - 1)).isoformat()
            params = GROUPINGS if report == "connectors" else ("all",) if report == "tls" else ()
            names += [keys.view(tenant, report, start, today.isoformat(), *p) for p in
                      ([(g,) for g in params] if params else [()])]  # fmt: skip
    return names


def refresh_precomputed(client: redis.Redis, tenant: str, now: datetime) -> int:
    """Rebuild every precomputed window of a tenant (the worker, after a fold)."""
    today = now.astimezone(UTC).date()
    built = 0
    for report, days in PRECOMPUTED_WINDOWS:
        window = Window(today - timedelta(days=days - 1), today)
        start_end = (window.start.isoformat(), window.end.isoformat())
        views: list[tuple[tuple[str, ...], Built]]
        if report == "snapshot":
            views = [((), build_snapshot_view(client, tenant, window, now))]
        elif report == "tls":
            views = [(("all",), build_tls_view(client, tenant, window, now, None))]
        else:
            views = [
                ((g,), build_connector_rows_view(client, tenant, window, g)) for g in GROUPINGS
            ]
        for params, (view, version) in views:
            built += put_view(client, tenant, report, (*start_end, *params), view, version,
                              PRECOMPUTED_TTL_SECONDS)  # fmt: skip
    return built
