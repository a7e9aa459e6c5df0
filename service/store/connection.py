"""Connecting to Redis: one place that turns settings into a client."""

from __future__ import annotations

import redis

from service.config import Settings


def connect(settings: Settings) -> redis.Redis:
    """A client with short timeouts: a stalled Redis must become a 503, never a hung request."""
    timeout = settings.redis_timeout_seconds
    return redis.Redis.from_url(
        settings.effective_redis_url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=0,
        retry_on_timeout=False,
    )
