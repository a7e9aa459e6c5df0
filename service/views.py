"""Report views: built from the daily counters, cached as bytes with an ETag in Redis.

The worker rebuilds the precomputed windows of a tenant after its data changed; the API serves
those bytes as they are. Any other window is built on request and cached under the data
version it was built from, so a cached answer is never older than the counters.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import redis

from service.core.snapshot import build_snapshot
from service.core.windows import Window
from service.store import aggregates, insights_store
from service.store.views import CachedView, get_view, put_view

# Windows the worker keeps built: (report, days ending today).
PRECOMPUTED_WINDOWS: tuple[tuple[str, int], ...] = (("snapshot", 7),)
PRECOMPUTED_TTL_SECONDS = 2 * 86400  # yesterday's windows fade out on their own

Clock = Callable[[], datetime]


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


def serialise(tenant: str, document: dict[str, Any]) -> CachedView:
    body = orjson.dumps(document)
    # The tenant is part of the tag: equal data in two tenants never shares a validator.
    tag = hashlib.blake2b(tenant.encode() + b"\0" + body, digest_size=12).hexdigest()
    return CachedView(body, f'"{tag}"')


def build_snapshot_view(
    client: redis.Redis, tenant: str, window: Window, now: datetime
) -> tuple[CachedView, int]:
    counters = aggregates.read_counters(client, tenant, window.days)
    document = build_snapshot(
        counters.days,
        window,
        generated_at=rfc3339(now),
        data_as_of=ms_to_rfc3339(counters.data_as_of_ms),
        active_insights=insights_store.count_active(client, tenant),
    )
    return serialise(tenant, document), counters.version


def snapshot_view(
    client: redis.Redis, tenant: str, window: Window, now: datetime, cache_seconds: int
) -> CachedView:
    """The cached snapshot of ``window``, built and cached here when it is not there."""
    parts: tuple[str, ...] = (window.start.isoformat(), window.end.isoformat())
    if is_precomputed("snapshot", window, now.astimezone(UTC).date()):
        ttl = PRECOMPUTED_TTL_SECONDS
    else:
        parts += (str(aggregates.data_version(client, tenant)),)
        ttl = cache_seconds
    cached = get_view(client, tenant, "snapshot", *parts)
    if cached is not None:
        return cached
    view, version = build_snapshot_view(client, tenant, window, now)
    put_view(client, tenant, "snapshot", parts, view, version, ttl)
    return view


def refresh_precomputed(client: redis.Redis, tenant: str, now: datetime) -> int:
    """Rebuild every precomputed window of a tenant (the worker, after a fold)."""
    today = now.astimezone(UTC).date()
    built = 0
    for report, days in PRECOMPUTED_WINDOWS:
        window = Window(today - timedelta(days=days - 1), today)
        view, version = build_snapshot_view(client, tenant, window, now)
        parts = (window.start.isoformat(), window.end.isoformat())
        built += put_view(client, tenant, report, parts, view, version, PRECOMPUTED_TTL_SECONDS)
    return built
