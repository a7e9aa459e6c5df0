"""Per-key rate limits counted in Redis, taken in small leases so most requests need no call.

The shared counter of a key's window is the number of requests *granted* across every process.
A process that runs out of local tokens takes a lease of up to ``lease_size(limit)`` with one
INCRBY and keeps what fits under the limit. So no more than the limit is ever granted in a
window, across all processes; a process may hold a few tokens it does not use before the
window ends, which can refuse others up to (processes x lease) requests early. Small limits
lease one token at a time: exact.

When Redis refuses the INCRBY (at its memory limit with noeviction, failing to persist, or a
read-only replica), the process counts the window alone, up to the limit: reads still answer
from what is stored, and no key goes unlimited (each process grants at most the limit).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import redis

from service.store import keys
from service.store.availability import refuses_writes


def lease_size(limit: int) -> int:
    return max(1, min(limit // 50, 25))


@dataclass
class _Lease:
    tokens: int = 0
    granted_total: int = 0  # the shared count after our last lease: what we know of the rest


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int


class RateLeases:
    def __init__(self) -> None:
        self._leases: dict[tuple[str, str, int], _Lease] = {}
        self._lock = threading.Lock()

    def take(
        self, client: redis.Redis, key_id: str, kind: str, window: int, ttl: int, limit: int
    ) -> Decision:
        slot = (key_id, kind, window)
        with self._lock:
            lease = self._leases.get(slot)
            if lease is not None and lease.tokens > 0:
                lease.tokens -= 1
                return Decision(True, max(0, limit - lease.granted_total) + lease.tokens)
        size = lease_size(limit)
        counter = keys.api_key_rate(key_id, kind, window)
        pipe = client.pipeline(transaction=False)
        pipe.incrby(counter, size)
        pipe.expire(counter, ttl)
        try:
            total = int(pipe.execute()[0])
        except redis.RedisError as error:
            if not refuses_writes(error):
                raise
            with self._lock:
                held = self._leases.get(slot)
            total = (held.granted_total if held is not None else 0) + size
        granted = max(0, min(size, limit - (total - size)))
        with self._lock:
            if len(self._leases) > 10_000:
                self._leases = {s: v for s, v in self._leases.items() if s[2] >= window}
            lease = self._leases.setdefault(slot, _Lease())
            lease.granted_total = min(total, limit)
            if granted == 0:
                return Decision(False, 0)
            lease.tokens += granted - 1
            return Decision(True, max(0, limit - lease.granted_total) + lease.tokens)
