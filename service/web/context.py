"""What a request works with: the Redis client, the settings, the clock and the tenant."""

from __future__ import annotations

from datetime import datetime

import redis
from flask import current_app, g

from service.config import Settings
from service.store.cursor_secret import CursorSecret

EXTENSION = "mailflow"


def extension() -> dict:  # type: ignore[type-arg]
    """This app's shared state (settings, clock, client, and what readiness remembers)."""
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]


def client() -> redis.Redis:
    return current_app.extensions[EXTENSION]["redis"]


def settings() -> Settings:
    return current_app.extensions[EXTENSION]["settings"]


def now() -> datetime:
    return current_app.extensions[EXTENSION]["clock"]()


def tenant() -> str:
    """The tenant of this request: the tenant of its API key, set by ``service.web.auth``."""
    found = g.get("tenant")
    if found is None:
        # Only /api/v1 requests have a tenant; reaching here elsewhere is a bug, never a default.
        raise RuntimeError("no authenticated tenant for this request")
    return str(found)


def cursor_secret() -> CursorSecret:
    return current_app.extensions[EXTENSION]["cursor_secret"]  # type: ignore[no-any-return]
