"""The connector report as CSV: every matching row (the API's export), or the rows of one page
(the dashboard's export of the page it shows)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime

import redis

from service.core.connector_csv import csv_lines
from service.core.connectors import decode_rows, select_rows
from service.reports import views
from service.reports.connector_pages import ReportQuery, page_cut
from service.store.cursor_secret import CursorSecret


def report_csv(
    client: redis.Redis, tenant: str, query: ReportQuery, now: datetime, cache_seconds: int
) -> tuple[str, Iterator[str]]:
    """Every matching row as CSV (no pages): the ETag and the text in chunks."""
    view = views.connector_rows_view(
        client, tenant, query.window, query.group_by, now, cache_seconds
    )
    tag = hashlib.blake2b(f"{view.etag}|{query.digest}|csv".encode(), digest_size=12).hexdigest()
    rows = select_rows(decode_rows(view.body).rows, query.row_filter, query.sort)
    label = f"{query.window.start.isoformat()}/{query.window.end.isoformat()}"
    return f'"{tag}"', csv_lines(rows, label)


def page_csv(
    client: redis.Redis,
    tenant: str,
    query: ReportQuery,
    now: datetime,
    cache_seconds: int,
    cursor_secret: CursorSecret,
) -> tuple[str, Iterator[str], int]:
    """The rows of the one page ``connector_pages.report_page`` sends for ``query`` (its
    cursor included) as CSV, in the same columns as ``report_csv``: the ETag, the text in
    chunks, and the page's first row's position in the selection (0 on the first page)."""
    cut = page_cut(client, tenant, query, now, cache_seconds, cursor_secret)
    tag = hashlib.blake2b(f"{cut.rows_tag}|{query.digest}|{cut.offset}|{query.limit}|csv-page"
                          .encode(), digest_size=12).hexdigest()  # fmt: skip
    label = f"{cut.window.start.isoformat()}/{cut.window.end.isoformat()}"
    return f'"{tag}"', csv_lines(cut.rows, label), cut.offset
