"""The connector report served in pages (the CSV and one connector's report: beside this).

Pagination is stable under concurrent ingestion because a cursor pins the data version: the
first page that has a successor stores the selected, sorted rows of that version as a list
(``connector_pins``) and every later page is cut from exactly those rows. So each row is returned exactly once, with the numbers of one consistent moment, however the
counters move meanwhile; a fresh query (no cursor) sees the new numbers. An expired pin is a
410: start again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import redis

from service.core.connectors import (
    ConnectorRow,
    RowFilter,
    decode_row,
    default_sort,
    row_document,
)
from service.core.paging import (
    CursorError,
    decode_cursor,
    encode_cursor,
    query_digest,
    state_int,
    state_str,
)
from service.core.rows_view import select_raw
from service.core.windows import Window
from service.reports import connector_pins, views
from service.reports.day_views import JOINED_DAYS
from service.reports.first_pages import FIRST_PAGES
from service.reports.view_cache import serialise
from service.store.cursor_secret import CursorSecret
from service.store.views import CachedView


class CursorExpired(LookupError):
    """The rows a cursor points into are gone (older than ``connector_pins.PIN_SECONDS``)."""


@dataclass(frozen=True)
class ReportQuery:
    window: Window
    group_by: str
    row_filter: RowFilter
    sort: str
    limit: int
    cursor: str | None
    digest: str  # of the parameters that define the row list (see core.paging.query_digest)


_QUERY_PARAMS = ("days", "start", "end", "group_by", "direction", "type", "name", "forced_tls",
                 "sort")  # fmt: skip
_DIGEST_PARAMS = (*_QUERY_PARAMS, "security")


def report_query(args: dict[str, Any], window: Window) -> ReportQuery:
    """The query of loaded request parameters (ConnectorReportArgsSchema) over ``window``."""
    group_by = args["group_by"]
    sort = args.get("sort") or default_sort(group_by)
    return ReportQuery(
        window=window,
        group_by=group_by,
        row_filter=RowFilter(args.get("direction"), args.get("type"), args.get("name"),
                             args.get("forced_tls"), _security_filter(args.get("security"))),
        sort=sort,
        limit=args["limit"],
        cursor=args.get("cursor"),
        digest=query_digest({k: args.get(k) for k in _DIGEST_PARAMS} | {"sort": sort}),
    )  # fmt: skip


def _security_filter(value: str | None) -> frozenset[str] | None:
    return frozenset(value.split(",")) if value else None


def _cursor_position(state: dict[str, Any]) -> tuple[Window, str, int]:
    """The window, rows tag and offset of a verified cursor; CursorError if any is off."""
    try:
        window = Window(date.fromisoformat(state_str(state, "s")),
                        date.fromisoformat(state_str(state, "e")))  # fmt: skip
    except ValueError:
        raise CursorError("not a cursor this service issued") from None
    if window.end < window.start:
        raise CursorError("not a cursor this service issued")
    return window, state_str(state, "t"), state_int(state, "o", 1)


@dataclass(frozen=True)
class PageCut:
    """The rows of one page, where they were cut from, and what follows them."""

    window: Window
    rows_tag: str  # the ETag of the rows the page is cut from (one data version's rows)
    offset: int
    rows: list[ConnectorRow]
    total: int
    meta: dict[str, Any]


def _cursor_cut(
    client: redis.Redis, tenant: str, query: ReportQuery, cursor_secret: CursorSecret
) -> PageCut:
    """The page a cursor points at, from its pinned selection."""
    cursor = query.cursor or ""
    state = cursor_secret.verified(
        client, lambda secret: decode_cursor(secret, tenant, cursor, query.digest)
    )
    window, rows_tag, offset = _cursor_position(state)
    key = connector_pins.pin_key(tenant, window, query.group_by, rows_tag, query.digest)
    pinned = connector_pins.page_from_pin(client, key, offset, query.limit)
    if pinned is None:
        raise CursorExpired("the cursor has expired; request the first page again")
    rows, total, meta = pinned
    return PageCut(window, rows_tag, offset, rows, total, meta)


def _rows_and_pin_key(
    client: redis.Redis, tenant: str, query: ReportQuery, now: datetime, cache_seconds: int
) -> tuple[CachedView, str]:
    """Every row over the query's window (the cached view), and the key its selection by the
    query is pinned under."""
    view = views.connector_rows_view(client, tenant, query.window, query.group_by, now,
                                     cache_seconds)  # fmt: skip
    key = connector_pins.pin_key(tenant, query.window, query.group_by, view.etag.strip('"'),
                                 query.digest)  # fmt: skip
    return view, key


def _first_cut(client: redis.Redis, query: ReportQuery, view: CachedView, key: str) -> PageCut:
    """The first page of ``view``'s rows, pinning the selection when more pages follow."""
    # The same query on the same rows was paged before: its first page is pinned already.
    pinned = connector_pins.page_from_pin(client, key, 0, query.limit)
    if pinned is not None:
        rows, total, meta = pinned
    else:
        # Ordered as raw rows: only the page's rows are decoded (see core.rows_view).
        split = JOINED_DAYS.raw_rows(view.etag) if query.group_by == "day" else None
        selection = select_raw(view.body, query.row_filter, query.sort, split)
        meta = {"data_as_of": selection.data_as_of}
        total = len(selection.rows)
        rows = [decode_row(raw) for raw in selection.rows[: query.limit]]
        if total > query.limit:
            connector_pins.pin_raw(client, key, selection.rows, meta)
    return PageCut(query.window, view.etag.strip('"'), 0, rows, total, meta)


