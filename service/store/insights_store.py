"""Insight state in Redis (the rules themselves live in service.core)."""

from __future__ import annotations

import redis

from service.store import keys


def count_active(client: redis.Redis, tenant: str) -> int:
    return int(client.scard(keys.active_insights(tenant)))
