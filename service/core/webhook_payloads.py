"""The bodies of webhook deliveries, in each format a subscription may choose.

Every delivery starts as a *standard* event, ``{"type", "timestamp", "data"}`` (the envelope
Standard Webhooks recommends), where ``data`` is the insight exactly as the feed returns it
(``insight.detected`` / ``insight.resolved``), a ping (``webhook.ping``) or a digest of the
events over a subscription's daily cap (``insight.digest``). The other formats render that
event for a receiver that cannot be taught ours:

- ``slack``: a message of Block Kit blocks for a Slack incoming webhook;
- ``teams``: an Adaptive Card in the message envelope a Teams Workflows webhook takes;
- ``alertmanager``: Alertmanager's webhook payload (version 4), so anything that routes
  Alertmanager notifications routes ours; the fingerprint is stable per insight.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

FORMATS = ("standard", "slack", "teams", "alertmanager")
INSIGHT_EVENTS = ("insight.detected", "insight.resolved")
PING = "webhook.ping"
DIGEST = "insight.digest"
# Alertmanager's "not ended" time, as it sends it for a firing alert.
NOT_ENDED = "0001-01-01T00:00:00Z"
SLACK_HEADER_MAX = 150  # Block Kit: a header's plain_text
SLACK_TEXT_MAX = 3000  # Block Kit: a section's text
SLACK_FIELD_MAX = 2000  # Block Kit: each of a section's at most 10 fields


def event(kind: str, timestamp: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "timestamp": timestamp, "data": data}


def render(fmt: str, envelope: dict[str, Any], base_url: str) -> bytes:
    """The body of a delivery of ``envelope`` (a standard event) in format ``fmt``."""
    if fmt == "slack":
        body = slack(envelope)
    elif fmt == "teams":
        body = teams(envelope, base_url)
    elif fmt == "alertmanager":
        body = alertmanager(envelope, base_url)
    else:
        body = envelope
    return orjson.dumps(body)


# -- what every rendering says ------------------------------------------------------------------


def _headline(envelope: dict[str, Any]) -> str:
    kind, data = envelope["type"], envelope["data"]
    if kind == PING:
        return "mailflow webhook test"
    if kind == DIGEST:
        return f"mailflow: {data['count']} more insight events today (daily cap reached)"
    state = "Resolved" if kind == "insight.resolved" else "Detected"
    return f"{state}: {data.get('title') or data.get('rule')}"


def _facts(envelope: dict[str, Any]) -> list[tuple[str, str]]:
    kind, data = envelope["type"], envelope["data"]
    if kind == PING:
        return [("Subscription", str(data.get("subscription_id"))), ("Sent", envelope["timestamp"])]
    if kind == DIGEST:
        return [("Events held back", str(data["count"])), ("Day", str(data["day"]))]
    connector = data.get("connector") or {}
    measured = data.get("measured") or {}
    facts = [("Rule", str(data.get("rule"))), ("Severity", str(data.get("severity"))),
             ("Direction", str(data.get("direction"))),
             ("Connector", f"{connector.get('name')} ({connector.get('type')})")]  # fmt: skip
    if "percent" in measured:
        facts.append(("Measured", f"{measured['percent']} % of {measured.get('messages')} "
                                  "messages"))  # fmt: skip
    facts.append(("Detected", str(data.get("first_detected_at"))))
    if data.get("resolved_at"):
        facts.append(("Resolved", str(data["resolved_at"])))
    return facts


def _link(envelope: dict[str, Any], base_url: str) -> str | None:
    data = envelope["data"]
    if envelope["type"] in INSIGHT_EVENTS and base_url:
        return f"{base_url.rstrip('/')}/api/v1/insights/{data['id']}"
    return None


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- Slack ----------------------------------------------------------------------------------------


def slack(envelope: dict[str, Any]) -> dict[str, Any]:
    headline = _headline(envelope)
    fields = [{"type": "mrkdwn", "text": _cut(f"*{name}*\n{value}", SLACK_FIELD_MAX)}
              for name, value in _facts(envelope)[:10]]  # fmt: skip
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _cut(headline, SLACK_HEADER_MAX)},
        },
        {"type": "section", "fields": fields},
    ]
    recommendation = envelope["data"].get("recommendation")
    if recommendation:
        blocks.append({"type": "section",
                       "text": {"type": "mrkdwn", "text": _cut(str(recommendation),
                                                               SLACK_TEXT_MAX)}})  # fmt: skip
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"mailflow · {envelope['type']} · {envelope['timestamp']}"}
    ]})  # fmt: skip
    return {"text": headline, "blocks": blocks}


# -- Teams ----------------------------------------------------------------------------------------


def teams(envelope: dict[str, Any], base_url: str) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": _headline(envelope), "weight": "Bolder", "size": "Medium",
         "wrap": True},
        {"type": "FactSet", "facts": [{"title": n, "value": v} for n, v in _facts(envelope)]},
    ]  # fmt: skip
    recommendation = envelope["data"].get("recommendation")
    if recommendation:
        body.append({"type": "TextBlock", "text": str(recommendation), "wrap": True})
    card: dict[str, Any] = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                            "type": "AdaptiveCard", "version": "1.4", "body": body}  # fmt: skip
    link = _link(envelope, base_url)
    if link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open the insight", "url": link}]
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
         "content": card},
    ]}  # fmt: skip


# -- Alertmanager ---------------------------------------------------------------------------------


def fingerprint(insight_id: str) -> str:
    """Stable per insight: its detection and its resolution are one alert to a receiver."""
    return hashlib.sha256(insight_id.encode()).hexdigest()[:16]


def alertmanager(envelope: dict[str, Any], base_url: str) -> dict[str, Any]:
    kind, data = envelope["type"], envelope["data"]
    if kind in INSIGHT_EVENTS:
        connector = data.get("connector") or {}
        labels = {"alertname": str(data.get("rule")), "severity": str(data.get("severity")),
                  "direction": str(data.get("direction")),
                  "connector": str(connector.get("name")),
                  "connector_type": str(connector.get("type")), "insight_id": str(data["id"]),
                  "service": "mailflow"}  # fmt: skip
        status = "resolved" if kind == "insight.resolved" else "firing"
        starts, ends = str(data.get("first_detected_at")), data.get("resolved_at") or NOT_ENDED
        key = str(data["id"])
        annotations = {"summary": str(data.get("title")),
                       "description": str(data.get("recommendation") or "")}  # fmt: skip
    else:
        labels = {"alertname": "mailflow-" + kind.replace(".", "-"), "service": "mailflow"}
        # A ping or a digest is news, not a condition: sent resolved, it opens no incident.
        status, starts, ends = "resolved", envelope["timestamp"], envelope["timestamp"]
        key = f"{kind}:{envelope['timestamp']}"
        annotations = {"summary": _headline(envelope)}
    alert = {"status": status, "labels": labels, "annotations": annotations, "startsAt": starts,
             "endsAt": ends, "generatorURL": _link(envelope, base_url) or base_url,
             "fingerprint": fingerprint(key)}  # fmt: skip
    group = {"alertname": labels["alertname"]}
    group_key = "{}:{" + ", ".join(f'{k}="{v}"' for k, v in group.items()) + "}"
    return {"version": "4", "groupKey": group_key, "truncatedAlerts": 0, "status": status,
            "receiver": "mailflow", "groupLabels": group, "commonLabels": labels,
            "commonAnnotations": annotations, "externalURL": base_url,
            "alerts": [alert]}  # fmt: skip
