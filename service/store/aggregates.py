"""The daily counters: folding stream entries into them, and reading them back."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

import msgspec
import redis

from service.core.fold import EntryIncrements
from service.core.local_days import day_start
from service.core.traces import blocked_overflow_field, is_blocked_field
from service.store import day_chunks, keys
from service.store.scripts import script
from service.store.versioned_read import read_with_version

# fold.lua's increments: msgpack, which its Lua reads at C speed (``cmsgpack``), where text
# lines cost a pattern match and a table of sums per field.
_MSGPACK = msgspec.msgpack.Encoder()


@dataclass(frozen=True)
class FoldResult:
    entries: int
    traces: int
    skipped: int


@dataclass(frozen=True)
class ExtraCounters:
    """Counters of another daily hash folded in the same atomic call as the daily counters
    (the per-domain and per-user counters, store/who_counters.py): its increments, and the
    version string and lifetime it gets as a day does."""

    hash_key: str
    version_key: str
    lifetime_ms: int
    counts: Mapping[str, int]


ExtraOf = Callable[[Sequence[EntryIncrements]], Sequence[ExtraCounters]]


@dataclass(frozen=True)
class CounterSnapshot:
    """Daily counters of some days, read with the version they belong to."""

    version: int
    data_as_of_ms: int | None
    days: dict[str, dict[str, int]]


def fold(
    client: redis.Redis,
    tenant: str,
    consumer: str,
    entries: Sequence[EntryIncrements],
    retention_days: int,
    now: datetime,
    blocked_fields_per_day: int = 1000,
    extra: ExtraOf | None = None,
    zone: tzinfo = UTC,
) -> FoldResult:
    """Add the entries' counts to the daily hashes and ack the entries, in one Lua call.

    The counts of all entries are summed first, so a call's size grows with days × connectors,
    not with entries. Entries another consumer has claimed meanwhile are left to it. ``now`` is
    the service's clock: each day's lifetime is a duration measured from it. ``extra`` gives
    more counters of the entries, folded in the same call (so exactly once, too).

    Blocked messages go to their own daily hash (``keys.day_blocked``). Their fields name a
    recipient domain and a free-text reason, so a day keeps at most ``blocked_fields_per_day``
    distinct ones; past that, a new one adds to its overflow field (the same direction,
    connector, type and policy; domain and reason ``(other)``): every message is still counted.
    """
    remaining = list(entries)
    skipped = 0
    while remaining:
        stale = _fold_once(client, tenant, consumer, remaining, retention_days, now,
                           blocked_fields_per_day, extra, zone)  # fmt: skip
        if not stale:
            return FoldResult(len(remaining), sum(e.traces for e in remaining), skipped)
        skipped += len(stale)
        remaining = [e for e in remaining if e.entry_id not in stale]
    return FoldResult(0, 0, skipped)


def _fold_once(
    client: redis.Redis,
    tenant: str,
    consumer: str,
    entries: Sequence[EntryIncrements],
    retention_days: int,
    now: datetime,
    blocked_fields_per_day: int,
    extra: ExtraOf | None = None,
    zone: tzinfo = UTC,
) -> set[str]:
    totals: Counter[tuple[str, str]] = Counter()
    for entry in entries:
        totals.update(entry.counts)
    day_keys: dict[tuple[str, bool], int] = {}  # (day, blocked) -> index of its hash in KEYS
    day_adds: dict[int, tuple[list[str], list[int]]] = {}  # index -> its fields, amounts
    blocked_lines = []
    for (day, field), amount in totals.items():
        if is_blocked_field(field):
            index = day_keys.setdefault((day, True), len(day_keys) + 3)
            blocked_lines.append(f"{index}\t{field}\t{blocked_overflow_field(field)}\t{amount}\n")
        else:
            index = day_keys.setdefault((day, False), len(day_keys) + 3)
            fields, amounts = day_adds.setdefault(index, ([], []))
            fields.append(field)
            amounts.append(amount)
    adds: list[object] = []
    for index, (fields, amounts) in day_adds.items():
        adds += (index, fields, amounts)
    lifetimes = " ".join(str(day_lifetime_ms(day, retention_days, now, zone))
                         for day, _ in day_keys)  # fmt: skip
    # More hashes (the per-domain and per-user counters) follow the days' in KEYS, their
    # version strings after the days' versions: fold.lua treats each as it treats a day.
    extras = extra(entries) if extra is not None else ()
    for position, counters in enumerate(extras, start=len(day_keys) + 3):
        adds += (position, list(counters.counts), list(counters.counts.values()))
        lifetimes += f" {counters.lifetime_ms}"
    argv = [keys.CONSUMER_GROUP, consumer, max(e.newest_ms for e in entries),
            sum(e.traces for e in entries), _MSGPACK.encode(adds), lifetimes,
            "".join(blocked_lines), blocked_fields_per_day,
            *(e.entry_id for e in entries)]  # fmt: skip
    key_names = [keys.stream(tenant), keys.meta(tenant)]
    key_names += [(keys.day_blocked if blocked else keys.day_counts)(tenant, day)
                  for day, blocked in day_keys]  # fmt: skip
    key_names += [counters.hash_key for counters in extras]
    key_names += [(keys.day_blocked_version if blocked else keys.day_version)(tenant, day)
                  for day, blocked in day_keys]  # fmt: skip
    key_names += [counters.version_key for counters in extras]
    _, stale = script(client, "fold")(keys=key_names, args=argv)
    return {s.decode() if isinstance(s, bytes) else s for s in stale}


# A day folded after its end of life by the service's clock (a trace accepted at the edge of
# retention and folded a moment later) still lives this long, so the fold never deletes counts
# it has just added; no report window reaches such a day.
MIN_DAY_LIFETIME_MS = 3_600_000


def day_lifetime_ms(day: str, retention_days: int, now: datetime, zone: tzinfo = UTC) -> int:
    """How long ``day``'s counters live from ``now``: until one day past the retention period
    (so a window at its edge is always whole), as a duration. A duration, not an EXPIREAT
    moment, so that Redis's own clock never decides when a day ends: a Redis whose clock
    differs from the service's (or a test's injected clock) keeps every day exactly as long as
    the service means to. ``day`` is a local day of the tenant's ``zone``."""
    if zone is not UTC:
        midnight = day_start(date.fromisoformat(day), zone)
        end_of_life = midnight + timedelta(days=retention_days + 1)
        return max(MIN_DAY_LIFETIME_MS, int((end_of_life - now).total_seconds() * 1000))
    midnight = datetime.combine(date.fromisoformat(day), time(), tzinfo=UTC)
    end_of_life = midnight + timedelta(days=retention_days + 1)
    return max(MIN_DAY_LIFETIME_MS, int((end_of_life - now).total_seconds() * 1000))


