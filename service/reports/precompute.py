"""The precomputed windows of a tenant (``view_cache.PRECOMPUTED_WINDOWS``): rebuilt by the
worker after a fold, named here so a change of definitions can drop them."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import redis

from service.core.connectors import GROUPINGS
from service.core.local_days import today_of
from service.core.who import KINDS
from service.core.windows import Window
from service.reports import who_rows
from service.reports.builders import (
    build_connector_rows_view,
    build_snapshot_view,
    build_tls_view,
)
from service.reports.view_cache import PRECOMPUTED_TTL_SECONDS, PRECOMPUTED_WINDOWS, Built
from service.store import keys
from service.store.views import put_view

WHO_KINDS = {kind.name: kind for kind in KINDS}


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


def refresh_precomputed(
    client: redis.Redis, tenant: str, now: datetime, only: str | None = None
) -> int:
    """Rebuild every precomputed window of a tenant (the worker, after a fold), or those of
    report ``only``."""
    today = today_of(now)
    built = 0
    for report, days in PRECOMPUTED_WINDOWS:
        if only is not None and report != only:
            continue
        window = Window(today - timedelta(days=days - 1), today)
        start_end = (window.start.isoformat(), window.end.isoformat())
        views: list[tuple[tuple[str, ...], Built]]
        if report == "snapshot":
            views = [((), build_snapshot_view(client, tenant, window, now))]
        elif report == "tls":
            views = [(("all",), build_tls_view(client, tenant, window, now, None))]
        elif report in WHO_KINDS:
            views = [((), who_rows.fresh_rows_view(client, tenant, WHO_KINDS[report], window))]
        else:
            views = [
                ((g,), build_connector_rows_view(client, tenant, window, g)) for g in GROUPINGS
            ]
        for params, (view, version) in views:
            built += put_view(client, tenant, report, (*start_end, *params), view, version,
                              PRECOMPUTED_TTL_SECONDS)  # fmt: skip
    return built
