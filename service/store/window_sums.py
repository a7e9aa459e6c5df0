"""A window's daily counters summed, from cached sums of runs of days where they are valid.

The per-connector report needs every counter field of every day of its window added up: read
day by day, 90 days of 1,000 connectors is some 540,000 fields each time the report is built.
Here the runs of days that ``core.sum_plan`` picks are summed once and the sum kept in Redis,
stamped with the newest data version among its days (the fold records each day's). A later
read reuses a sum while its stamp still holds and sums it again when any of its days changed.

The reading and summing is done here, in calls that each keep Redis briefly (a day's counters,
a cached sum, chunks of days of bounded size: ``day_chunks``), never in one script over the
whole window, which at the connector limit held every tenant's Redis for a second. The result
is exactly the sum of every day at one data version: the tenant's version is read before and
after, and the read made again when it moved (see ``day_chunks`` for when it keeps moving).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from service.core.connectors import unpack
from service.core.sum_plan import CachedRun, Part, plan_window_sum
from service.core.windows import Window
from service.store import day_chunks, keys
from service.store.connectors_store import ReportCounters, definitions_from_flat
from service.store.scripts import script

Sums = dict[str, int]


def read_window_sum(client: redis.Redis, tenant: str, window: Window) -> ReportCounters:
    """Every counter field of ``window`` summed over its days, with the data version and the
    connector definitions; ``packed`` holds the one summed string."""
    plan = plan_window_sum(window)
    seen: list[int] = []
    for _ in range(day_chunks.READ_ATTEMPTS):
        pipe = client.pipeline(transaction=False)
        pipe.hmget(keys.meta(tenant), "version", "data_as_of_ms")
        pipe.hgetall(keys.connector_definitions(tenant))
        # MGET through execute_command: redis-py blocks mget() in cluster pipelines even when,
        # as here, every key carries the tenant's hash tag and so shares one slot.
        pipe.execute_command("MGET", *(keys.day_version(tenant, day) for day in window.days))
        for day in window.days:
            pipe.pttl(keys.day_counts(tenant, day))
        asked = time.monotonic()
        (version, as_of), definitions, versions, *ttls = pipe.execute()
        summer = _Summer(client, tenant, window.days, versions, ttls, asked)
        sums = summer.sum_parts(plan)
        seen.append(int(version or 0))
        if client.hget(keys.meta(tenant), "version") == version:
            break
    return ReportCounters(
        version=min(seen),
        data_as_of_ms=int(as_of) if as_of else None,
        definitions=definitions_from_flat([x for pair in definitions.items() for x in pair]),
        packed=[_pack(sums)],
    )


@dataclass
class _Summer:
    """Sums parts of one window, given its days' versions and time to live as read first."""

    client: redis.Redis
    tenant: str
    days: list[str]
    versions: list[Any]  # each day's data version (bytes) or None
    ttls: list[int]  # each day's counters' time to live, ms (negative: none)
    asked: float  # when the ttls were asked for (time.monotonic)
    # Which counters are summed: the daily counters, or others laid out as they are
    # (``sum_counters``); (tenant, day) -> hash, (tenant, first, last) -> cached sum.
    day_key: day_chunks.DayKey = keys.day_counts
    sum_key: Callable[[str, str, str], str] = keys.block_sum
    packed_reads: bool = False  # read single days as packed strings (read_packed.lua)

    def sum_parts(self, parts: Sequence[Part]) -> Sums:
        sums: Sums = {}
        runs = [part for part in parts if isinstance(part, CachedRun)]
        pipe = self.client.pipeline(transaction=False)
        for run in runs:
            pipe.hmget(self._key(run), "stamp", "sums")
        for run, (stamp, packed) in zip(runs, pipe.execute() if runs else [], strict=True):
            newest = max(int(v or 0) for v in self.versions[run.first : run.last + 1])
            if stamp is not None and packed is not None and int(stamp) == newest:
                _add(sums, unpack(packed.decode()))
                continue
            run_sums = self.sum_parts(run.parts)
            self._cache(run, newest, run_sums)
            _add(sums, run_sums.items())
        single = [self.days[part] for part in parts if isinstance(part, int)]
        if self.packed_reads:
            for day in single:
                _add(sums, read_packed(self.client, self.day_key(self.tenant, day)).items())
            return sums
        for counts in day_chunks.read_days(self.client, self.tenant, single, self.day_key):
            _add(sums, ((field.decode(), int(n)) for field, n in counts.items()))
        return sums

    def _key(self, run: CachedRun) -> str:
        return self.sum_key(self.tenant, self.days[run.first], self.days[run.last])

    def _cache(self, run: CachedRun, stamp: int, sums: Sums) -> None:
        """Keep the run's sum, stamped, never longer than any of its days is kept."""
        life = run.life_seconds * 1000
        for ttl in self.ttls[run.first : run.last + 1]:
            if 0 < ttl < life:
                life = ttl
        # The days' lives were read a moment ago: less the time since (rounded up), and a
        # second for the time until Redis runs the PEXPIRE below (on a loaded machine, some
        # ms: a sum that outlived its days by them was seen); a sum gone a second early is
        # only summed again if asked for.
        life -= math.ceil((time.monotonic() - self.asked) * 1000) + 1000
        if life <= 0:
            return
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self._key(run), mapping={"stamp": stamp, "sums": _pack(sums)})
        pipe.pexpire(self._key(run), life)
        # Best effort: at Redis's memory limit the write is refused and the report is still
        # answered, from the days.
        with contextlib.suppress(redis.ResponseError):
            pipe.execute()


