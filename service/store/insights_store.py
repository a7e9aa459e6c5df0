"""Insight state in Redis (the rules themselves live in service.core).

Per tenant: every insight's document (``keys.insights``), the open condition -> id map, the
feed (a sorted set of ids scored by the change sequence of their latest transition), the set
of active ids, and the tenant's rule settings. Transitions happen only in apply_insights.lua.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import redis

from service.core.insights import Finding
from service.store import keys
from service.store.scripts import script

# Findings applied per script call: each opens or refreshes one insight (a JSON document of
# about 1 kB decoded and encoded), so a tenant at its connector limit, whose every connector
# raises an insight, makes calls of a few milliseconds each.
FINDINGS_PER_CALL = 100


def count_active(client: redis.Redis, tenant: str) -> int:
    return int(client.scard(keys.active_insights(tenant)))


def apply_findings(
    client: redis.Redis,
    tenant: str,
    findings: Sequence[Finding],
    now: datetime,
    now_text: str,
    data_version: int,
    marker: str,
    retention_days: int,
) -> int:
    """Open, refresh and resolve insights to match ``findings``; the number of transitions
    (-1 if a newer evaluation of the tenant was stored meanwhile: this one is dropped).
    Resolved insights whose last transition is older than ``retention_days`` are forgotten.

    The findings are applied FINDINGS_PER_CALL at a time, then what no longer holds is resolved
    in one more call, so no call holds Redis long (see apply_insights.lua for how evaluations
    that overlap stay ordered)."""
    evaluation = Evaluation(client, tenant, now, now_text, data_version, marker, retention_days)
    transitions = 0
    for at in range(0, len(findings), FINDINGS_PER_CALL):
        opened = evaluation.hold(findings[at : at + FINDINGS_PER_CALL])
        if opened < 0:
            return -1
        transitions += opened
    closed = evaluation.close([finding.condition for finding in findings])
    return -1 if closed < 0 else transitions + closed


@dataclass(frozen=True)
class Evaluation:
    """One evaluation's calls of apply_insights.lua: ``hold`` per chunk of findings, then
    ``close`` once. Each returns its transitions, or -1 if a newer evaluation was stored."""

    client: redis.Redis
    tenant: str
    now: datetime
    now_text: str
    data_version: int
    marker: str
    retention_days: int

    def hold(self, findings: Sequence[Finding]) -> int:
        argv: list[object] = ["held", len(findings)]
        for finding in findings:
            argv += (finding.condition, uuid.uuid4().hex, orjson.dumps(finding.template()))
        return self._call(argv)

    def close(self, held_conditions: Sequence[str]) -> int:
        return self._call(["close", len(held_conditions), *held_conditions])

    def _call(self, phase: list[object]) -> int:
        tenant, now = self.tenant, self.now
        key_names = [keys.insights(tenant), keys.insight_open(tenant), keys.insight_feed(tenant),
                     keys.active_insights(tenant), keys.insight_sequence(tenant),
                     keys.insight_evaluated(tenant), keys.insight_active_feed(tenant),
                     keys.insight_resolved(tenant), keys.insight_held(tenant),
                keys.webhooks(tenant), keys.webhook_outbox(tenant)]  # fmt: skip
        argv = [self.now_text, int(now.timestamp() * 1000), self.data_version, self.marker,
                *phase, int((now - timedelta(days=self.retention_days)).timestamp() * 1000),
                keys.invalidation_channel()]  # fmt: skip
        return int(script(self.client, "apply_insights")(keys=key_names, args=argv))


def evaluation_marker(client: redis.Redis, tenant: str) -> tuple[str | None, int, int]:
    """(marker of the last evaluation, current data version, current rules version)."""
    pipe = client.pipeline(transaction=False)
    pipe.hget(keys.insight_evaluated(tenant), "marker")
    pipe.hmget(keys.meta(tenant), "version", "rules_version")
    marker, (version, rules_version) = pipe.execute()
    return (marker.decode() if marker else None, int(version or 0), int(rules_version or 0))


@dataclass(frozen=True)
class FeedPage:
    documents: list[dict[str, Any]]
    last_sequence: int
    more: bool


# The most feed entries one read looks at: a filter that matches little (``updated_after``, a
# state) makes the page shorter and the client follows ``next_cursor``, instead of one call
# holding Redis for the whole feed.
SCAN_PER_CALL = 2000


def read_feed(
    client: redis.Redis,
    tenant: str,
    after_sequence: int,
    limit: int,
    state: str | None,
    updated_after_ms: int | None,
) -> FeedPage:
    reply = script(client, "list_insights")(
        keys=[keys.insights(tenant), keys.insight_feed(tenant), keys.insight_active_feed(tenant),
              keys.insight_evaluated(tenant)],
        args=[after_sequence, limit, state or "", "" if updated_after_ms is None
              else updated_after_ms, max(SCAN_PER_CALL, limit + 1)],
    )  # fmt: skip
    last, more, *docs = reply
    return FeedPage([orjson.loads(d) for d in docs], int(last), bool(int(more)))


def newest_resolved(
    client: redis.Redis, tenant: str, limit: int
) -> tuple[list[dict[str, Any]], int] | None:
    """The ``limit`` most recently resolved insights, newest first, and how many resolved
    insights the tenant keeps; None while insights stored before the resolved index existed
    are still being indexed (the caller reads the feed instead).

    The resolved index is scored by the time of resolution, so this is one range read from its
    top, however long the tenant's history."""
    pipe = client.pipeline(transaction=False)
    pipe.hget(keys.insight_evaluated(tenant), "indexed")
    pipe.zrevrange(keys.insight_resolved(tenant), 0, limit - 1)
    pipe.zcard(keys.insight_resolved(tenant))
    indexed, ids, total = pipe.execute()
    if indexed != b"1":  # also a tenant never evaluated: its feed is empty, cheap to read
        return None
    raws = client.hmget(keys.insights(tenant), ids) if ids else []
    # Retention may forget one between the two reads: it is left out.
    documents = [orjson.loads(raw) for raw in raws if raw is not None]
    # Insights resolved by one evaluation share their time: the later transition first.
    documents.sort(key=lambda d: (d["updated_at_ms"], d["sequence"]), reverse=True)
    return [d for d in documents if d.get("state") == "resolved"], int(total)


def get_insight(client: redis.Redis, tenant: str, insight_id: str) -> dict[str, Any] | None:
    raw = client.hget(keys.insights(tenant), insight_id)
    return orjson.loads(raw) if raw is not None else None


def rule_settings(client: redis.Redis, tenant: str) -> dict[str, dict[str, Any]]:
    raw = client.hgetall(keys.insight_rules(tenant))
    return {k.decode(): orjson.loads(v) for k, v in raw.items()}


def put_rule_settings(
    client: redis.Redis, tenant: str, rule_id: str, settings: dict[str, Any]
) -> None:
    """Store a rule's settings and bump the rules version (the next evaluation re-runs)."""
    pipe = client.pipeline(transaction=True)
    pipe.hset(keys.insight_rules(tenant), rule_id, orjson.dumps(settings))
    pipe.hincrby(keys.meta(tenant), "rules_version", 1)
    pipe.execute()
