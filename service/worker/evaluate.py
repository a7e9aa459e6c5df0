"""Evaluating a tenant's insight rules: read the counters, find what holds, store transitions.

Called by the worker after a refresh of a changed tenant (``refresh.refresh_tenant``), and
periodically for every tenant (``refresh.evaluate_all``) because time alone changes what holds:
at a UTC day rollover the oldest day leaves every rule's window.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import redis

from service.core.connectors import unpack
from service.core.insight_rules import BUILT_IN, Rule, effective_rules
from service.core.insights import evaluate
from service.core.local_days import today_of
from service.core.security_insights import RECENT_DAYS, evaluate_security
from service.core.timestamps import rfc3339
from service.core.tlsrpt_insights import evaluate_tlsrpt
from service.core.who import KINDS
from service.core.who_insights import SUBJECT_KINDS, WhoFinding, evaluate_who
from service.core.windows import Window
from service.reports import who_rows
from service.reports.view_cache import PRECOMPUTED_TTL_SECONDS, is_precomputed
from service.store import blocked, connectors_store, insights_store, tlsrpt_store
from service.store.views import put_view

LONGEST_WINDOW_DAYS = max(rule.window_days for rule in BUILT_IN)


def marker_for(today: str, version: int, rules_version: int) -> str:
    """What an evaluation depended on: the day, the data version and the rule settings."""
    return f"{today}|{version}|{rules_version}"


def evaluate_tenant(
    client: redis.Redis, tenant: str, now: datetime, retention_days: int = 90
) -> int:
    """Evaluate every rule for ``tenant`` at ``now``; the number of insight transitions.
    ``now`` is the tenant's clock (``local_days.tenant_now``): its today ends every window."""
    today = today_of(now)
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
    findings += who_findings(client, tenant, rules, now)
    marker = marker_for(today.isoformat(), counters.version, rules_version)
    return insights_store.apply_findings(
        client, tenant, findings, now, rfc3339(now), counters.version, marker, retention_days
    )


def who_findings(
    client: redis.Redis, tenant: str, rules: list[Rule], now: datetime
) -> list[WhoFinding]:
    """The findings of the rules about domains and users, over the rows of their reports'
    window, of the current data version: the precomputed views may still be of the version
    before (they are rebuilt after the evaluation), and an insight must not lag. A window the
    worker keeps built is stored as such, so its rebuild just after finds it done."""
    today = today_of(now)
    rows = {}
    for kind in KINDS:
        days = max((r.window_days for r in rules if SUBJECT_KINDS.get(r.subject) is kind),
                   default=0)  # fmt: skip
        if days:
            window = Window(today - timedelta(days=days - 1), today)
            (view, version), rows[kind.name] = who_rows.fresh_rows(client, tenant, kind,
                                                                   window)  # fmt: skip
            if is_precomputed(kind.name, window, today):
                put_view(client, tenant, kind.name, (window.start.isoformat(), today.isoformat()),
                         view, version, PRECOMPUTED_TTL_SECONDS)  # fmt: skip
    return evaluate_who(rules, rows, today)


def is_due(client: redis.Redis, tenant: str, now: datetime) -> bool:
    """Whether anything the last evaluation depended on has changed (one round trip)."""
    marker, version, rules_version = insights_store.evaluation_marker(client, tenant)
    return is_due_given(marker, version, rules_version, now)


def settings_or_day_changed(marker: str | None, rules_version: int, now: datetime) -> bool:
    """Whether the last evaluation was on another day or with other rule settings (not only
    with other data): what the worker evaluates at once even when a rebuild waits. ``now`` is
    the tenant's clock (``tenant_now``), so its local midnight is its new day."""
    today = today_of(now).isoformat()
    day, _, rest = (marker or "").partition("|")
    return day != today or rest.rpartition("|")[2] != str(rules_version)


def is_due_given(marker: str | None, version: int, rules_version: int, now: datetime) -> bool:
    """``is_due`` from values already read (the worker's tenant check reads them at once);
    ``now`` is the tenant's clock, so its local midnight makes an evaluation due."""
    today = today_of(now).isoformat()
    return marker != marker_for(today, version, rules_version)
