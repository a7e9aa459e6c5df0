"""The cache of built report views: bytes with an ETag in Redis, and which windows are kept built.

The worker rebuilds the precomputed windows of a tenant after its data changed
(``reports.precompute``); the API serves those bytes as they are. Any other window (or
parameter) is built on request and cached under the data version it was built from, so a
cached answer is never older than the counters. Connector definitions are part of the data
version (defining one bumps it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import orjson
import redis

from service.core.local_days import today_of
from service.core.windows import Window
from service.store import aggregates
from service.store.views import CachedView, get_view, put_view

# Windows the worker keeps built: (report, days ending today), with default parameters.
PRECOMPUTED_WINDOWS: tuple[tuple[str, int], ...] = (
    ("snapshot", 7), ("snapshot", 30), ("tls", 7), ("tls", 30),
    ("connectors", 7), ("connectors", 30),
    ("domains", 7), ("domains", 30), ("auth", 7), ("auth", 30),
)  # fmt: skip
PRECOMPUTED_TTL_SECONDS = 2 * 86400  # yesterday's windows fade out on their own

Built = tuple[CachedView, int]  # the view and the data version it was built from


def is_precomputed(report: str, window: Window, today: date) -> bool:
    return window.end == today and any(
        name == report and window.start == today - timedelta(days=days - 1)
        for name, days in PRECOMPUTED_WINDOWS
    )


def serialise(tenant: str, document: Any) -> CachedView:
    return tagged(tenant, orjson.dumps(document))


def tagged(tenant: str, body: bytes) -> CachedView:
    """The view of ``body`` (JSON bytes) with its ETag."""
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
    if precomputable and is_precomputed(report, window, today_of(now)):
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
