"""The insight rules whose subject is a remote domain or an SMTP AUTH user (docs/domains.md).

Evaluated over the rows of the 7-day per-domain and SMTP AUTH client reports (which the worker
keeps built), with the same thresholds and lifecycle as the connector rules. The special rows
(``(other domains)``, ``(unknown)``, ``(other users)``) are never a subject. At most
``MAX_FINDINGS_PER_RULE`` subjects per rule and direction are reported, the most matching
messages first: an insight is for a person to act on, and 20,000 of them would not be.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

from service.core.insight_rules import Rule
from service.core.insights import Finding
from service.core.tls import TLS_VERSIONS
from service.core.who import AUTH_USERS, DOMAINS, OTHER, UNKNOWN
from service.core.who_report import WhoRow

MAX_FINDINGS_PER_RULE = 100
_INDEX = {v: i for i, v in enumerate(TLS_VERSIONS)}
SUBJECT_KINDS = {"domain": DOMAINS, "auth_user": AUTH_USERS}
_REPORTS = {"domain": "domains", "auth_user": "auth-clients"}


@dataclass(frozen=True)
class WhoFinding(Finding):
    """A rule's condition holding for one domain or user."""

    subject: str = "domain"

    def template(self) -> dict[str, Any]:
        document = super().template()
        document["connector"] = None
        document["subject"] = {"kind": self.subject, "name": self.name}
        report = _REPORTS[self.subject]
        document["links"] = {f"{report}_report": f"/api/v1/{report}/{self.direction}/"
                             f"{quote(self.name, safe='@')}?days={self.rule.window_days}"}  # fmt: skip
        return document


def evaluate_who(
    rules: Iterable[Rule], rows: Mapping[str, Sequence[WhoRow]], today: date
) -> list[WhoFinding]:
    """Every (rule, direction, name) holding over the rule's window; ``rows`` are the report
    rows of that window by kind name (``domains``, ``auth``)."""
    findings: list[WhoFinding] = []
    for rule in rules:
        kind = SUBJECT_KINDS.get(rule.subject)
        if kind is None or not rule.enabled:
            continue
        start = today - timedelta(days=rule.window_days - 1)
        held = []
        for row in rows.get(kind.name, ()):
            if row.name in (OTHER, UNKNOWN) or row.direction not in rule.directions:
                continue
            messages = sum(row.counts)
            matching = sum(row.counts[_INDEX[v]] for v in rule.metric)
            if rule.fires(messages, matching):
                held.append(WhoFinding(rule, row.direction, row.name, None, start, today,
                                       messages, matching, subject=rule.subject))  # fmt: skip
        for direction in rule.directions:
            mine = [f for f in held if f.direction == direction]
            mine.sort(key=lambda f: (-f.matching, f.name))
            findings += mine[:MAX_FINDINGS_PER_RULE]
    return findings
