"""Changing a rule's settings: what the API's PUT and the dashboard's form both do, in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis

from service.core.insight_rules import RULES
from service.store import insights_store, worker_signals


def change_rule_settings(
    client: redis.Redis, tenant: str, rule_id: str, settings: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Merge ``settings`` (validated; omitted ones keep their value) over the rule's defaults
    and the tenant's current settings of it, store them and ask the worker to evaluate the
    tenant again; every rule's settings of the tenant after the change. ``rule_id`` must be a
    rule of RULES (the callers answer 404 otherwise)."""
    overrides = insights_store.rule_settings(client, tenant)
    merged = {**RULES[rule_id].settings(), **overrides.get(rule_id, {}), **settings}
    insights_store.put_rule_settings(client, tenant, rule_id, merged)
    worker_signals.request_evaluation(client, tenant)
    return {**overrides, rule_id: merged}
