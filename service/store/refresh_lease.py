"""The refresh lease of a tenant: one worker at a time rebuilds its views and evaluates it.

A lease lives five refresh intervals (at least 10 s), longer than a rebuild takes, and is
released only by its holder (release_lease.lua), so an expired lease taken over by another
worker is never released by the first.
"""

from __future__ import annotations

import redis

from service.store import keys
from service.store.scripts import script


def lease_ms(refresh_seconds: float) -> int:
    return int(max(refresh_seconds * 5, 10) * 1000)


def take(client: redis.Redis, tenant: str, holder: str, refresh_seconds: float) -> bool:
    """True if ``holder`` now holds the tenant's lease; False if another worker does."""
    lease = keys.refresh_lease(tenant)
    return bool(client.set(lease, holder, nx=True, px=lease_ms(refresh_seconds)))


def release(client: redis.Redis, tenant: str, holder: str) -> None:
    script(client, "release_lease")(keys=[keys.refresh_lease(tenant)], args=[holder])
