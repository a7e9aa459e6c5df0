"""One connector's own report: its totals, TLS split and daily series."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import redis

from service.core.blocked import blocked_by_connector
from service.core.connectors import INTERNET, build_rows, security_columns, tls_split, unpack
from service.core.timestamps import ms_to_rfc3339
from service.core.traces import FIELD_SEP
from service.core.windows import Window
from service.reports.view_cache import Built, cached_view, serialise
from service.store import blocked, connectors_store
from service.store.views import CachedView


def connector_detail_view(
    client: redis.Redis,
    tenant: str,
    direction: str,
    name: str,
    window: Window,
    now: datetime,
    cache_seconds: int,
) -> CachedView | None:
    """One connector's totals, TLS split and daily series; None if unknown and undefined."""
    name_part = hashlib.blake2b(name.encode(), digest_size=8).hexdigest()

    def build() -> Built:
        connector = "" if name == INTERNET else name
        prefix = f"{direction}{FIELD_SEP}{connector}{FIELD_SEP}"
        counters = connectors_store.read_report_counters(
            client, tenant, window.days, "prefix", prefix
        )
        blocked_days = blocked.read_blocked(client, tenant, window.days)
        mine = blocked_by_connector(blocked_days.days.values()).get((direction, connector or None))
        document = _detail_document(counters, direction, connector or None, window, mine)
        return serialise(tenant, document), min(counters.version, blocked_days.version)

    view = cached_view(
        client, tenant, "connector", window, (direction, name_part), now, cache_seconds, build,
        precomputable=False,
    )  # fmt: skip
    return None if view.body == b"null" else view


def _detail_document(
    counters: connectors_store.ReportCounters,
    direction: str,
    name: str | None,
    window: Window,
    blocked_types: dict[str, int] | None = None,  # its blocked messages by the type they named
) -> dict[str, Any] | None:
    definitions = {k: v for k, v in counters.definitions.items() if k == (direction, name)}
    series = []
    every_day: list[tuple[str, int]] = []
    for day, packed in zip(window.days, counters.packed, strict=True):
        counts = list(unpack(packed))
        every_day += counts
        rows = build_rows(counts, {})
        day_counts = rows[0].counts if rows else [0] * 6
        series.append({"date": day, "messages": sum(day_counts), "tls": tls_split(day_counts)})
    blocked_here = {(direction, name): blocked_types} if blocked_types else None
    rows = build_rows(every_day, definitions, blocked=blocked_here)
    if not rows or (not rows[0].defined and sum(rows[0].counts) == 0 and not rows[0].blocked):
        return None
    row = rows[0]
    definition = definitions.get((direction, name)) if name is not None else None
    return {
        "window": window.as_dict(),
        "direction": direction,
        "name": name,
        "type": row.type,
        "forced_tls": row.forced_tls,
        "description": definition.description if definition else None,
        "defined": row.defined,
        "messages": sum(row.counts),
        "tls": tls_split(row.counts),
        "series": series,
        "data_as_of": ms_to_rfc3339(counters.data_as_of_ms),
        **security_columns(row),
    }
