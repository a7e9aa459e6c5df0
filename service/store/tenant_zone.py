"""The tenant's time zone setting: stored, read through a cache, changed by an admin.

Every ingest request, report and worker pass needs the zone, and it changes about never: the
API reads it through the near cache (one round trip per process until a change publishes the
key), and the worker keeps every tenant's zone while a global version number stays the same
(``keys.time_zones_version``, read at most every ``ZONE_CACHE_SECONDS``), so a change is picked
up within seconds, no trace costs a read, and an idle worker's pass over every tenant costs
one read more, not one per tenant.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, tzinfo

import redis

from service.core.local_days import DEFAULT_ZONE_NAME, zone_name, zone_named
from service.store import keys, near_cache

ZONE_CACHE_SECONDS = 2.0
# A zone cached longer is read again even if the version did not move (a change whose version
# bump was lost with its process): a bound on any failure of the above.
ZONE_MAX_AGE_SECONDS = 300.0
MAX_CACHED_TENANTS = 100_000


def stored_zone_name(client: redis.Redis, tenant: str) -> str:
    """The zone name stored for ``tenant``, read from Redis (UTC when none is)."""
    raw = client.get(keys.time_zone(tenant))
    return DEFAULT_ZONE_NAME if raw is None else _text(raw)


def zone_of(client: redis.Redis, tenant: str) -> tzinfo:
    """The tenant's zone, through the near cache where the client has one."""
    key = keys.time_zone(tenant)

    def load() -> str | None:
        raw = client.get(key)
        return None if raw is None else _text(raw)

    name = near_cache.read_through(client, key, load, remember_absent=True)
    return _zone_or_utc(name)


def store_zone(client: redis.Redis, tenant: str, name: str) -> tuple[str, str]:
    """Set the tenant's zone (ValueError for a name that is not a known IANA zone); (the zone
    before, the zone now), as names. UTC is the default: setting it removes the key."""
    zone = zone_named(name)
    key = keys.time_zone(tenant)
    after = zone_name(zone)
    pipe = client.pipeline(transaction=True)
    pipe.get(key)
    if zone is UTC:
        pipe.delete(key)
    else:
        pipe.set(key, after)
    raw_before, _ = pipe.execute()
    near_cache.publish_invalidation(client, key)
    client.incr(keys.time_zones_version())  # global (another slot on a cluster): not in MULTI
    return (DEFAULT_ZONE_NAME if raw_before is None else _text(raw_before)), after


class ZoneCache:
    """Each tenant's zone for a process without a near cache (the worker): kept while the
    global version (read at most every ``check_seconds``) stays the same, and at most
    ``ZONE_MAX_AGE_SECONDS``; on ``clock`` (seconds; the worker's injected clock, so a test
    driving the loop sees a change as a worker would)."""

    def __init__(
        self,
        client: redis.Redis,
        check_seconds: float = ZONE_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.check_seconds = check_seconds
        self.clock = clock
        self._zones: dict[str, tuple[float, tzinfo]] = {}
        self._version: bytes | str | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def zone(self, tenant: str) -> tzinfo:
        if near_cache.of(self.client) is not None:
            return zone_of(self.client, tenant)
        now = self.clock()
        if not 0 <= now - self._checked_at <= self.check_seconds:
            version = self.client.get(keys.time_zones_version())
            with self._lock:
                if version != self._version:
                    self._zones.clear()
                    self._version = version
                self._checked_at = now
        with self._lock:
            found = self._zones.get(tenant)
        if found is not None and 0 <= now - found[0] <= ZONE_MAX_AGE_SECONDS:
            return found[1]
        zone = _zone_or_utc(stored_zone_name(self.client, tenant))
        with self._lock:
            if len(self._zones) >= MAX_CACHED_TENANTS:
                self._zones.clear()
            self._zones[tenant] = (now, zone)
        return zone


def _zone_or_utc(name: str | None) -> tzinfo:
    """A stored name as a zone; one this tzdata does not know (written by a newer release)
    counts as UTC rather than failing every request of the tenant."""
    if name is None:
        return UTC
    try:
        return zone_named(name)
    except ValueError:
        return UTC


def zone_from_stored(raw: bytes | str | None) -> tzinfo:
    """The zone of a raw stored value (as a pipelined GET of ``keys.time_zone`` returns it)."""
    return _zone_or_utc(None if raw is None else _text(raw))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
