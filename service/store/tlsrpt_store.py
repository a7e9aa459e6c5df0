"""TLS-RPT reports in Redis: counted once each, kept (gzip) for the retention period, read back
per day.

One atomic call per report (lua/tlsrpt_ingest.lua) checks the report's mark, adds its counters
to its day, keeps its original and lists it on that day, so a report posted twice, or posted
while another process posts it, is counted exactly once. Every key is the tenant's (one slot)
and lives as long as its day's counters: a duration from the service's clock.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import redis

from service.core.tlsrpt import TlsReport, counter_increments
from service.core.traces import FIELD_SEP
from service.store import keys
from service.store.aggregates import day_lifetime_ms
from service.store.availability import skipped_if_refused
from service.store.scripts import script

COUNTED = "counted"
DUPLICATE = "duplicate"
DAY_FULL = "day-full"
REPORTS_FULL = "reports-full"
_OUTCOMES = {1: COUNTED, 0: DUPLICATE, -1: DAY_FULL, -2: REPORTS_FULL}


@dataclass(frozen=True)
class DayLimits:
    """How much one UTC day of a tenant may hold (MAILFLOW_TLSRPT_MAX_DAY_FIELDS and
    MAILFLOW_TLSRPT_MAX_DAY_REPORTS): every read of a window is bounded by them."""

    fields: int
    reports: int


@dataclass(frozen=True)
class StoredReport:
    identity: str
    day: str
    organization: str
    report_id: str
    domains: tuple[str, ...]


def store_report(
    client: redis.Redis,
    tenant: str,
    report: TlsReport,
    original: bytes,
    limits: DayLimits,
    retention_days: int,
    now: datetime,
) -> str:
    """Count ``report`` and keep ``original`` (its JSON); the outcome: COUNTED, DUPLICATE, or
    DAY_FULL / REPORTS_FULL when the day is at its limit (nothing is written then)."""
    day = report.day.isoformat()
    entry = FIELD_SEP.join((report.organization, report.report_id, ",".join(report.domains)))
    argv: list[str | bytes | int] = [
        day_lifetime_ms(day, retention_days, now),
        limits.fields,
        limits.reports,
        report.identity,
        entry,
        gzip.compress(original, compresslevel=6, mtime=0),
        now.isoformat(timespec="seconds"),
        day,
    ]
    for field, amount in counter_increments(report).items():
        argv += [field, amount]
    names = [keys.tlsrpt_report(tenant, report.identity), keys.tlsrpt_day(tenant, day),
             keys.tlsrpt_day_reports(tenant, day), keys.meta(tenant)]  # fmt: skip
    outcome = script(client, "tlsrpt_ingest")(keys=names, args=argv)
    return _OUTCOMES[int(outcome)]


def read_days(client: redis.Redis, tenant: str, days: Sequence[str]) -> dict[str, dict[str, int]]:
    """The counters of each of ``days`` that has any, in one round trip."""
    pipe = client.pipeline(transaction=False)
    for day in days:
        pipe.hgetall(keys.tlsrpt_day(tenant, day))
    out: dict[str, dict[str, int]] = {}
    for day, counts in zip(days, pipe.execute(), strict=True):
        if counts:
            out[day] = {_text(field): int(count) for field, count in counts.items()}
    return out


def list_reports(client: redis.Redis, tenant: str, days: Sequence[str]) -> list[StoredReport]:
    """The reports counted on ``days``, oldest day first, then by organization and id."""
    pipe = client.pipeline(transaction=False)
    for day in days:
        pipe.hgetall(keys.tlsrpt_day_reports(tenant, day))
    found = []
    for day, index in zip(days, pipe.execute(), strict=True):
        for identity, entry in index.items():
            organization, report_id, domains = _text(entry).split(FIELD_SEP)
            found.append(StoredReport(_text(identity), day, organization, report_id,
                                      tuple(d for d in domains.split(",") if d)))  # fmt: skip
    found.sort(key=lambda r: (r.day, r.organization, r.report_id))
    return found


def cached(client: redis.Redis, tenant: str, parts: Sequence[str], build: Callable[[], bytes],
           cache_seconds: int) -> bytes:  # fmt: skip
    """A TLS-RPT report's bytes, built by ``build`` from the counters, or the copy cached for
    ``cache_seconds`` while no report was counted since (the tenant's ``tlsrpt_version``).

    The version is read before building, so a copy is never filed under a version newer than
    the counters it was built from: a report counted meanwhile makes the next read rebuild."""
    if cache_seconds <= 0:
        return build()
    key = keys.view(tenant, "tlsrpt", *parts)
    pipe = client.pipeline(transaction=False)
    pipe.hget(keys.meta(tenant), "tlsrpt_version")
    pipe.hmget(key, "version", "body")
    version, (held_version, body) = pipe.execute()
    version = version or b"0"
    if body is not None and held_version == version:
        return bytes(body)
    fresh = build()
    pipe = client.pipeline(transaction=True)
    pipe.hset(key, mapping={"version": version, "body": fresh})
    pipe.expire(key, cache_seconds)
    with skipped_if_refused():  # at Redis's memory limit: answered, not cached
        pipe.execute()
    return fresh


def original(client: redis.Redis, tenant: str, identity: str) -> bytes | None:
    """The report as received (its JSON, gzip'd), while it is kept; None when unknown."""
    if not identity.isalnum():
        return None
    gz = client.hget(keys.tlsrpt_report(tenant, identity), "gz")
    return bytes(gz) if gz is not None else None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
