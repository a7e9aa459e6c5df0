"""What the worker does for a tenant: evaluate its insight rules, rebuild its precomputed views.

Both run under the tenant's refresh lease (``keys.refresh_lease``), so two workers never
evaluate one tenant at once; apply_insights.lua also drops an evaluation older than the one
stored, as a second line of defence.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from datetime import UTC, datetime, timedelta, tzinfo

import redis

from service.config import Settings
from service.core.local_days import tenant_now, today_of
from service.core.windows import Window
from service.reports import precompute
from service.store import aggregates, refresh_lease, window_sums, worker_signals
from service.telemetry.metrics import METRICS
from service.worker import evaluate

EVALUATE_EVERY_SECONDS = 60.0  # the worker calls evaluate_all this often (so within a minute
# of a tenant's local midnight), and at each UTC day


def refresh_tenant(
    client: redis.Redis, tenant: str, now: datetime, settings: Settings, zone: tzinfo = UTC
) -> int:
    """Evaluate the tenant's insights, then rebuild its precomputed views (which show the
    active-insight count) and the cached sums of the retention window; the number of views
    stored. The caller holds the refresh lease. Days are the tenant's local days (``zone``)."""
    now = tenant_now(now, zone)
    # Read before building, so the views include at least this version; a fold meanwhile
    # leaves them marked behind, and the next check rebuilds them again.
    version = aggregates.data_version(client, tenant)
    with METRICS.timer("mailflow_insight_evaluation_duration_seconds"):
        evaluate.evaluate_tenant(client, tenant, now, settings.retention_days)
    with METRICS.timer("mailflow_view_build_duration_seconds"):
        built = precompute.refresh_precomputed(client, tenant, now)
        # Keep the cached sums of the longest window current, so that a report request never
        # pays for summing a history (after an upgrade, or mail for a past day) itself.
        today = today_of(now)
        window_sums.read_window_sum(
            client, tenant, Window(today - timedelta(days=settings.retention_days - 1), today)
        )
    worker_signals.record_views_built(client, tenant, version)
    return built


def evaluate_tenant_now(
    client: redis.Redis, tenant: str, now: datetime, settings: Settings, zone: tzinfo = UTC
) -> int:
    """Evaluate one tenant (the caller holds its lease); its snapshot views are rebuilt only
    when an insight changed (they show the active count). The number of transitions. The
    other views follow the data, rebuilt by the worker's refresh (in slices where big)."""
    now = tenant_now(now, zone)
    changed = evaluate.evaluate_tenant(client, tenant, now, settings.retention_days)
    if changed > 0:
        precompute.refresh_precomputed(client, tenant, now, only="snapshot")
    return max(changed, 0)


def evaluate_all(
    client: redis.Redis,
    now: datetime,
    settings: Settings,
    holder: str,
    zone_of: Callable[[str], tzinfo] | None = None,
    refreshing: Container[str] = (),
) -> int:
    """Re-evaluate every tenant whose evaluation is out of date (a new UTC day, new data or new
    rule settings), each under its refresh lease; the number of insight transitions.

    Cheap when nothing changed: one round trip per tenant. The worker calls this every
    EVALUATE_EVERY_SECONDS and at each UTC day, so time passing resolves insights too. A
    tenant whose lease another worker holds is marked to be checked again shortly. Tenants
    ``refreshing`` (changed, with a rebuild of their views pending in this worker, which
    evaluates them too) are left to it: their rebuild may be in slices, and evaluating them
    here would build their per-name rows in one go. ``zone_of`` gives each tenant's time zone
    (default UTC): its local midnight is its new day.
    """
    transitions = 0
    for tenant in worker_signals.all_tenants(client):
        if tenant in refreshing:
            continue
        zone = zone_of(tenant) if zone_of is not None else UTC
        if not evaluate.is_due(client, tenant, tenant_now(now, zone)):
            continue
        if not refresh_lease.take(client, tenant, holder, settings.refresh_seconds):
            due_ms = int((now.timestamp() + settings.refresh_seconds) * 1000)
            worker_signals.request_check(client, tenant, due_ms)
            continue
        try:
            transitions += evaluate_tenant_now(client, tenant, now, settings, zone)
        finally:
            refresh_lease.release(client, tenant, holder)
    return transitions
