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

Each process also holds the days' rows it read last in memory (``HeldParts``), named by a
digest of their content that is kept beside them in Redis. The read sends the digest held for
each day, and the script leaves out the rows whose kept digest is that one: the 90 days of a
large tenant (some 8 MB) cross the socket once, not at every build. Rows are always taken by
their content's name, checked in the same atomic read, so this changes no figure.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import redis

from service.core.connectors import ConnectorRow
from service.core.rows_view import RawDay, encode_day, split_day
from service.store import day_chunks, keys
from service.store.scripts import script

DAYS_PER_READ = 15
# How long the rows of a day without counters (no mail, or expired) are kept: they hold only
# the defined connectors' empty rows. A day with counters keeps its rows as long as them.
EMPTY_DAY_LIFE_MS = 86400 * 1000
# Bytes of days' rows a process holds in memory: the 90 days of three tenants at 500
# connectors. The oldest read go first.
HELD_BYTES = 32 * 1024 * 1024


def part_digest(rows: bytes, messages: bytes) -> bytes:
    """The name of a day's rows by their content (kept beside them as ``digest``)."""
    return hashlib.blake2b(b"%d:" % len(rows) + rows + messages, digest_size=16).digest()


@dataclass(frozen=True)
class DayPart:
    """One day's rows as ``core.rows_view.encode_day`` writes them, and their digest."""

    rows: bytes
    messages: bytes
    digest: bytes

    @cached_property
    def split(self) -> RawDay:
        """Each row's JSON and the messages, as ordering the rows needs them; split once."""
        return split_day(self.rows, self.messages)


class HeldParts:
    """The days' rows this process read last, by (tenant, day), bounded in bytes."""

    def __init__(self, max_bytes: int = HELD_BYTES) -> None:
        self._parts: dict[tuple[str, str], DayPart] = {}
        self._bytes = 0
        self._max_bytes = max_bytes
        self._lock = threading.Lock()

    def get(self, tenant: str, day: str) -> DayPart | None:
        return self._parts.get((tenant, day))

    def put(self, tenant: str, day: str, part: DayPart) -> None:
        size = len(part.rows) + len(part.messages)
        if size > self._max_bytes:
            return
        with self._lock:
            old = self._parts.pop((tenant, day), None)
            self._bytes += size - (len(old.rows) + len(old.messages) if old else 0)
            self._parts[(tenant, day)] = part
            while self._bytes > self._max_bytes:
                first = next(iter(self._parts))
                gone = self._parts.pop(first)
                self._bytes -= len(gone.rows) + len(gone.messages)


HELD = HeldParts()


@dataclass(frozen=True)
class DayRows:
    version: int  # the tenant's data version the rows are of
    data_as_of_ms: int | None
    parts: list[DayPart]  # per day, its rows' JSON and messages without brackets (b"": none)

    @property
    def rows(self) -> list[bytes]:
        return [part.rows for part in self.parts]

    @property
    def messages(self) -> list[bytes]:
        return [part.messages for part in self.parts]


@dataclass
class _Read:
    """One read of the days' kept rows: what held, and what each stale day must be stamped."""

    versions: list[int]  # the tenant version each chunk saw
    as_of: Any
    kept: list[DayPart | None]  # per day: its rows, or None: stale
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
                built = _part(*encode_day(rows))
                read.kept[at] = built
                if consistent:
                    _keep(client, tenant, days[at], read.stamps[at], built)
                    HELD.put(tenant, days[at], built)
        if len(set(seen)) == 1:
            break
    as_of = read.as_of
    return DayRows(
        version=min(seen),
        data_as_of_ms=int(as_of) if as_of else None,
        parts=[kept or _NO_ROWS for kept in read.kept],
    )


def _part(rows: bytes, messages: bytes) -> DayPart:
    return DayPart(rows, messages, part_digest(rows, messages))


_NO_ROWS = _part(b"", b"")


def _read_kept(client: redis.Redis, tenant: str, days: Sequence[str]) -> _Read:
    read = _Read([], None, [], [])
    for first in range(0, len(days), DAYS_PER_READ) if days else [0]:
        chunk = days[first : first + DAYS_PER_READ]
        names, held = [keys.meta(tenant)], []
        for day in chunk:
            names += [
                keys.day_version(tenant, day),
                keys.day_blocked_version(tenant, day),
                keys.day_rows(tenant, day),
            ]
            held.append(HELD.get(tenant, day))
        version, as_of, *per_day = script(client, "read_day_rows")(
            keys=names, args=[part.digest if part else b"" for part in held]
        )
        read.versions.append(int(version))
        if read.as_of is None:
            read.as_of = as_of
        for day, mine, at in zip(chunk, held, range(0, len(per_day), 4), strict=True):
            stamp, digest, rows, messages = per_day[at : at + 4]
            read.stamps.append(stamp.decode())
            if digest is None:
                read.kept.append(None)  # stale: built again
            elif rows is None:
                assert mine is not None and digest == mine.digest  # the script left them out
                read.kept.append(mine)
            else:
                part = _part(rows, messages)
                read.kept.append(part)
                HELD.put(tenant, day, part)
    return read


def _keep(client: redis.Redis, tenant: str, day: str, stamp: str, built: DayPart) -> None:
    """Keep a day's rows while ``stamp`` holds, never longer than its counters are kept."""
    names = [keys.meta(tenant), keys.day_version(tenant, day),
             keys.day_blocked_version(tenant, day), keys.day_rows(tenant, day),
             keys.day_counts(tenant, day), keys.day_blocked(tenant, day)]  # fmt: skip
    # Best effort: at Redis's memory limit the write is refused and the report is still
    # answered, from the counters.
    with contextlib.suppress(redis.ResponseError):
        script(client, "keep_day_rows")(keys=names, args=[stamp, built.rows, built.messages,
                                                      EMPTY_DAY_LIFE_MS, built.digest])  # fmt: skip
