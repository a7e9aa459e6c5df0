"""The connector report served in pages, as CSV, and one connector's own report.

Pagination is stable under concurrent ingestion because a cursor pins the data version: the
first page that has a successor stores the selected, sorted rows of that version as a list
(``keys.report_pin``, ``PIN_SECONDS``) and every later page is cut from exactly those rows.
So each row is returned exactly once, with the numbers of one consistent moment, however the
counters move meanwhile; a fresh query (no cursor) sees the new numbers. An expired pin is a
410: start again.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
import redis

from service.core.connector_csv import csv_lines
from service.core.connectors import (
    INTERNET,
    Row,
    RowFilter,
    build_rows,
    default_sort,
    row_document,
    select_rows,
    tls_split,
    unpack,
)
from service.core.paging import (
    CursorError,
    decode_cursor,
    encode_cursor,
    query_digest,
    state_int,
    state_str,
)
from service.core.traces import FIELD_SEP
from service.core.windows import Window
from service.reports import views
from service.store import connectors_store, keys
from service.store.cursor_secret import CursorSecret
from service.store.views import CachedView

PIN_SECONDS = 600


class CursorExpired(LookupError):
    """The rows a cursor points into are gone (older than PIN_SECONDS)."""


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


def report_query(args: dict[str, Any], window: Window) -> ReportQuery:
    """The query of loaded request parameters (ConnectorReportArgsSchema) over ``window``."""
    group_by = args["group_by"]
    sort = args.get("sort") or default_sort(group_by)
    return ReportQuery(
        window=window,
        group_by=group_by,
        row_filter=RowFilter(args.get("direction"), args.get("type"), args.get("name"),
                             args.get("forced_tls")),
        sort=sort,
        limit=args["limit"],
        cursor=args.get("cursor"),
        digest=query_digest({k: args.get(k) for k in _QUERY_PARAMS} | {"sort": sort}),
    )  # fmt: skip


def _pin_key(tenant: str, query: ReportQuery, window: Window, rows_tag: str) -> str:
    # rows_tag: the ETag of the rows the selection was made from (one data version's rows).
    parts = (window.start.isoformat(), window.end.isoformat(), query.group_by, rows_tag,
             query.digest)  # fmt: skip
    return keys.report_pin(tenant, "connectors", *parts)


def _pin(client: redis.Redis, key: str, rows: list[Row], meta: dict[str, Any]) -> None:
    """Store the selected rows as a list (a page is then one LRANGE), atomically in place:
    built under a private name, then renamed, so a reader never sees a half-built list."""
    building = f"{key}:building:{uuid.uuid4().hex}"
    pipe = client.pipeline(transaction=False)
    pipe.rpush(building, orjson.dumps(meta))
    for at in range(0, len(rows), 1000):
        pipe.rpush(building, *(orjson.dumps(row) for row in rows[at : at + 1000]))
    pipe.expire(building, PIN_SECONDS)
    # RENAME through execute_command: redis-py blocks the rename() method in cluster pipelines
    # even when, as here, both names carry the tenant hash tag and share one slot.
    pipe.execute_command("RENAME", building, key)
    pipe.execute()


def _page_from_pin(
    client: redis.Redis, key: str, offset: int, limit: int
) -> tuple[list[Row], int, dict[str, Any]] | None:
    """Rows ``offset`` .. ``offset + limit`` of a pinned selection, its length and meta. A
    first page renews the pin: the cursor it hands out gets the full PIN_SECONDS."""
    pipe = client.pipeline(transaction=True)
    pipe.lindex(key, 0)
    pipe.llen(key)
    pipe.lrange(key, offset + 1, offset + limit)
    if offset == 0:
        pipe.expire(key, PIN_SECONDS)
    meta, length, raw_rows, *_ = pipe.execute()
    if meta is None:
        return None
    return [orjson.loads(r) for r in raw_rows], length - 1, orjson.loads(meta)


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
    pinned (``_pin``) under the rows' ETag (one data version) and the query, and the cursor
    points into it. A first page of a query already pinned is read from the pin.
    """
    if query.cursor is not None:
        cursor = query.cursor
        state = cursor_secret.verified(
            client, lambda secret: decode_cursor(secret, tenant, cursor, query.digest)
        )
        window, rows_tag, offset = _cursor_position(state)
        pinned = _page_from_pin(client, _pin_key(tenant, query, window, rows_tag), offset,
                                query.limit)  # fmt: skip
        if pinned is None:
            raise CursorExpired("the cursor has expired; request the first page again")
        rows, total, meta = pinned
    else:
        window, offset = query.window, 0
        view = views.connector_rows_view(client, tenant, window, query.group_by, now,
                                         cache_seconds)  # fmt: skip
        rows_tag = view.etag.strip('"')
        key = _pin_key(tenant, query, window, rows_tag)
        # The page carries a cursor signed with this process's secret: part of what it is.
        memo_key = (key, query.limit, cursor_secret.get(client))
        remembered = _FIRST_PAGES.get(memo_key)
        if remembered is not None:
            page_view, pinned_here = remembered
            # A pinned first page renews its pin, so the cursor it hands out gets the full
            # PIN_SECONDS; a pin that expired meanwhile is made again below.
            if not pinned_here or client.expire(key, PIN_SECONDS):
                return page_view
        # The same query on the same rows was paged before: its first page is pinned already.
        pinned = _page_from_pin(client, key, 0, query.limit)
        if pinned is not None:
            rows, total, meta = pinned
        else:
            document = orjson.loads(view.body)
            selected = select_rows(document["rows"], query.row_filter, query.sort)
            meta = {"data_as_of": document["data_as_of"]}
            total, rows = len(selected), selected[: query.limit]
            if total > query.limit:
                _pin(client, key, selected, meta)
    end = offset + query.limit
    next_cursor = None
    if end < total:
        next_cursor = encode_cursor(cursor_secret.get(client), tenant, query.digest,
                                    {"t": rows_tag, "s": window.start.isoformat(),
                                     "e": window.end.isoformat(), "o": end})  # fmt: skip
    page = {
        "window": window.as_dict(),
        "group_by": query.group_by,
        "sort": query.sort,
        "data_as_of": meta["data_as_of"],
        "total_rows": total,
        "rows": [row_document(row) for row in rows],
        "next_cursor": next_cursor,
    }
    served = views.serialise(tenant, page)
    if query.cursor is None:
        _FIRST_PAGES.put(memo_key, (served, total > query.limit))
    return served