def page_cut(
    client: redis.Redis,
    tenant: str,
    query: ReportQuery,
    now: datetime,
    cache_seconds: int,
    cursor_secret: CursorSecret,
) -> PageCut:
    """The rows ``report_page`` sends for the same query (its cursor included), typed: what
    the dashboard exports as the page it shows."""
    if query.cursor is not None:
        return _cursor_cut(client, tenant, query, cursor_secret)
    view, key = _rows_and_pin_key(client, tenant, query, now, cache_seconds)
    return _first_cut(client, query, view, key)


cursor_position = _cursor_position  # shared with the per-domain reports (reports/who_reports.py)


def report_page(
    client: redis.Redis,
    tenant: str,
    query: ReportQuery,
    now: datetime,
    cache_seconds: int,
    cursor_secret: CursorSecret,
) -> CachedView:
    """One page of the connector report as JSON bytes with an ETag.

    The first page selects and sorts every row; when more pages follow, the selection is
    pinned (``connector_pins.pin``) under the rows' ETag (one data version) and the query, and the cursor
    points into it. A first page of a query already pinned is read from the pin.
    """
    if query.cursor is not None:
        cut = _cursor_cut(client, tenant, query, cursor_secret)
    else:
        view, key = _rows_and_pin_key(client, tenant, query, now, cache_seconds)
        # The page carries a cursor signed with this process's secret: part of what it is.
        memo_key = (key, query.limit, cursor_secret.get(client))
        page_view = FIRST_PAGES.still_served(client, memo_key)
        if page_view is not None:
            return page_view
        cut = _first_cut(client, query, view, key)
    end = cut.offset + query.limit
    next_cursor = None
    if end < cut.total:
        next_cursor = encode_cursor(cursor_secret.get(client), tenant, query.digest,
                                    {"t": cut.rows_tag, "s": cut.window.start.isoformat(),
                                     "e": cut.window.end.isoformat(), "o": end})  # fmt: skip
    page = {
        "window": cut.window.as_dict(),
        "group_by": query.group_by,
        "sort": query.sort,
        "data_as_of": cut.meta["data_as_of"],
        "total_rows": cut.total,
        "rows": [row_document(row) for row in cut.rows],
        "next_cursor": next_cursor,
    }
    served = serialise(tenant, page)
    if query.cursor is None:
        FIRST_PAGES.put(memo_key, (served, cut.total > query.limit))
    return served
