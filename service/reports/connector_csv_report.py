"""The connector report as CSV: every matching row, no pages."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime

import redis

from service.core.connector_csv import csv_lines
from service.core.connectors import decode_rows, select_rows
from service.reports import views
from service.reports.connector_pages import ReportQuery


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