def read_counters(client: redis.Redis, tenant: str, days: Sequence[str]) -> CounterSnapshot:
    """The counters of ``days`` and the data version they belong to: each chunk of days one
    transaction (MULTI; see ``versioned_read`` at the memory limit), the chunks consistent by
    their version (see ``day_chunks``)."""

    def read_chunk(chunk: Sequence[str], first: bool) -> list[Any]:
        def reads(pipe: Any) -> None:
            for day in chunk:
                pipe.hgetall(keys.day_counts(tenant, day))

        return read_with_version(client, keys.meta(tenant), reads)

    chunks = day_chunks.chunk_days(client, tenant, days) or [[]]
    parts, version = day_chunks.read_consistently(chunks, read_chunk,
                                                  lambda part: int(part[0][0] or 0))  # fmt: skip
    as_of = parts[0][0][1]
    hashes = [counts for part in parts for counts in part[1:]]
    return CounterSnapshot(
        version=version,
        data_as_of_ms=int(as_of) if as_of else None,
        days={
            day: {field.decode(): int(count) for field, count in counts.items()}
            for day, counts in zip(days, hashes, strict=False)
            if counts
        },
    )


def data_version(client: redis.Redis, tenant: str) -> int:
    return int(client.hget(keys.meta(tenant), "version") or 0)