class _FirstPageMemo:
    """First pages already served, by (pin key, limit, cursor secret). A first page is a pure function of the
    rows it is cut from (their ETag is in the pin key) and the query: remembering it spares
    the selection, the sort and the pin lookup while the data does not change."""

    def __init__(self, max_entries: int = 512) -> None:
        self._entries: dict[tuple[str, int, bytes], tuple[CachedView, bool]] = {}
        self._max_entries = max_entries
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int, bytes]) -> tuple[CachedView, bool] | None:
        return self._entries.get(key)

    def put(self, key: tuple[str, int, bytes], value: tuple[CachedView, bool]) -> None:
        with self._lock:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()  # old data versions' pages: cheaper to forget all
            self._entries[key] = value


_FIRST_PAGES = _FirstPageMemo()


def report_csv(
    client: redis.Redis, tenant: str, query: ReportQuery, now: datetime, cache_seconds: int
) -> tuple[str, Iterator[str]]:
    """Every matching row as CSV (no pages): the ETag and the text in chunks."""
    view = views.connector_rows_view(
        client, tenant, query.window, query.group_by, now, cache_seconds
    )
    tag = hashlib.blake2b(f"{view.etag}|{query.digest}|csv".encode(), digest_size=12).hexdigest()
    rows: list[Row] = select_rows(orjson.loads(view.body)["rows"], query.row_filter, query.sort)
    label = f"{query.window.start.isoformat()}/{query.window.end.isoformat()}"
    return f'"{tag}"', csv_lines(rows, label)


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

    def build() -> views.Built:
        connector = "" if name == INTERNET else name
        prefix = f"{direction}{FIELD_SEP}{connector}{FIELD_SEP}"
        counters = connectors_store.read_report_counters(
            client, tenant, window.days, "prefix", prefix
        )
        document = _detail_document(counters, direction, connector or None, window)
        return views.serialise(tenant, document), counters.version

    view = views.cached_view(
        client, tenant, "connector", window, (direction, name_part), now, cache_seconds, build,
        precomputable=False,
    )  # fmt: skip
    return None if view.body == b"null" else view


def _detail_document(
    counters: connectors_store.ReportCounters, direction: str, name: str | None, window: Window
) -> dict[str, Any] | None:
    definitions = {k: v for k, v in counters.definitions.items() if k == (direction, name)}
    series = []
    every_day: list[tuple[str, int]] = []
    for day, packed in zip(window.days, counters.packed, strict=True):
        counts = list(unpack(packed))
        every_day += counts
        rows = build_rows(counts, {})
        day_counts = rows[0][6] if rows else [0] * 6
        series.append({"date": day, "messages": sum(day_counts), "tls": tls_split(day_counts)})
    rows = build_rows(every_day, definitions)
    if not rows or (not rows[0][5] and sum(rows[0][6]) == 0):
        return None
    _, _, _, kind, forced, defined, totals = rows[0]
    definition = definitions.get((direction, name)) if name is not None else None
    return {
        "window": window.as_dict(),
        "direction": direction,
        "name": name,
        "type": kind,
        "forced_tls": forced,
        "description": definition.description if definition else None,
        "defined": defined,
        "messages": sum(totals),
        "tls": tls_split(totals),
        "series": series,
        "data_as_of": views.ms_to_rfc3339(counters.data_as_of_ms),
    }
