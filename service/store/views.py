"""Cached report bodies: serialised bytes and their ETag, served without rebuilding."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import redis

from service.store import keys, near_cache
from service.store.availability import skipped_if_refused
from service.store.scripts import script

STAGE_BODIES_OVER = 256 * 1024  # bytes; smaller bodies are written by the script itself
STAGING_SECONDS = 60  # a staged body is moved into place at once; this only cleans up


@dataclass(frozen=True)
class CachedView:
    body: bytes
    etag: str


def get_view(client: redis.Redis, tenant: str, name: str, *parts: str) -> CachedView | None:
    """The stored view, from this process's near cache when it holds a live copy."""
    key = keys.view(tenant, name, *parts)

    def load() -> CachedView | None:
        body, etag = client.hmget(key, "body", "etag")
        return None if body is None or etag is None else CachedView(body, etag.decode())

    return near_cache.read_through(client, key, load)  # type: ignore[no-any-return]


def put_view(
    client: redis.Redis,
    tenant: str,
    name: str,
    parts: tuple[str, ...],
    view: CachedView,
    version: int,
    ttl_seconds: int,
) -> bool:
    """Store unless a view built from newer data is already there; True when stored.

    A large body (the per-day connector report of a tenant at its connector limit is several
    MB) is written first under a staging name by a plain HSET, then moved into place by the
    script: copying it inside the script would hold Redis for tens of milliseconds. When Redis
    refuses writes (at its memory limit), nothing is stored: False, and the view is served
    all the same."""
    key = keys.view(tenant, name, *parts)
    put = script(client, "put_view")
    tail = [ttl_seconds, keys.invalidation_channel()]
    with skipped_if_refused():
        if len(view.body) <= STAGE_BODIES_OVER:
            return bool(put(keys=[key], args=[version, view.body, view.etag, *tail]))
        staging = keys.view_staging(key, uuid.uuid4().hex)
        pipe = client.pipeline(transaction=True)  # never a staging copy without its expiry
        pipe.hset(staging, mapping={"version": version, "body": view.body, "etag": view.etag})
        pipe.expire(staging, STAGING_SECONDS)
        pipe.execute()
        return bool(put(keys=[key, staging], args=[version, "", "", *tail]))
    return False
