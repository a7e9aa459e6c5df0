"""A per-process cache of Redis values, kept true by invalidation messages from Redis.

Cached reads are the API's hot path, and on the machines mailflow runs on one Redis round trip
costs more than everything else in a cached request. Key records and precomputed report views
change rarely, so each API process keeps them in memory; every writer of those keys publishes
the key's name on ``keys.invalidation_channel()`` (the Lua scripts that store views, the script
that changes connector definitions, key revocation), and the cache drops its copy.

Safety rules, in order of importance:
- Every lookup first reads the invalidations that have arrived (a non-blocking poll of the
  subscription's connection), so a revocation that Redis has published is seen by the very next
  request of every process: there is no listener thread that could lag behind.
- The cache answers only while subscribed. Until the first subscription, and after the
  connection breaks until it is subscribed again, every read goes to Redis; each
  (re)subscription empties the cache, so nothing published while deaf is ever served.
- A value read from Redis is stored only if no invalidation arrived since the read began (a
  generation counter), so a read racing a write can never pin the old value.
- Entries also expire after ``max_age_seconds``, a bound on any failure of the above.

Misses can be remembered too (``read_through(..., remember_absent=True)``, for API key ids):
an unknown key id presented again costs no Redis round trip, so guessing ids costs Redis
nothing after the first try and a known id (whose record is cached) answers no faster than an
unknown one. Remembered misses live apart from values, in a map of their own with its own bound
(the oldest go first), so a flood of made-up ids never pushes a real record out; the writer of
a new key publishes its name like any other writer, so a key created after a miss works at once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import redis
from redis.client import PubSub

from service.store import keys

log = logging.getLogger("mailflow.near_cache")
RESUBSCRIBE_SECONDS = 0.5
# A healthy Redis connects and confirms a subscription in well under a millisecond; waiting
# longer for a stalled one would only add to the request that tried, which must still answer
# within 2 s.
SUBSCRIBE_WAIT_SECONDS = 0.2


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()  # what ``get`` answers for a remembered miss


class NearCache:
    def __init__(
        self, max_entries: int = 10_000, max_age_seconds: float = 30.0, max_absent: int = 10_000
    ) -> None:
        self.max_entries = max_entries
        self.max_age_seconds = max_age_seconds
        self.max_absent = max_absent
        self._entries: dict[str, tuple[float, Any]] = {}
        self._absent: dict[str, float] = {}  # name -> when the miss was seen, oldest first
        self._lock = threading.Lock()  # gthread workers share one cache per process
        self._generation = 0
        self._client: redis.Redis | None = None  # the subscription's own client
        self._pubsub: PubSub | None = None
        self._retry_at = 0.0

    def start(self, client: redis.Redis) -> NearCache:
        self._client = _subscriber_of(client)
        return self

    def stop(self) -> None:
        with self._lock:
            self._drop_subscription()
            if self._client is not None:
                self._client.close()

    def generation(self) -> int:
        with self._lock:
            self._sync()
            return self._generation

    def get(self, name: str) -> Any | None:
        """The cached value, ``ABSENT`` for a remembered miss, or None: ask Redis."""
        with self._lock:
            if not self._sync():
                return None
            entry = self._entries.get(name)
            missed_at = self._absent.get(name) if entry is None else None
        if entry is not None:
            return entry[1] if time.monotonic() - entry[0] <= self.max_age_seconds else None
        if missed_at is not None and time.monotonic() - missed_at <= self.max_age_seconds:
            return ABSENT
        return None

    def put(self, name: str, value: Any, generation: int) -> None:
        with self._lock:
            if not self._sync() or generation != self._generation:
                return  # deaf, or something changed since the read began: do not trust it
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[name] = (time.monotonic(), value)

    def put_absent(self, name: str, generation: int) -> None:
        """Remember that ``name`` does not exist, as read from Redis at ``generation``."""
        with self._lock:
            if not self._sync() or generation != self._generation:
                return
            self._absent.pop(name, None)  # re-inserted last: the order stays oldest first
            while len(self._absent) >= self.max_absent:
                del self._absent[next(iter(self._absent))]
            self._absent[name] = time.monotonic()

    # -- the subscription (called with the lock held) -------------------------------------------

    def _sync(self) -> bool:
        """Apply every invalidation that has arrived; False while not subscribed."""
        if self._pubsub is None and not self._subscribe():
            return False
        assert self._pubsub is not None
        try:
            if not self._has_input():
                return True
            while True:
                message = self._pubsub.get_message(timeout=0.0)  # never blocks
                if message is None:
                    return True
                if message["type"] == "message":
                    data = message["data"]
                    name = data.decode() if isinstance(data, bytes) else data
                    self._entries.pop(name, None)
                    self._absent.pop(name, None)
                    self._generation += 1
        except Exception as error:  # noqa: BLE001 - any failure means: stop trusting the cache
            log.warning("near cache lost its subscription (%s); reads go to Redis", error)
            self._drop_subscription()
            return False

    def _has_input(self) -> bool:
        """One poll of the subscription's connection (redis-py's public ``can_read``): the
        common case, nothing arrived, costs no parsing and no message dictionary."""
        connection = self._pubsub.connection if self._pubsub is not None else None
        if connection is None:
            return True  # let get_message find out (and raise if the connection is gone)
        return bool(connection.can_read(timeout=0))

    def _subscribe(self) -> bool:
        if self._client is None or time.monotonic() < self._retry_at:
            return False
        pubsub = self._client.pubsub()
        try:
            pubsub.subscribe(keys.invalidation_channel())
            confirmation = pubsub.get_message(timeout=SUBSCRIBE_WAIT_SECONDS)
            if confirmation is None or confirmation["type"] != "subscribe":
                raise redis.ConnectionError("no subscription confirmation")
        except Exception:  # noqa: BLE001 - Redis down: try again shortly, read through meanwhile
            with contextlib.suppress(Exception):
                pubsub.close()
            self._retry_at = time.monotonic() + RESUBSCRIBE_SECONDS
            return False
        self._pubsub = pubsub
        self._entries.clear()
        self._absent.clear()
        self._generation += 1
        return True

    def _drop_subscription(self) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(Exception):  # closing a broken connection may fail too
                self._pubsub.close()
        self._pubsub = None
        self._entries.clear()
        self._absent.clear()
        self._generation += 1
        self._retry_at = time.monotonic() + RESUBSCRIBE_SECONDS


def _subscriber_of(client: redis.Redis) -> redis.Redis:
    """A client of the same server for the subscription alone, with short timeouts. Requests
    subscribe (again) as they need the cache; trying it on a stalled Redis must not add a full
    request timeout to the request that tried, which has its own Redis call to time out yet."""
    pool = client.connection_pool
    settings = {**pool.connection_kwargs, "socket_timeout": SUBSCRIBE_WAIT_SECONDS,
                "socket_connect_timeout": SUBSCRIBE_WAIT_SECONDS}  # fmt: skip
    return redis.Redis(
        connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **settings)
    )


def read_through(
    client: redis.Redis, name: str, load: Callable[[], Any | None], remember_absent: bool = False
) -> Any | None:
    """``load()`` the value of key ``name`` unless this process's near cache holds a live copy;
    a loaded value is kept for the next request, and so is a miss (None) if ``remember_absent``
    (then the writer that creates ``name`` must publish it, see ``publish_invalidation``)."""
    cache = of(client)
    if cache is None:
        return load()
    hit = cache.get(name)
    if hit is ABSENT:
        return None
    if hit is not None:
        return hit
    generation = cache.generation()
    value = load()
    if value is not None:
        cache.put(name, value, generation)
    elif remember_absent:
        cache.put_absent(name, generation)
    return value


# Which client reads through which cache: a table beside redis-py's objects, not an attribute
# set on them. Weak: a client that is closed and dropped takes its entry with it.
_CACHES: weakref.WeakKeyDictionary[redis.Redis, NearCache] = weakref.WeakKeyDictionary()


def attach(client: redis.Redis, cache: NearCache) -> None:
    """Reads through ``client`` (``read_through``) use ``cache`` from now on."""
    _CACHES[client] = cache


def of(client: redis.Redis) -> NearCache | None:
    return _CACHES.get(client)


def publish_invalidation(client: redis.Redis, *names: str) -> None:
    """For writers outside Lua: tell every API process to drop these keys."""
    for name in names:
        client.publish(keys.invalidation_channel(), name)
