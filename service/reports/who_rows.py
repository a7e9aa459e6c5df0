"""The rows of a per-domain or SMTP AUTH client report over a window (docs/domains.md), read
the one way both use: from the counters summed by ``window_sums``, or the worker's precomputed
view of the window while it is of the current data version. Shared by those reports
(``who_reports``) and the Transit security report (its mail to domains without TLS).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import redis

from service.core.timestamps import ms_to_rfc3339
from service.core.who import KINDS, WhoKind
from service.core.who_report import WhoRow, WhoRows, build_rows, decode_rows, encode_rows
from service.core.windows import Window
from service.reports.view_cache import PRECOMPUTED_WINDOWS, Built, tagged
from service.store import aggregates, day_chunks, keys, window_sums
from service.store.views import CachedView


def build_rows_view(client: redis.Redis, tenant: str, kind: WhoKind, window: Window) -> Built:
    """Every row of ``kind``'s report over ``window``, unfiltered: what pages are cut from."""
    return _build_rows(client, tenant, kind, window)[0]


def _build_rows(
    client: redis.Redis, tenant: str, kind: WhoKind, window: Window
) -> tuple[Built, list[WhoRow]]:
    summed = window_sums.sum_counters(client, tenant, window, *_counter_keys(kind))
    rows = build_rows(summed.sums.items())
    document = WhoRows(summed.version, ms_to_rfc3339(summed.data_as_of_ms), rows)
    return (tagged(tenant, encode_rows(document)), summed.version), rows


def _counter_keys(
    kind: WhoKind,
) -> tuple[day_chunks.DayKey, day_chunks.DayKey, Callable[[str, str, str], str]]:
    """Where ``kind``'s daily counters, their days' data versions and cached sums are."""
    return (
        lambda t, day: keys.who_counts(t, kind.name, day),
        lambda t, day: keys.who_version(t, kind.name, day),
        lambda t, first, last: keys.who_sum(t, kind.name, first, last),
    )


def fresh_rows_view(client: redis.Redis, tenant: str, kind: WhoKind, window: Window) -> Built:
    """The stored (precomputed) rows view of ``window`` when it is of the current data
    version, else built now: the worker's evaluation and its view refresh share one build."""
    return _current_view(client, tenant, kind, window) or build_rows_view(client, tenant, kind,
                                                                           window)  # fmt: skip


def fresh_rows(
    client: redis.Redis, tenant: str, kind: WhoKind, window: Window
) -> tuple[Built, list[WhoRow]]:
    """``fresh_rows_view`` and its rows: those of a build as they are (at 100,000 rows,
    decoding the view just encoded costs a quarter of the build)."""
    current = _current_view(client, tenant, kind, window)
    if current is not None:
        return current, decode_rows(current[0].body).rows
    return _build_rows(client, tenant, kind, window)


def _current_view(client: redis.Redis, tenant: str, kind: WhoKind, window: Window) -> Built | None:
    key = keys.view(tenant, kind.name, window.start.isoformat(), window.end.isoformat())
    stored, body, etag = client.hmget(key, "version", "body", "etag")
    current = stored is not None and int(stored) >= aggregates.data_version(client, tenant)
    if current and body is not None and etag is not None:
        return CachedView(body, etag.decode()), int(stored)
    return None


def read_rows(client: redis.Redis, tenant: str, kind: WhoKind, window: Window) -> WhoRows:
    """Every row of ``kind`` over ``window`` with the data version they were read at."""
    view, _ = fresh_rows_view(client, tenant, kind, window)
    return decode_rows(view.body)


def sum_stale_days(client: redis.Redis, tenant: str, today: date, fields_budget: int) -> bool:
    """One bounded slice of the work of building the per-name windows the worker keeps built,
    when that work is more than one slice (``fields_budget`` counter fields): their runs of
    days not yet summed (or changed since), summed and cached; whether a slice was done. The
    build after the last slice reads them cached; work of one slice or less is left to the
    build, which sums it as it always did."""
    stale = [
        window_sums.stale_runs(client, tenant, Window(today - timedelta(days=days - 1), today),
                               *_counter_keys(kind))
        for kind in KINDS
        for report, days in PRECOMPUTED_WINDOWS
        if report == kind.name
    ]  # fmt: skip
    if sum(runs.fields for runs in stale) <= fields_budget:
        return False
    budget = fields_budget
    for runs in stale:
        summed, remain = runs.sum(budget)
        budget -= summed
        if remain or budget <= 0:
            break
    return True
