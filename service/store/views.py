"""Cached report bodies: serialised bytes and their ETag, served without rebuilding."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from service.store import keys, near_cache
from service.store.scripts import script


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
    """Store unless a view built from newer data is already there; True when stored."""
    stored = script(client, "put_view")(
        keys=[keys.view(tenant, name, *parts)],
        args=[version, view.body, view.etag, ttl_seconds, keys.invalidation_channel()],
    )
    return bool(stored)
