"""Delivery rules of webhooks, as plain functions: which subscription an event goes to, what an
answer means, and when to try again.

- 2xx: delivered. 3xx: refused (redirects are never followed: the new address was not checked).
- 408, 429 and 5xx, and no answer at all (timeout, connection refused): tried again, with
  exponential backoff and jitter, after at least the answer's ``Retry-After``, for
  MAILFLOW_WEBHOOK_RETRY_DAYS; then the delivery has failed and its subscription is disabled.
- 410 Gone: the receiver is gone for good: failed, and the subscription disabled at once.
- Any other 4xx: failed, not tried again (the same request would be refused again).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

FIRST_RETRY_SECONDS = 5.0
MAX_RETRY_SECONDS = 3600.0  # the longest wait between two attempts (before Retry-After)
MAX_RETRY_AFTER_SECONDS = 86400.0  # a receiver's Retry-After is honoured up to a day
DELIVERED, RETRY, FAILED, GONE = "delivered", "retry", "failed", "gone"


def matches(subscription: dict[str, Any], kind: str, insight: dict[str, Any]) -> bool:
    """Whether an insight event goes to ``subscription`` (enabled, the event, the filter)."""
    if not subscription.get("enabled") or kind not in subscription.get("events", ()):
        return False
    wanted = subscription.get("filter") or {}
    connector = (insight.get("connector") or {}).get("name")
    for name, value in (("rules", insight.get("rule")), ("severities", insight.get("severity")),
                        ("connectors", connector)):  # fmt: skip
        allowed = wanted.get(name)
        if allowed and value not in allowed:
            return False
    return True


def outcome(status: int | None) -> str:
    """What an answer means (None: no answer): DELIVERED, RETRY, FAILED or GONE."""
    if status is None or status in (408, 429) or status >= 500:
        return RETRY
    if 200 <= status < 300:
        return DELIVERED
    return GONE if status == 410 else FAILED


def retry_after_seconds(header: str | None, now: datetime) -> float | None:
    """A Retry-After header's wait (seconds, or an HTTP date), bounded; None if absent/bad."""
    if not header:
        return None
    text = header.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER_SECONDS)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER_SECONDS)


def backoff_seconds(failures: int, rng: random.Random) -> float:
    """The wait after the ``failures``-th failed attempt: doubling from 5 s to an hour, with
    "equal jitter" (half fixed, half random) so receivers coming back are not hit at once."""
    ceiling = min(FIRST_RETRY_SECONDS * 2 ** max(failures - 1, 0), MAX_RETRY_SECONDS)
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


@dataclass(frozen=True)
class NextStep:
    """What follows an attempt: the delivery's new status and, to retry, when."""

    status: str  # delivered | pending | failed
    retry_at_ms: int | None = None
    disable: str | None = None  # why the subscription is disabled, if it is


def next_step(
    answer: str,
    failures: int,
    created_ms: int,
    now_ms: int,
    retry_days: float,
    retry_after: float | None,
    rng: random.Random,
) -> NextStep:
    """After an attempt with ``answer`` (``outcome``), the ``failures``-th failure so far."""
    if answer == DELIVERED:
        return NextStep("delivered")
    if answer == GONE:
        return NextStep("failed", disable="the receiver answered 410 Gone")
    if answer == FAILED:
        return NextStep("failed")
    wait = backoff_seconds(failures, rng)
    if retry_after is not None:
        wait = max(wait, retry_after)
    retry_at = now_ms + int(wait * 1000)
    if retry_at > created_ms + int(retry_days * 86400 * 1000):
        return NextStep("failed", disable=f"deliveries failed for {retry_days:g} days")
    return NextStep("pending", retry_at)


def new_delivery(
    delivery_id: str, subscription_id: str, envelope: dict[str, Any], now_text: str, now_ms: int
) -> dict[str, Any]:
    """The record of a delivery not yet attempted (``envelope``: the standard event)."""
    return {"id": delivery_id, "subscription_id": subscription_id, "event": envelope["type"],
            "envelope": envelope, "status": "pending", "created_at": now_text,
            "created_ms": now_ms, "attempt_count": 0, "attempts": [],
            "next_attempt_at": now_text, "last_status_code": None,
            "latency_ms": None}  # fmt: skip


DISABLED_RULE = "webhook-disabled"


def disabled_insight(
    insight_id: str,
    subscription: dict[str, Any],
    record: dict[str, Any],
    reason: str,
    now_text: str,
) -> dict[str, Any]:
    """The insight that says mailflow disabled a subscription, shaped like a rule's (so every
    reader of the feed shows it): the failed delivery's attempts as the measurement."""
    sub = subscription["id"]
    attempts = int(record["attempt_count"])
    return {"id": insight_id, "rule": DISABLED_RULE, "title": "Webhook disabled after failed "
            "deliveries", "severity": "high", "state": "active", "direction": "outbound",
            "connector": {"name": None, "type": None},
            "window": {"start": str(record["created_at"])[:10], "end": now_text[:10]},
            "measured": {"messages": attempts, "matching_messages": attempts, "percent": 100.0},
            "threshold": {"min_percent": 100.0, "min_messages": 1},
            "first_detected_at": now_text, "last_detected_at": now_text, "resolved_at": None,
            "updated_at": now_text,
            "recommendation": f"mailflow stopped sending to webhook {sub} ({reason}). Check the "
            "receiver, then enable the webhook again (PATCH {\"enabled\": true}): what was "
            "queued for it is sent in order.",
            "links": {"webhook": f"/api/v1/webhooks/{sub}",
                      "deliveries": f"/api/v1/webhooks/{sub}/deliveries"},
            "webhook_id": sub}  # fmt: skip
