"""Evaluating a tenant's insight rules: read the counters, find what holds, store transitions.

Called by the worker after a refresh of a changed tenant (``refresh.refresh_tenant``), and
periodically for every tenant (``refresh.evaluate_all``) because time alone changes what holds:
at a UTC day rollover the oldest day leaves every rule's window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis

from service.core.connectors import unpack
from service.core.insight_rules import BUILT_IN, effective_rules
from service.core.insights import evaluate
from service.core.security_insights import RECENT_DAYS, evaluate_security
from service.core.timestamps import rfc3339
from service.core.tlsrpt_insights import evaluate_tlsrpt
from service.store import blocked, connectors_store, insights_store, tlsrpt_store

LONGEST_WINDOW_DAYS = max(rule.window_days for rule in BUILT_IN)


def marker_for(today: str, version: int, rules_version: int) -> str:
    """What an evaluation depended on: the day, the data version and the rule settings."""
    return f"{today}|{version}|{rules_version}"


def evaluate_tenant(
    client: redis.Redis, tenant: str, now: datetime, retention_days: int = 90
) -> int:
    """Evaluate every rule for ``tenant`` at ``now``; the number of insight transitions."""
    today = now.astimezone(UTC).date()
    _, _, rules_version = insights_store.evaluation_marker(client, tenant)
    rules = effective_rules(insights_store.rule_settings(client, tenant))
    days = [(today - timedelta(days=back)).isoformat() for back in range(LONGEST_WINDOW_DAYS)]
    counters = connectors_store.read_report_counters(client, tenant, days, "days")
    day_counts = {day: list(unpack(p)) for day, p in zip(days, counters.packed, strict=True)}
    findings = evaluate(rules, day_counts, counters.definitions, today)
    # What senders report (TLS-RPT) is judged in the same evaluation: one set of conditions.
    findings += evaluate_tlsrpt(rules, tlsrpt_store.read_days(client, tenant, days), today)
    blocked_days = blocked.read_blocked(client, tenant, days[:RECENT_DAYS]).days
    findings += evaluate_security(rules, day_counts, blocked_days, counters.definitions, today)
    marker = marker_for(today.isoformat(), counters.version, rules_version)
    return insights_store.apply_findings(
        client, tenant, findings, now, rfc3339(now), counters.version, marker, retention_days
    )


def is_due(client: redis.Redis, tenant: str, now: datetime) -> bool:
    """Whether anything the last evaluation depended on has changed (one round trip)."""
    marker, version, rules_version = insights_store.evaluation_marker(client, tenant)
    return is_due_given(marker, version, rules_version, now)


def is_due_given(marker: str | None, version: int, rules_version: int, now: datetime) -> bool:
    """``is_due`` from values already read (the worker's tenant check reads them at once)."""
    today = now.astimezone(UTC).date().isoformat()
    return marker != marker_for(today, version, rules_version)
