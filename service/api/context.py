"""What a request works with: the Redis client, the settings, the clock and the tenant."""

from __future__ import annotations

from datetime import datetime

import redis
from flask import current_app, g

from service.config import Settings

EXTENSION = "mailflow"


def client() -> redis.Redis:
    return current_app.extensions[EXTENSION]["redis"]


def settings() -> Settings:
    return current_app.extensions[EXTENSION]["settings"]


def now() -> datetime:
    return current_app.extensions[EXTENSION]["clock"]()


def tenant() -> str:
    """The tenant of this request. Until API keys exist every request is tenant ``default``."""
    return g.get("tenant", "default")
