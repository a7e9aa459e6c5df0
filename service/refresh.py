"""What the worker does for a tenant whose data changed: rebuild its precomputed views."""

from __future__ import annotations

from datetime import datetime

import redis

from service import views
from service.config import Settings


def refresh_tenant(client: redis.Redis, tenant: str, now: datetime, settings: Settings) -> int:
    """Rebuild the tenant's precomputed views; the number of views stored."""
    return views.refresh_precomputed(client, tenant, now)
