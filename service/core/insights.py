"""Evaluating the insight rules over a tenant's daily counters: which conditions hold now.

A condition is (rule, direction, connector). The store turns the set of holding conditions
into insights: a new one for a condition that starts holding, ``resolved`` for one that stops.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

from service.core.connectors import Definitions, build_rows
from service.core.insight_rules import Rule
from service.core.tls import TLS_VERSIONS
from service.core.traces import FIELD_SEP

_INDEX = {v: i for i, v in enumerate(TLS_VERSIONS)}
DayCounts = Mapping[str, Sequence[tuple[str, int]]]  # day -> (counter field, messages)


@dataclass(frozen=True)
class Finding:
    """A rule's condition holding for one connector, with what was measured."""

    rule: Rule
    direction: str
    name: str
    connector_type: str | None
    start: date
    end: date
    messages: int
    matching: int
    details: tuple[tuple[str, int], ...] = ()  # further measurements, named (a rule's kind)

    @property
    def condition(self) -> str:
        return FIELD_SEP.join((self.rule.id, self.direction, self.name))

    def template(self) -> dict[str, Any]:
        """The insight document's fields that come from the rule and the measurement."""
        percent = round(100 * self.matching / self.messages, 1)
        return {
            "rule": self.rule.id,
            "title": self.rule.title,
            "severity": self.rule.severity,
            "direction": self.direction,
            "connector": {"name": self.name, "type": self.connector_type},
            "window": {"start": self.start.isoformat(), "end": self.end.isoformat()},
            "measured": {"messages": self.messages, "matching_messages": self.matching,
                         "percent": percent, **dict(self.details)},
            "threshold": {"min_percent": self.rule.min_percent,
                          "min_messages": self.rule.min_messages},
            "recommendation": self.rule.recommendation,
            "links": {"connector_report": f"/api/v1/connectors/{self.direction}/"
                      f"{quote(self.name, safe='')}?days={self.rule.window_days}"},
        }  # fmt: skip


def rule_days(rule: Rule, today: date) -> list[str]:
    return [(today - timedelta(days=back)).isoformat() for back in range(rule.window_days)]


def evaluate(
    rules: Iterable[Rule], day_counts: DayCounts, definitions: Definitions, today: date
) -> list[Finding]:
    """Every (rule, connector) whose condition holds over the rule's window ending ``today``.

    ``day_counts`` must hold every day of the longest rule window (missing days count as no
    mail). Mail without a connector is never the subject of a rule.
    """
    findings = []
    for rule in rules:
        if not rule.enabled or rule.kind != "versions":
            continue
        days = rule_days(rule, today)
        counts = [pair for day in days for pair in day_counts.get(day, ())]
        for row in build_rows(counts, definitions):
            if row.name is None or row.direction not in rule.directions:
                continue
            if row.type not in rule.connector_types or (
                rule.forced_tls_only and not row.forced_tls
            ):
                continue
            messages = sum(row.counts)
            matching = sum(row.counts[_INDEX[v]] for v in rule.metric)
            if rule.fires(messages, matching):
                findings.append(Finding(rule, row.direction, row.name, row.type,
                                        date.fromisoformat(days[-1]), today, messages,
                                        matching))  # fmt: skip
    return findings
