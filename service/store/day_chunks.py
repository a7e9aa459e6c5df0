"""Reading many days' counters in calls that each keep Redis busy only briefly.

Redis runs one command (and one script, and one MULTI ... EXEC) at a time for every tenant, so
one call that reads a 90-day window of a tenant at its connector limit would hold every other
tenant for a long time. Reads of many days are therefore made in chunks of days whose counter
fields add up to at most ``FIELDS_PER_CALL`` (a day bigger than that is one chunk of its own:
one day of a tenant at the limit is a few milliseconds), and other clients are served between
the chunks.

The chunks are consistent with each other when the tenant's data version is the same in each:
every fold and every definition change bumps it, atomically with the change, so equal
versions mean nothing changed in between. When it moved, the read is made again, up to
``READ_ATTEMPTS`` times; a read still mixing versions then is answered with the *oldest*
version it saw, so whatever is cached under that version is at least as new as it claims, and
is built again at the next version check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import redis

from service.store import keys

FIELDS_PER_CALL = 6000
READ_ATTEMPTS = 3

Part = TypeVar("Part")
DayKey = Callable[[str, str], str]  # (tenant, day) -> the name of that day's counter hash


def chunk_days(
    client: redis.Redis, tenant: str, days: Sequence[str], key: DayKey = keys.day_counts
) -> list[list[str]]:
    """``days`` in consecutive chunks of at most FIELDS_PER_CALL counter fields (one HLEN each,
    in one round trip; HLEN is constant time). ``key`` names a day's hash."""
    if len(days) <= 1:
        return [list(days)] if days else []
    pipe = client.pipeline(transaction=False)
    for day in days:
        pipe.hlen(key(tenant, day))
    chunks: list[list[str]] = []
    fields = FIELDS_PER_CALL + 1  # the first day opens a chunk
    for day, size in zip(days, pipe.execute(), strict=True):
        if fields + size > FIELDS_PER_CALL:
            chunks.append([])
            fields = 0
        chunks[-1].append(day)
        fields += size
    return chunks


def read_consistently(
    chunks: Sequence[Sequence[str]],
    read_chunk: Callable[[Sequence[str], bool], Part],
    version_of: Callable[[Part], int],
) -> tuple[list[Part], int]:
    """Every chunk read by ``read_chunk(days, first)`` and the data version they are all of
    (or the oldest seen, see the module's doc)."""
    parts: list[Part] = []
    for _ in range(READ_ATTEMPTS):
        parts = [read_chunk(days, at == 0) for at, days in enumerate(chunks)]
        versions = {version_of(part) for part in parts}
        if len(versions) <= 1:
            break
    return parts, min((version_of(part) for part in parts), default=0)


def read_days(
    client: redis.Redis, tenant: str, days: Sequence[str], key: DayKey = keys.day_counts
) -> list[dict[bytes, bytes]]:
    """The counters of each of ``days`` as they are (HGETALL), one pipeline per chunk of days:
    Redis serves a client's pipeline in one go, so a pipeline too is kept to a chunk."""
    hashes: list[dict[bytes, bytes]] = []
    for chunk in chunk_days(client, tenant, days, key):
        pipe = client.pipeline(transaction=False)
        for day in chunk:
            pipe.hgetall(key(tenant, day))
        hashes += pipe.execute()
    return hashes
