"""Each day's rows of the connector report grouped by day, kept built while the day holds.

A day's rows depend only on its counters, its blocked counters and the connector definitions.
So, as the per-connector report keeps sums of runs of days (``window_sums``), each day's rows
are kept in Redis (``keys.day_rows``: the JSON parts ``core.rows_view.join_rows_view`` joins),
stamped with the day's data version and its blocked counters' version (the fold sets each with
its counters, atomically: mail blocked on a day changes only the second) and the definitions
token (set with every definition change). A read takes a day's rows, its versions and the
tenant's version and token in one atomic read (a read-only script, ``read_day_rows.lua``) and
uses the rows only while their stamp still matches; the other days (after a fold: usually
today alone) are built again (by the caller's ``build_days``, from their counters) and kept.
The result is exactly what building every day from its counters gives, by construction.

The reads are made in chunks of ``DAYS_PER_READ`` days, so no call holds Redis long. They
are of one moment when each saw the same tenant version (every fold and definition change
bumps it), and so is the reading of the days built anew; if not, everything is read again,
up to ``day_chunks.READ_ATTEMPTS`` times, and a read still mixing versions is answered with
the oldest version seen (see ``day_chunks``) and keeps nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from service.core.connectors import ConnectorRow
from service.core.rows_view import encode_day
from service.store import day_chunks, keys
from service.store.scripts import script

DAYS_PER_READ = 15
# How long the rows of a day without counters (no mail, or expired) are kept: they hold only
# the defined connectors' empty rows. A day with counters keeps its rows as long as them.
EMPTY_DAY_LIFE_MS = 86400 * 1000


@dataclass(frozen=True)
class DayRows:
    version: int  # the tenant's data version the rows are of
    data_as_of_ms: int | None
    rows: list[bytes]  # per day, its rows' JSON without brackets (b"": none)
    messages: list[bytes]  # per day, its rows' messages, likewise


@dataclass
class _Read:
    """One read of the days' kept rows: what held, and what each stale day must be stamped."""

    versions: list[int]  # the tenant version each chunk saw
    as_of: Any
    kept: list[tuple[bytes, bytes] | None]  # per day: its rows and messages, or None: stale
    stamps: list[str]  # per day: the stamp its rows have while they hold


# Builds the rows of some days from what they are made of (``reports.builders``): the tenant's
# data version it read them at, and each day's rows.
BuildDays = Callable[[Sequence[str]], tuple[int, list[list[ConnectorRow]]]]


def read_day_rows(
    client: redis.Redis, tenant: str, days: Sequence[str], build_days: BuildDays
) -> DayRows:
    """The rows of every day of ``days``, from kept rows while they hold, the others built
    by ``build_days``."""
    for _ in range(day_chunks.READ_ATTEMPTS):
        read = _read_kept(client, tenant, days)
        seen = list(read.versions)
        stale = [at for at, kept in enumerate(read.kept) if kept is None]
        if stale:
            version, built_days = build_days([days[at] for at in stale])
            seen.append(version)
            consistent = len(set(seen)) == 1
            for at, rows in zip(stale, built_days, strict=True):
                built = encode_day(rows)
                read.kept[at] = built
                if consistent:
                    _keep(client, tenant, days[at], read.stamps[at], built)
        if len(set(seen)) == 1:
            break
    as_of = read.as_of
    return DayRows(
        version=min(seen),
        data_as_of_ms=int(as_of) if as_of else None,
        rows=[kept[0] if kept else b"" for kept in read.kept],
        messages=[kept[1] if kept else b"" for kept in read.kept],
    )


def _read_kept(client: redis.Redis, tenant: str, days: Sequence[str]) -> _Read:
    read = _Read([], None, [], [])
    for first in range(0, len(days), DAYS_PER_READ) if days else [0]:
        names = [keys.meta(tenant)]
        for day in days[first : first + DAYS_PER_READ]:
            names += [
                keys.day_version(tenant, day),
                keys.day_blocked_version(tenant, day),
                keys.day_rows(tenant, day),
            ]
        version, as_of, *per_day = script(client, "read_day_rows")(keys=names)
        read.versions.append(int(version))
        if read.as_of is None:
            read.as_of = as_of
        for at in range(0, len(per_day), 3):
            stamp, rows, messages = per_day[at : at + 3]
            read.kept.append((rows, messages) if rows is not None else None)
            read.stamps.append(stamp.decode())
    return read


def _keep(
    client: redis.Redis, tenant: str, day: str, stamp: str, built: tuple[bytes, bytes]
) -> None:
    """Keep a day's rows while ``stamp`` holds, never longer than its counters are kept."""
    names = [keys.meta(tenant), keys.day_version(tenant, day),
             keys.day_blocked_version(tenant, day), keys.day_rows(tenant, day),
             keys.day_counts(tenant, day), keys.day_blocked(tenant, day)]  # fmt: skip
    # Best effort: at Redis's memory limit the write is refused and the report is still
    # answered, from the counters.
    with contextlib.suppress(redis.ResponseError):
        script(client, "keep_day_rows")(keys=names, args=[stamp, *built, EMPTY_DAY_LIFE_MS])
