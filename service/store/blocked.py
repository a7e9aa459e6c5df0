"""Reading the daily counters of messages blocked by a TLS policy (written by the fold)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis

from service.store import day_chunks, keys


@dataclass(frozen=True)
class BlockedCounters:
    """Blocked counters of some days (day -> field -> messages), with the data version they
    were read at."""

    version: int
    days: dict[str, dict[str, int]]


def read_blocked(client: redis.Redis, tenant: str, days: Sequence[str]) -> BlockedCounters:
    """The blocked counters of ``days``, of one data version. Each day's hash is bounded
    (``MAILFLOW_BLOCKED_FIELDS_PER_DAY`` plus its overflow fields), and most days have none:
    one HGETALL per day, in one pipeline between two reads of the version (every fold bumps
    it: equal, nothing changed in between). Not a MULTI: Redis 6.2 refuses every command of a
    MULTI at its memory limit, reads too, and the reports are still answered there. A read
    still mixing versions after ``day_chunks.READ_ATTEMPTS`` is answered with the older one,
    so whatever is cached under it is built again at the next version check."""
    for _ in range(day_chunks.READ_ATTEMPTS):
        pipe = client.pipeline(transaction=False)
        pipe.hget(keys.meta(tenant), "version")
        for day in days:
            pipe.hgetall(keys.day_blocked(tenant, day))
        pipe.hget(keys.meta(tenant), "version")
        before, *hashes, after = pipe.execute()
        if before == after:
            break
    return BlockedCounters(
        version=int(before or 0),
        days={
            day: {field.decode(): int(count) for field, count in counts.items()}
            for day, counts in zip(days, hashes, strict=True)
            if counts
        },
    )
