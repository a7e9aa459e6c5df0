"""Dashboard sessions in Redis: what a signed-in browser's cookie refers to.

A session holds the key's id and the sha256 of its secret (what the key record holds too),
never the secret, so every request can admit the key again and a revoked key ends its
sessions at their next request. The times are the service's clock (injected in tests); the
idle and absolute limits are checked against them on every use, and the hash also expires by
itself after the shorter of the two remaining durations (EXPIRE, never EXPIREAT, renewed
whenever the last use is written) so an abandoned session does not stay in Redis.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis

from service.store import keys, near_cache
from service.store.availability import refuses_writes

SESSION_ID_BYTES = 32
# A session's last use is written at most this often: one Redis round trip per page instead of
# two. Idle expiry is then exact to within this much (it can come up to a minute early).
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Limits:
    idle: timedelta
    absolute: timedelta


@dataclass(frozen=True)
class DashboardSession:
    session_id: str
    key_id: str
    secret_hash: str
    tenant: str
    csrf: str
    signed_in_at: datetime
    last_used_at: datetime


def _seconds_left(signed_in_at: datetime, now: datetime, limits: Limits) -> int:
    """Seconds until the session ends if unused: the shorter of the idle and absolute limits."""
    left = min(limits.idle, signed_in_at + limits.absolute - now)
    return max(1, int(left.total_seconds()) + 1)


def create(
    client: redis.Redis,
    key_id: str,
    secret_hash: str,
    tenant: str,
    now: datetime,
    limits: Limits,
) -> DashboardSession:
    session = DashboardSession(
        session_id=secrets.token_hex(SESSION_ID_BYTES), key_id=key_id, secret_hash=secret_hash,
        tenant=tenant, csrf=secrets.token_urlsafe(32), signed_in_at=now, last_used_at=now,
    )  # fmt: skip
    key = keys.dashboard_session(session.session_id)
    with client.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping={
            "key_id": key_id, "hash": secret_hash, "tenant": tenant, "csrf": session.csrf,
            "signed_in_at": now.isoformat(), "last_used_at": now.isoformat(),
        })  # fmt: skip
        pipe.expire(key, _seconds_left(now, now, limits))
        pipe.execute()
    return session


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _load(client: redis.Redis, key: str) -> dict[str, str] | None:
    raw = client.hgetall(key)
    return {_text(k): _text(v) for k, v in raw.items()} if raw else None


def _forget(client: redis.Redis, key: str) -> None:
    client.delete(key)
    near_cache.publish_invalidation(client, key)
    _remember(client, key, {})  # empty: ended, in this process at once


def _remember(client: redis.Redis, key: str, fields: dict[str, str]) -> None:
    """Keep what this process just wrote, so its next request need not wait for the message."""
    cache = near_cache.of(client)
    if cache is not None:
        cache.put(key, fields, cache.generation())


def use(
    client: redis.Redis, session_id: str, now: datetime, limits: Limits
) -> DashboardSession | None:
    """The live session, its last use moved to ``now``; None (and deleted) once it expired.

    Read through this process's near cache: every write of a session (its last use, its end)
    publishes its key, so other processes drop their copies, and this process keeps what it
    wrote. A kept copy that looks expired is checked against Redis before the session ends."""
    try:
        key = keys.dashboard_session(session_id)
    except ValueError:
        return None
    fields = near_cache.read_through(client, key, lambda: _load(client, key))
    session = _session(session_id, fields)
    if session is not None and _expired(session, now, limits):
        fields = _load(client, key)
        session = _session(session_id, fields)
    if session is None or _expired(session, now, limits):
        if fields is not None:
            _forget(client, key)
        return None
    assert fields is not None
    if now - session.last_used_at >= TOUCH_EVERY:
        try:
            with client.pipeline(transaction=True) as pipe:
                pipe.hset(key, "last_used_at", now.isoformat())
                pipe.expire(key, _seconds_left(session.signed_in_at, now, limits))
                created, _ = pipe.execute()
        except redis.ResponseError as error:
            if not refuses_writes(error):
                raise
            # Redis refuses writes (at its memory limit, failing to persist): the pages read
            # only, so the session is served as it is; its last use stays the one stored, and
            # it ends idle counted from there (docs/operations.md).
            return session
        if created:
            # The field was new, so the hash was gone: the session ended (a sign-out) after this
            # request read it. The touch must not bring it back, here or in the near cache.
            _forget(client, key)
            return None
        near_cache.publish_invalidation(client, key)
        _remember(client, key, {**fields, "last_used_at": now.isoformat()})
    return session


def _session(session_id: str, fields: dict[str, str] | None) -> DashboardSession | None:
    if not fields:
        return None
    try:
        return DashboardSession(
            session_id, fields["key_id"], fields["hash"], fields["tenant"], fields["csrf"],
            datetime.fromisoformat(fields["signed_in_at"]),
            datetime.fromisoformat(fields["last_used_at"]),
        )  # fmt: skip
    except (KeyError, ValueError):
        return None


def _expired(session: DashboardSession, now: datetime, limits: Limits) -> bool:
    return (now - session.last_used_at >= limits.idle
            or now - session.signed_in_at >= limits.absolute)  # fmt: skip


def end(client: redis.Redis, session_id: str) -> None:
    try:
        _forget(client, keys.dashboard_session(session_id))
    except ValueError:
        return
