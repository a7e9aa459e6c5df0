"""Reading a tenant's counters together with the data version they belong to, at any memory.

The reads are one MULTI: nothing can change between the version and the counters. Redis 6.2
refuses every command queued in a MULTI while it is over ``maxmemory`` (reads too; Redis 7
and Valkey let reads through), which would make every report a 503 exactly when the store is
full. Then the same reads go in a plain pipeline that reads the version again at its end:
every change to the counters bumps the version atomically with it, so the same version before
and after means the replies are of that version. A change in between makes it read again, up
to ``READ_ATTEMPTS`` times; after that the replies are given with the *older* version (as
``day_chunks`` does), so a copy cached under it is at least as new as it claims.

(A read-only Lua script without flags would also run on both at the limit; this keeps the
MULTI as the normal path and needs no second script for the fallback.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from redis.client import Pipeline

from service.store.availability import refuses_writes
from service.store.day_chunks import READ_ATTEMPTS

Reads = Callable[[Pipeline], object]  # queues the reads on the pipeline it is given


def read_with_version(client: redis.Redis, meta_key: str, reads: Reads) -> list[Any]:
    """[HMGET ``meta_key`` version data_as_of_ms, then the replies of ``reads``], all of one
    data version."""
    pipe = client.pipeline(transaction=True)
    pipe.hmget(meta_key, "version", "data_as_of_ms")
    reads(pipe)
    try:
        return list(pipe.execute())
    except redis.RedisError as error:
        if not refuses_writes(error):
            raise
    replies: list[Any] = []
    for _ in range(READ_ATTEMPTS):
        pipe = client.pipeline(transaction=False)
        pipe.hmget(meta_key, "version", "data_as_of_ms")
        reads(pipe)
        pipe.hget(meta_key, "version")
        *replies, after = pipe.execute()
        if replies[0][0] == after:
            break
    return replies
