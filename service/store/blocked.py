"""Reading the daily counters of messages blocked by a TLS policy (written by the fold)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis

from service.store import keys


@dataclass(frozen=True)
class BlockedCounters:
    """Blocked counters of some days (day -> field -> messages), with the data version they
    were read at."""

    version: int
    days: dict[str, dict[str, int]]


def read_blocked(client: redis.Redis, tenant: str, days: Sequence[str]) -> BlockedCounters:
    """The blocked counters of ``days``, in one transaction with the data version. Each day's
    hash is bounded (``MAILFLOW_BLOCKED_FIELDS_PER_DAY`` plus its overflow fields), and most
    days have none: one HGETALL per day."""
    pipe = client.pipeline(transaction=True)
    pipe.hget(keys.meta(tenant), "version")
    for day in days:
        pipe.hgetall(keys.day_blocked(tenant, day))
    version, *hashes = pipe.execute()
    return BlockedCounters(
        version=int(version or 0),
        days={
            day: {field.decode(): int(count) for field, count in counts.items()}
            for day, counts in zip(days, hashes, strict=True)
            if counts
        },
    )
