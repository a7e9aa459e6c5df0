"""API key records in Redis: create, list, revoke, and the per-request lookup.

A key is stored only as the sha256 of its secret (the secret has 256 bits of entropy, so a plain
hash is enough; no salt or slow KDF is needed). Records are global: one hash per key id, plus a
registry set that only ``mailflow keys list`` reads.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis

from service.core.api_keys import SCOPES, hash_secret, parse_key, validate_tenant
from service.store import keys, near_cache


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    tenant: str
    scopes: tuple[str, ...]
    name: str
    created_at: str
    revoked_at: str | None
    secret_hash: str


def save(
    client: redis.Redis,
    key_id: str,
    secret_hash: str,
    tenant: str,
    scopes: Iterable[str],
    name: str,
    created_at: str,
) -> None:
    record: dict[Any, Any] = {"tenant": tenant, "scopes": " ".join(sorted(scopes)),
                              "hash": secret_hash, "name": name,
                              "created_at": created_at}  # fmt: skip
    # Record first, registry second: a crash between leaves a usable key missing from the list,
    # never a listed key that does not exist.
    client.hset(keys.api_key(key_id), mapping=record)
    client.sadd(keys.api_key_registry(), key_id)
    # API processes remember unknown key ids (load_for_request): this one exists now.
    near_cache.publish_invalidation(client, keys.api_key(key_id))


def load(client: redis.Redis, key_id: str) -> KeyRecord | None:
    raw = client.hgetall(keys.api_key(key_id))
    if not raw or b"tenant" not in raw:
        return None
    fields = {_decoded(k): _decoded(v) for k, v in raw.items()}
    return KeyRecord(
        key_id=key_id,
        tenant=fields["tenant"],
        scopes=tuple(fields.get("scopes", "").split()),
        name=fields.get("name", ""),
        created_at=fields.get("created_at", ""),
        revoked_at=fields.get("revoked_at"),
        secret_hash=fields.get("hash", ""),
    )


def all_records(client: redis.Redis) -> list[KeyRecord]:
    ids = sorted(_decoded(member) for member in client.smembers(keys.api_key_registry()))
    records = [load(client, key_id) for key_id in ids]
    return [record for record in records if record is not None]


def revoke(client: redis.Redis, key_id: str, revoked_at: str) -> bool:
    """Mark the key revoked (kept for the audit trail). False when there is no such key."""
    if not client.exists(keys.api_key(key_id)):
        return False
    client.hsetnx(keys.api_key(key_id), "revoked_at", revoked_at)
    near_cache.publish_invalidation(client, keys.api_key(key_id))  # every API process, at once
    # One more round trip before saying "revoked": Redis writes its replies and the message to
    # subscribers in the same pass of its event loop, so once this PING is answered the message
    # is in every API process's socket, and no request that follows can use the key.
    client.ping()
    return True


def delete(client: redis.Redis, key_ids: Iterable[str]) -> None:
    """Delete keys outright (a tenant's delete; a revoked key is kept instead, for the audit
    trail). Like ``revoke``: every API process forgets them before this returns."""
    for key_id in key_ids:
        client.unlink(keys.api_key(key_id))
        client.srem(keys.api_key_registry(), key_id)
        near_cache.publish_invalidation(client, keys.api_key(key_id))
    client.ping()  # see ``revoke``


def load_for_request(client: redis.Redis, key_id: str) -> KeyRecord | None:
    """The key's record for authenticating a request: from the near cache when it holds a live
    copy (revocation invalidates it at once), else from Redis. An unknown id is remembered as
    unknown just the same (``save`` invalidates it), so known and unknown ids cost the same: one
    round trip the first time, none while cached."""
    return near_cache.read_through(  # type: ignore[no-any-return]
        client, keys.api_key(key_id), lambda: load(client, key_id), remember_absent=True
    )


def _decoded(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def create_key(
    client: redis.Redis, tenant: str, scopes: Iterable[str], name: str, now: datetime
) -> str:
    """Store a new key for ``tenant`` and return it; this is the only time it exists in full."""
    validate_tenant(tenant)
    scopes = sorted(set(scopes))
    unknown = set(scopes) - set(SCOPES)
    if not scopes or unknown:
        raise ValueError(f"scopes must be among {', '.join(SCOPES)}; got {', '.join(scopes)}")
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    save(client, key_id, hash_secret(secret), tenant, scopes, name,
                  now.isoformat(timespec="seconds"))  # fmt: skip
    return f"mf_{key_id}_{secret}"


# The hash an unknown key id's secret is compared with: an id that does not exist costs the
# same hashing and comparison as one that does, so timing tells nothing about which ids exist.
_NO_SUCH_KEY_HASH = hash_secret(secrets.token_urlsafe(32))


def secret_matches(record: KeyRecord | None, presented_hash: str) -> bool:
    """Whether a live (not revoked) ``record`` has this secret; constant time, found or not."""
    expected = record.secret_hash if record is not None else _NO_SUCH_KEY_HASH
    matches = hmac.compare_digest(expected, presented_hash)
    return matches and record is not None and record.revoked_at is None


def key_is_valid(client: redis.Redis, key: str, tenant: str, scope: str) -> bool:
    """Whether ``key`` exists, is not revoked, and belongs to ``tenant`` with ``scope``."""
    parsed = parse_key(key)
    if parsed is None:
        return False
    record = load(client, parsed[0])
    if record is None or not secret_matches(record, hash_secret(parsed[1])):
        return False
    return record.tenant == tenant and scope in record.scopes
