"""When the store cannot take our writes, and why: one classification for the API, the worker
and readiness.

Two kinds of trouble are temporary and are answered alike (503 + Retry-After; the worker waits
and carries on):
- the store does not answer: down, stalled, or a Redis Cluster failing over;
- the store answers but refuses writes: ``OOM`` (``maxmemory`` reached with ``noeviction``),
  ``MISCONF`` (a failed RDB or AOF write, e.g. a full disk) or ``READONLY`` (a replica, e.g. the
  old master after a failover). These arrive as ``ResponseError``, the same class as a bug in a
  command, so they are told apart by their error code. Inside a Lua script Redis 6 wraps the code
  (``Error running script ...: -OOM command not allowed ...``); Redis 7 keeps it first.

Both are safe to retry: every write of ours is idempotent or atomic (a script refused on OOM
is refused before its first write), and an entry read but not folded stays pending in its stream.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis import exceptions

from service.store.cluster import NotReplicated

# Redis down, stalled or failing over (a cluster slot without a master yet, a moved slot).
STORE_UNAVAILABLE: tuple[type[Exception], ...] = (
    redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError,
    exceptions.ClusterDownError, exceptions.TryAgainError, exceptions.AskError,
    exceptions.SlotNotCoveredError, exceptions.MasterDownError, NotReplicated,
)  # fmt: skip

# error code -> what it means, in the words readiness and logs use
_REFUSALS = {
    "OOM": "out of memory (maxmemory reached, nothing may be evicted)",
    "MISCONF": "it cannot persist to disk (a failed RDB or AOF write: disk full?)",
    "READONLY": "it is a read-only replica (after a failover?)",
}
# The code first (a plain reply), after "-" inside a script error (Redis 6), or after
# "caused error: " in a pipeline's error (redis-py).
_CODE = re.compile(r"(?:^|-|error: )(OOM|MISCONF|READONLY) ")


def refusal_code(error: BaseException) -> str | None:
    """``OOM``, ``MISCONF`` or ``READONLY`` when Redis refused a write for that reason."""
    if isinstance(error, exceptions.OutOfMemoryError):  # redis-py strips the code off these
        return "OOM"
    if isinstance(error, exceptions.ReadOnlyError):
        return "READONLY"
    if isinstance(error, redis.ResponseError):
        match = _CODE.search(str(error))
        if match:
            return match.group(1)
    return None


def refuses_writes(error: BaseException) -> bool:
    return refusal_code(error) is not None


def is_unavailable(error: BaseException) -> bool:
    """The store does not answer, or refuses writes: temporary, worth a retry."""
    return isinstance(error, STORE_UNAVAILABLE) or refuses_writes(error)


def describe(error: BaseException) -> str:
    """A one-line reason for readiness checks and logs."""
    code = refusal_code(error)
    if code is None:
        return f"unavailable: {type(error).__name__}"
    message = str(error).split(f"{code} ", 1)[-1].strip()
    return f"redis refuses writes: {code}, {_REFUSALS[code]}: {message[:160]}"


@contextmanager
def skipped_if_refused() -> Iterator[None]:
    """Around a write that only saves work later (a cached copy of a report): when Redis
    refuses writes (``refuses_writes``), the write is skipped and the answer, built from what is
    stored, still goes out; any other error propagates."""
    try:
        yield
    except redis.RedisError as error:
        if not refuses_writes(error):
            raise
