"""API key records in Redis: create, list, revoke, and the per-request lookup.

A key is stored only as the sha256 of its secret (the secret has 256 bits of entropy, so a plain
hash is enough; no salt or slow KDF is needed). Records are global: one hash per key id, plus a
registry set that only ``mailflow keys list`` reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis

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
    return True


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
