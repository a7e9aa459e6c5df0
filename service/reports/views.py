"""The report views the API serves: the cached view of a window, built when it is missing."""

from __future__ import annotations

from datetime import datetime

import redis

from service.core.local_days import today_of
from service.core.transit_report import domain_coverage
from service.core.windows import Window
from service.reports.builders import (
    build_blocked_view,
    build_connector_rows_view,
    build_snapshot_view,
    build_tls_view,
    build_transit_view,
)
from service.reports.view_cache import Built, cached_view, is_precomputed
from service.store.views import CachedView


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

    if group_by == "day" and not is_precomputed("connectors", window, today_of(now)):
        # Joined from the days' rows this process holds (store.day_rows), checked in one read:
        # as cheap as reading a cached copy, while storing one (8 MB for a tenant of 500
        # connectors, written to the AOF too) would cost a build more than all the rest.
        return build()[0]
    return cached_view(client, tenant, "connectors", window, (group_by,), now, cache_seconds, build)


def transit_view(
    client: redis.Redis, tenant: str, window: Window, direction: str | None, now: datetime,
    cache_seconds: int, domain_retention_days: int,
) -> CachedView:  # fmt: skip
    """The Transit security report of ``window``, cached under the data version (which every
    fold bumps, the per-domain counters' included: they are folded in the same call)."""

    def build() -> Built:
        return build_transit_view(client, tenant, window, now, direction, domain_retention_days)

    # The days the per-domain counters cover move with the date, not with the data version.
    covered = domain_coverage(window, today_of(now), domain_retention_days)
    coverage = covered.start.isoformat() if covered else "none"
    return cached_view(client, tenant, "transit", window, (direction or "all", coverage), now,
                       cache_seconds, build, precomputable=False)  # fmt: skip


def blocked_view(
    client: redis.Redis, tenant: str, window: Window, direction: str | None, limit: int,
    now: datetime, cache_seconds: int,
) -> CachedView:  # fmt: skip
    """The blocked counters of ``window``, cached under the data version."""

    def build() -> Built:
        return build_blocked_view(client, tenant, window, now, direction, limit)

    return cached_view(client, tenant, "blocked", window, (direction or "all", str(limit)), now,
                       cache_seconds, build, precomputable=False)  # fmt: skip
