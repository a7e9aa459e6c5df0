"""What a request works with: the app's state (Redis client, settings, clock, …) and the tenant."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo

import redis
from apispec import APISpec
from flask import Flask, current_app, g

from service.config import Settings
from service.core import local_days
from service.store import tenant_zone
from service.store.cursor_secret import CursorSecret
from service.store.near_cache import NearCache
from service.store.rate_counters import RateLeases

EXTENSION = "mailflow"


@dataclass
class AppState:
    """One app's shared state, made by ``create_app`` and kept in ``app.extensions``."""

    settings: Settings
    clock: Callable[[], datetime]
    client: redis.Redis
    rate_leases: RateLeases
    near_cache: NearCache | None  # None on a cluster client, or when switched off
    cursor_secret: CursorSecret
    # The Redis data instance readiness first found ready: a later instance is other data.
    served_instance: str | None = None
    # The API's OpenAPI document, for `mailflow openapi` (set once every blueprint is in).
    openapi: APISpec | None = None
    # The store was found of the current format once: it never goes back (see store_format).
    store_format_current: bool = False


def state_of(app: Flask) -> AppState:
    """``app``'s state; usable outside a request (WSGI middleware, gunicorn hooks)."""
    found = app.extensions[EXTENSION]
    if not isinstance(found, AppState):
        raise RuntimeError("the app was not made by service.app.create_app")
    return found


def app_state() -> AppState:
    """The state of the app handling this request."""
    return state_of(current_app)


def client() -> redis.Redis:
    return app_state().client


def settings() -> Settings:
    return app_state().settings


def now() -> datetime:
    return app_state().clock()


def tenant() -> str:
    """The tenant of this request: the tenant of its API key, set by ``service.web.auth``."""
    found = g.get("tenant")
    if found is None:
        # Only /api/v1 requests have a tenant; reaching here elsewhere is a bug, never a default.
        raise RuntimeError("no authenticated tenant for this request")
    return str(found)


def cursor_secret() -> CursorSecret:
    return app_state().cursor_secret


def tenant_now() -> datetime:
    """The clock as the request's tenant sees it: the same instant in its time zone, so that
    "today" and every window are its local days (service.core.local_days)."""
    return local_days.tenant_now(now(), tenant_zone.zone_of(client(), tenant()))


def tenant_zone_info() -> tzinfo:
    """The request's tenant's time zone."""
    return tenant_zone.zone_of(client(), tenant())
