"""The per-domain and SMTP AUTH client reports (docs/domains.md): views, pages, CSV, series.

Both reports are one code over ``core.who.KINDS``, with the connector report's conventions:
the rows of a window are one cached view (the worker keeps the default windows built, see
``precompute``), a page is cut from it, and a page with a successor pins its selection so a
cursor walks one data version (``connector_pins``) while mail keeps arriving.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import redis

from service.core.connector_csv import safe_cell
from service.core.connectors import class_columns, tls_split
from service.core.paging import decode_cursor, encode_cursor, query_digest
from service.core.timestamps import ms_to_rfc3339
from service.core.tls import TLS_VERSIONS
from service.core.traces import FIELD_SEP
from service.core.transport_security import SECURITY_CLASSES
from service.core.who import EXTRAS_PER_NAME, SECURITY_MARK, TLS_MARK, WhoKind
from service.core.who_report import (
    DEFAULT_SORT,
    WHO_SECURITY_COLUMNS,
    WhoFilter,
    WhoRow,
    decode_row,
    decode_rows,
    label,
    row_document,
    select_rows,
    user_domain,
)
from service.core.windows import Window
from service.reports import connector_pins
from service.reports.connector_pages import CursorExpired, cursor_position
from service.reports.first_pages import FIRST_PAGES
from service.reports.view_cache import Built, cached_view, serialise
from service.reports.who_rows import build_rows_view
from service.store import keys
from service.store.cursor_secret import CursorSecret
from service.store.versioned_read import read_with_version
from service.store.views import CachedView


def with_extras(
    client: redis.Redis, tenant: str, kind: WhoKind, window: Window, rows: list[WhoRow]
) -> list[WhoRow]:
    """``rows`` with their remote hosts / client IPs: those admitted with each name on the
    window's days (``keys.who_names``), newest day first, at most EXTRAS_PER_NAME. One HMGET
    per day and direction for the rows of a page, never a whole day."""
    if not rows:
        return rows
    pipe = client.pipeline(transaction=False)
    asked = []
    for direction in sorted({row.direction for row in rows}):
        names = [row.name for row in rows if row.direction == direction]
        for day in reversed(window.days):
            pipe.hmget(keys.who_names(tenant, kind.name, direction, day), names)
            asked.append((direction, names))
    seen: dict[tuple[str, str], list[str]] = {}
    for (direction, names), values in zip(asked, pipe.execute(), strict=True):
        for name, value in zip(names, values, strict=True):
            if value:
                extras = seen.setdefault((direction, name), [])
                for extra in value.decode().split(FIELD_SEP):
                    if len(extras) < EXTRAS_PER_NAME and extra not in extras:
                        extras.append(extra)
    return [msgspec.structs.replace(row, extras=seen.get((row.direction, row.name), []))
            for row in rows]  # fmt: skip


def rows_view(
    client: redis.Redis,
    tenant: str,
    kind: WhoKind,
    window: Window,
    now: datetime,
    cache_seconds: int,
) -> CachedView:
    return cached_view(client, tenant, kind.name, window, (), now, cache_seconds,
                       lambda: build_rows_view(client, tenant, kind, window))  # fmt: skip


@dataclass(frozen=True)
class WhoQuery:
    kind: WhoKind
    window: Window
    row_filter: WhoFilter
    sort: str
    limit: int
    cursor: str | None
    digest: str


_QUERY_PARAMS = ("days", "start", "end", "direction", "name", "min_none_percent",
                 "min_tls10_percent", "sort")  # fmt: skip
# Appended apart: a query without it keeps the digest (and the cursors) it had before.
_SECURITY_PARAMS = ("min_unauthenticated_percent",)


def who_query(kind: WhoKind, args: dict[str, Any], window: Window) -> WhoQuery:
    """The query of loaded request parameters (WhoReportArgsSchema) over ``window``."""
    sort = args.get("sort") or DEFAULT_SORT
    return WhoQuery(
        kind=kind,
        window=window,
        row_filter=WhoFilter(args.get("direction"), args.get("name"),
                             args.get("min_none_percent"), args.get("min_tls10_percent"),
                             args.get("min_unauthenticated_percent")),
        sort=sort,
        limit=args["limit"],
        cursor=args.get("cursor"),
        digest=query_digest({k: args.get(k) for k in _QUERY_PARAMS} | {"sort": sort}
                            | {k: args[k] for k in _SECURITY_PARAMS if args.get(k) is not None}),
    )  # fmt: skip


def _pin_key(tenant: str, query: WhoQuery, window: Window, rows_tag: str) -> str:
    return keys.report_pin(tenant, query.kind.name, window.start.isoformat(),
                           window.end.isoformat(), rows_tag, query.digest,
                           connector_pins.PIN_LAYOUT)  # fmt: skip


def report_page(
    client: redis.Redis,
    tenant: str,
    query: WhoQuery,
    now: datetime,
    cache_seconds: int,
    cursor_secret: CursorSecret,
) -> CachedView:
    """One page of the report as JSON bytes with an ETag (see ``connector_pages``)."""
    memo_key = None
    if query.cursor is not None:
        cursor = query.cursor
        state = cursor_secret.verified(
            client, lambda secret: decode_cursor(secret, tenant, cursor, query.digest)
        )
        window, rows_tag, offset = cursor_position(state)
        pinned = connector_pins.page_of(client, _pin_key(tenant, query, window, rows_tag),
                                        offset, query.limit, decode_row)  # fmt: skip
        if pinned is None:
            raise CursorExpired("the cursor has expired; request the first page again")
        rows, total, meta = pinned
    else:
        window, offset = query.window, 0
        view = rows_view(client, tenant, query.kind, window, now, cache_seconds)
        rows_tag = view.etag.strip('"')
        key = _pin_key(tenant, query, window, rows_tag)
        memo_key = (key, query.limit, cursor_secret.get(client))
        page_view = FIRST_PAGES.still_served(client, memo_key)
        if page_view is not None:
            return page_view
        pinned = connector_pins.page_of(client, key, 0, query.limit, decode_row)
        if pinned is not None:
            rows, total, meta = pinned
        else:
            document = decode_rows(view.body)
            selected = select_rows(query.kind, document.rows, query.row_filter, query.sort)
            meta = {"data_as_of": document.data_as_of}
            total, rows = len(selected), selected[: query.limit]
            if total > query.limit:
                connector_pins.pin(client, key, selected, meta)
    end = offset + query.limit
    next_cursor = None
    if end < total:
        next_cursor = encode_cursor(cursor_secret.get(client), tenant, query.digest,
                                    {"t": rows_tag, "s": window.start.isoformat(),
                                     "e": window.end.isoformat(), "o": end})  # fmt: skip
    page = {
        "window": window.as_dict(),
        "sort": query.sort,
        "data_as_of": meta["data_as_of"],
        "total_rows": total,
        "rows": [
            row_document(query.kind, row)
            for row in with_extras(client, tenant, query.kind, window, rows)
        ],
        "next_cursor": next_cursor,
    }
    served = serialise(tenant, page)
    if memo_key is not None:
        FIRST_PAGES.put(memo_key, (served, total > query.limit))
    return served


# -- CSV ------------------------------------------------------------------------------------

_PERCENT_COLUMNS = ("none", "TLS1.0", "TLS1.1", "TLS1.2", "TLS1.3")
_VERSION_HEADERS = ("No TLS %", "TLS 1.0 %", "TLS 1.1 %", "TLS 1.2 %", "TLS 1.3 %")
# Transport security columns and their headers (CSV: after the other columns, so theirs keep
# their positions; the dashboard: after the TLS versions).
SECURITY_HEADERS = {"authenticated_percent": "Authenticated %", "dane_percent": "DANE %",
                     "mta_sts_percent": "MTA-STS %", "encrypted_only_percent": "Encrypted only %",
                     "unauthenticated_percent": "Unauthenticated %"}  # fmt: skip


def csv_header(kind: WhoKind) -> list[str]:
    extras = "Client IPs" if kind.extras == "client_ips" else "Remote hosts"
    names = ["Sender address", "Domain"] if kind.name == "auth" else ["Domain"]
    return ["Direction", *names, *_VERSION_HEADERS, "Messages", "Connectors", extras,
            *SECURITY_HEADERS.values()]  # fmt: skip


def csv_cells(kind: WhoKind, row: WhoRow) -> list[str]:
    split = tls_split(row.counts)
    names = [label(kind, row.name)]
    if kind.name == "auth":
        names.append(user_domain(row.name) or "")
    cells = [
        row.direction, *names, *(f"{split[v]['percent']:.1f}" for v in _PERCENT_COLUMNS),
        str(sum(row.counts)), " ".join(name or "-" for name, _ in row.connectors),
        " ".join(row.extras),
    ]  # fmt: skip
    security = class_columns(row.classes, WHO_SECURITY_COLUMNS)
    cells += [f"{security[column]:.1f}" for column in SECURITY_HEADERS]
    return [safe_cell(cell) for cell in cells]


def report_csv(
    client: redis.Redis, tenant: str, query: WhoQuery, now: datetime, cache_seconds: int
) -> tuple[str, Iterator[str]]:
    """Every matching row as CSV (no pages): the ETag and the text in chunks."""
    view = rows_view(client, tenant, query.kind, query.window, now, cache_seconds)
    tag = hashlib.blake2b(f"{view.etag}|{query.digest}|csv".encode(), digest_size=12).hexdigest()
    rows = select_rows(query.kind, decode_rows(view.body).rows, query.row_filter, query.sort)
    return f'"{tag}"', _csv_lines(client, tenant, query, rows)


def _csv_lines(
    client: redis.Redis, tenant: str, query: WhoQuery, rows: list[WhoRow], chunk_rows: int = 500
) -> Iterator[str]:
    kind = query.kind
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(csv_header(kind))
    for at in range(0, len(rows), chunk_rows):
        for row in with_extras(client, tenant, kind, query.window, rows[at : at + chunk_rows]):
            writer.writerow(csv_cells(kind, row))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


# -- one name's daily series ----------------------------------------------------------------

_VERIFIED_CLASSES = SECURITY_CLASSES[:3]  # counted by their own fields (WhoRow.verified)


def series_view(
    client: redis.Redis,
    tenant: str,
    kind: WhoKind,
    direction: str,
    name: str,
    window: Window,
    now: datetime,
    cache_seconds: int,
) -> CachedView | None:
    """One name's messages and TLS split per day of ``window`` and in total; None when it has
    no messages in the window. Reads only its own fields (HMGET), never a whole day."""
    name_part = hashlib.blake2b(name.encode(), digest_size=8).hexdigest()

    def build() -> Built:
        prefix = f"{direction}{FIELD_SEP}{name}{FIELD_SEP}{TLS_MARK}{FIELD_SEP}"
        fields = [prefix + version for version in TLS_VERSIONS]
        head = f"{direction}{FIELD_SEP}{name}{FIELD_SEP}{SECURITY_MARK}{FIELD_SEP}"
        fields += [head + klass for klass in _VERIFIED_CLASSES]
        width = len(TLS_VERSIONS)

        def reads(pipe: Any) -> None:
            for day in window.days:
                pipe.hmget(keys.who_counts(tenant, kind.name, day), fields)

        (version, as_of), *days = read_with_version(client, keys.meta(tenant), reads)
        series, total = [], [0] * len(fields)
        for day, values in zip(window.days, days, strict=True):
            counts = [int(v or 0) for v in values]
            total = [a + b for a, b in zip(total, counts, strict=True)]
            day_row = WhoRow(direction, name, counts[:width], [], [], counts[width:])
            series.append({"date": day, "messages": sum(counts[:width]),
                           "tls": tls_split(counts[:width]),
                           **class_columns(day_row.classes, WHO_SECURITY_COLUMNS)})  # fmt: skip
        document = None
        if sum(total[:width]):
            row = WhoRow(direction, name, total[:width], [], [], total[width:])
            document = {**row_document(kind, row), "window": window.as_dict(), "series": series,
                        "data_as_of": ms_to_rfc3339(int(as_of) if as_of else None)}  # fmt: skip
            for unread in ("connectors", kind.extras):
                document.pop(unread)
        return serialise(tenant, document), int(version or 0)

    view = cached_view(client, tenant, f"{kind.name}-series", window, (direction, name_part),
                       now, cache_seconds, build, precomputable=False)  # fmt: skip
    return None if view.body == b"null" else view
