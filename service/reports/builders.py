"""The report documents built from the stored counters, as views: snapshot, TLS, connector rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import redis

from service.core.blocked import blocked_by_connector, blocked_records
from service.core.connectors import (
    ConnectorRow,
    ConnectorRows,
    build_rows,
    encode_rows,
    row_key,
    unpack,
)
from service.core.local_days import today_of
from service.core.snapshot import build_snapshot
from service.core.timestamps import ms_to_rfc3339, rfc3339
from service.core.tls_report import build_tls_report, daily_tls, directions_for
from service.core.transit_report import build_transit_report, coverage_document, domain_coverage
from service.core.who import DOMAINS
from service.core.windows import Window
from service.reports import who_rows
from service.reports.day_views import day_rows_view
from service.reports.view_cache import Built, serialise, tagged
from service.store import (
    aggregates,
    blocked,
    connectors_store,
    day_rows,
    insights_store,
    window_sums,
)
from service.store.day_chunks import READ_ATTEMPTS


def build_snapshot_view(client: redis.Redis, tenant: str, window: Window, now: datetime) -> Built:
    counters = aggregates.read_counters(client, tenant, window.days)
    document = build_snapshot(
        counters.days,
        window,
        generated_at=rfc3339(now),
        data_as_of=ms_to_rfc3339(counters.data_as_of_ms),
        active_insights=insights_store.count_active(client, tenant),
    )
    return serialise(tenant, document), counters.version


def build_tls_view(
    client: redis.Redis, tenant: str, window: Window, now: datetime, direction: str | None
) -> Built:
    counters = connectors_store.read_report_counters(client, tenant, window.days, "tls")
    daily = daily_tls(window.days, (unpack(p) for p in counters.packed))
    document = build_tls_report(
        daily, window, directions_for(direction), generated_at=rfc3339(now),
        data_as_of=ms_to_rfc3339(counters.data_as_of_ms),
    )  # fmt: skip
    return serialise(tenant, document), counters.version


def build_connector_rows_view(
    client: redis.Redis, tenant: str, window: Window, group_by: str
) -> Built:
    """Every row of the connector report, unfiltered and unsorted: what pages are cut from."""
    if group_by == "day":
        # Each day's rows as kept while the day holds, joined: see store.day_rows.
        days = day_rows.read_day_rows(client, tenant, window.days,
                                      lambda stale: build_rows_of_days(client, tenant, stale))  # fmt: skip
        return day_rows_view(tenant, days, ms_to_rfc3339(days.data_as_of_ms)), days.version
    counters = window_sums.read_window_sum(client, tenant, window)
    blocked_days = blocked.read_blocked(client, tenant, window.days)
    per_connector = blocked_by_connector(blocked_days.days.values())
    rows = build_rows(unpack(counters.packed[0]), counters.definitions, blocked=per_connector)
    rows.sort(key=row_key)  # pages sort these again: presorted input makes that cheap
    # Blocked counters read after the others: a fold between the two reads leaves the view
    # stamped with the older version, so the next refresh builds it again.
    version = min(counters.version, blocked_days.version)
    document = ConnectorRows(version, ms_to_rfc3339(counters.data_as_of_ms), rows,
                             [sum(row.counts) for row in rows])  # fmt: skip
    return tagged(tenant, encode_rows(document)), version


def build_rows_of_days(
    client: redis.Redis, tenant: str, days: Sequence[str]
) -> tuple[int, list[list[ConnectorRow]]]:
    """The rows of each of ``days`` from its counters and its blocked counters, and the data
    version they were read at.

    The blocked counters are read after the others. When a fold came between the two reads,
    the newer of the two versions is returned: ``day_rows`` then sees a read of two moments
    and reads again (and keeps no rows of it), rather than answering with rows that mix them.
    """
    counters = connectors_store.read_report_counters(client, tenant, days, "days")
    blocked_days = blocked.read_blocked(client, tenant, days)
    rows = [build_rows(unpack(packed), counters.definitions, date=day,
                       blocked=blocked_by_connector([blocked_days.days.get(day, {})]))
            for day, packed in zip(days, counters.packed, strict=True)]  # fmt: skip
    return max(counters.version, blocked_days.version), rows


def build_transit_view(
    client: redis.Redis, tenant: str, window: Window, now: datetime, direction: str | None,
    domain_retention_days: int,
) -> Built:  # fmt: skip
    """The Transit security report: classes per day from the counters, blocked mail from its
    own counters, mail delivered without TLS per recipient domain from the per-domain
    counters over the days they are kept. Read again while the three reads are of different
    data versions (a fold in between), so that the sections agree; the view keeps the oldest."""
    covered = domain_coverage(window, today_of(now), domain_retention_days)
    for _ in range(READ_ATTEMPTS):
        counters = connectors_store.read_report_counters(client, tenant, window.days, "tls")
        blocked_days = blocked.read_blocked(client, tenant, window.days)
        domains = who_rows.read_rows(client, tenant, DOMAINS, covered) if covered else None
        versions = {counters.version, blocked_days.version,
                    domains.version if domains else counters.version}  # fmt: skip
        if len(versions) == 1:
            break
    daily = daily_tls(window.days, (unpack(p) for p in counters.packed))
    document = build_transit_report(
        daily, blocked_days.days, window, directions_for(direction), generated_at=rfc3339(now),
        data_as_of=ms_to_rfc3339(counters.data_as_of_ms),
        domain_rows=domains.rows if domains else (),
        coverage=coverage_document(window, covered, domain_retention_days),
    )  # fmt: skip
    return serialise(tenant, document), min(versions)


def build_blocked_view(
    client: redis.Redis, tenant: str, window: Window, now: datetime, direction: str | None,
    limit: int,
) -> Built:  # fmt: skip
    """The blocked counters of ``window`` as records (day, direction, connector, policy,
    recipient domain, reason, messages)."""
    blocked_days = blocked.read_blocked(client, tenant, window.days)
    records, total = blocked_records(blocked_days.days, window.days, directions_for(direction),
                                     limit)  # fmt: skip
    document = {"window": window.as_dict(), "records": records, "total_records": total,
                "truncated": total > len(records), "generated_at": rfc3339(now)}  # fmt: skip
    return serialise(tenant, document), blocked_days.version