PACKED_STEP = 8000  # fields per read_packed.lua call: some 15 ms of Redis at most


def read_packed(client: redis.Redis, key: str) -> Sums:
    """Every field of one counter hash, in calls of PACKED_STEP fields (read_packed.lua)."""
    fields: Sums = {}
    cursor: Any = 0
    while True:
        cursor, packed = script(client, "read_packed")(keys=[key], args=[cursor, PACKED_STEP])
        fields.update(unpack(packed.decode()))  # a field seen twice: its last count
        if int(cursor) == 0:
            return fields


def _add(into: Sums, counts: Any) -> None:
    if not into:  # the first part: nothing to add to
        into.update(counts)
        return
    for field, count in counts:
        into[field] = into.get(field, 0) + count


def _pack(sums: Sums) -> str:
    return "\n".join(f"{field}\t{count}" for field, count in sums.items())


@dataclass(frozen=True)
class CounterSums:
    version: int
    data_as_of_ms: int | None
    sums: Sums


def sum_counters(
    client: redis.Redis,
    tenant: str,
    window: Window,
    day_key: day_chunks.DayKey,
    version_key: day_chunks.DayKey,
    sum_key: Callable[[str, str, str], str],
) -> CounterSums:
    """Every field of the daily hashes ``day_key`` names (each day's data version at
    ``version_key``) summed over ``window``, from cached sums of runs of days as
    ``read_window_sum`` does; the per-domain and per-user counters (docs/domains.md)."""
    # Only today is read as it is: the run before it is checked by its stamp (each day's data
    # version), so mail for yesterday sums the run again, never gives a stale sum.
    plan = plan_window_sum(window, recent_days=1)
    seen: list[int] = []
    sums: Sums = {}
    as_of = None
    for _ in range(day_chunks.READ_ATTEMPTS):
        pipe = client.pipeline(transaction=False)
        pipe.hmget(keys.meta(tenant), "version", "data_as_of_ms")
        _ask_days(pipe, tenant, window, day_key, version_key)
        asked = time.monotonic()
        (version, as_of), versions, *ttls = pipe.execute()
        summer = _Summer(client, tenant, window.days, versions, ttls, asked, day_key, sum_key,
                         packed_reads=True)  # fmt: skip
        sums = summer.sum_parts(plan)
        seen.append(int(version or 0))
        if client.hget(keys.meta(tenant), "version") == version:
            break
    return CounterSums(min(seen), int(as_of) if as_of else None, sums)


@dataclass
class StaleRuns:
    """The cached runs of a window's ``sum_counters`` plan that are not valid, the runs inside
    a run first, each with the counter fields of its days (what summing it reads at most)."""

    summer: _Summer
    runs: list[tuple[CachedRun, int]]

    @property
    def fields(self) -> int:
        return sum(cost for _, cost in self.runs)

    def sum(self, fields_budget: int) -> tuple[int, bool]:
        """Sum and cache them in order until about ``fields_budget`` fields; the fields
        summed, and whether some remain. It stops after the run that passes the budget, so
        it reads at most the budget and one run (a block of ``sum_plan.BLOCK_DAYS`` days, or
        a window's edge days and its blocks)."""
        summed = 0
        for run, cost in self.runs:
            if summed >= fields_budget:
                return summed, True
            self.summer.sum_parts([run])
            summed += cost
        return summed, False


def stale_runs(
    client: redis.Redis,
    tenant: str,
    window: Window,
    day_key: day_chunks.DayKey,
    version_key: day_chunks.DayKey,
    sum_key: Callable[[str, str, str], str],
) -> StaleRuns:
    """What a ``sum_counters`` of ``window`` would sum again before using: summed ahead in
    slices, a cold build's cost is cut into pieces, and the build after reads them cached."""
    runs = list(_inner_runs_first(plan_window_sum(window, recent_days=1)))
    pipe = client.pipeline(transaction=False)
    _ask_days(pipe, tenant, window, day_key, version_key)
    for day in window.days:
        pipe.hlen(day_key(tenant, day))
    for run in runs:
        pipe.hget(sum_key(tenant, window.days[run.first], window.days[run.last]), "stamp")
    asked = time.monotonic()
    versions, *replies = pipe.execute()
    count = len(window.days)
    ttls, sizes, stamps = replies[:count], replies[count : 2 * count], replies[2 * count :]
    summer = _Summer(client, tenant, window.days, versions, ttls, asked, day_key, sum_key,
                     packed_reads=True)  # fmt: skip
    stale = []
    for run, stamp in zip(runs, stamps, strict=True):
        newest = max(int(v or 0) for v in versions[run.first : run.last + 1])
        if stamp is None or int(stamp) != newest:
            stale.append((run, sum(sizes[run.first : run.last + 1])))
    return StaleRuns(summer, stale)


def _ask_days(
    pipe: Any,
    tenant: str,
    window: Window,
    day_key: day_chunks.DayKey,
    version_key: day_chunks.DayKey,
) -> None:
    """Queue what a ``_Summer`` is given about the window's days: their data versions (one
    MGET) and their counters' time to live."""
    pipe.execute_command("MGET", *(version_key(tenant, day) for day in window.days))
    for day in window.days:
        pipe.pttl(day_key(tenant, day))


def _inner_runs_first(parts: Sequence[Part]) -> Iterator[CachedRun]:
    for part in parts:
        if isinstance(part, CachedRun):
            yield from _inner_runs_first(part.parts)
            yield part
