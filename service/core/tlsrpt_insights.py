"""The TLS-RPT insight rules (``insight_rules.TLSRPT_RULES``) over a tenant's TLS-RPT daily
counters: which (rule, policy domain, result type) conditions hold.

Over the rule's window, for a policy domain: ``sessions`` are the reports' summaries
(successful + failed), ``matching`` the failed sessions of the failure details whose result
type the rule names. A condition holds when the domain has at least ``min_messages`` sessions
(for the failing-sessions rule) or matching sessions (for the rules of named result types), and
the matching sessions are at least ``min_percent`` % of the sessions. Each result type is its
own condition, so an insight says what failed, and resolves when that stops.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from service.core.insight_rules import TLSRPT_ANY_RESULT, TLSRPT_RULES, Rule
from service.core.insights import Finding, rule_days
from service.core.tlsrpt import KIND_FAILURE, KIND_RESULT, KIND_SUCCESS
from service.core.traces import FIELD_SEP

SOURCE = "tlsrpt"
_TLSRPT_IDS = frozenset(rule.id for rule in TLSRPT_RULES)


@dataclass(frozen=True)
class TlsRptFinding(Finding):
    """A TLS-RPT rule holding for one policy domain (``name``) and one result type."""

    result_type: str = ""

    @property
    def condition(self) -> str:
        return FIELD_SEP.join((self.rule.id, SOURCE, self.name, self.result_type))

    def template(self) -> dict[str, Any]:
        return {
            **super().template(),
            # The policy domain is the insight's subject where a connector's name would be.
            "connector": {"name": self.name, "type": None},
            "tlsrpt": {"policy_domain": self.name, "result_type": self.result_type},
            "links": {"tls_report": f"/api/v1/tls-reports/{quote(self.name, safe='')}"
                      f"?days={self.rule.window_days}"},
        }  # fmt: skip


def _holds(rule: Rule, sessions: int, matching: int) -> bool:
    if matching == 0:
        return False
    measured = sessions if rule.metric == (TLSRPT_ANY_RESULT,) else matching
    if measured < rule.min_messages:
        return False
    # Failure details may name more failed sessions than the summary (reporters differ):
    # the share is then of the larger of the two, never above 100 %.
    return Decimal(matching) * 100 >= Decimal(str(rule.min_percent)) * max(sessions, matching)


def evaluate_tlsrpt(
    rules: Iterable[Rule], days: Mapping[str, Mapping[str, int]], today: date
) -> list[TlsRptFinding]:
    """Every TLS-RPT condition that holds over each rule's window ending ``today``."""
    findings: list[TlsRptFinding] = []
    for rule in rules:
        if rule.id not in _TLSRPT_IDS or not rule.enabled:
            continue
        window = rule_days(rule, today)
        sessions: dict[str, int] = {}
        failed: dict[tuple[str, str], int] = {}
        for day in window:
            for field, count in days.get(day, {}).items():
                kind, domain, *rest = field.split(FIELD_SEP)
                if kind in (KIND_SUCCESS, KIND_FAILURE):
                    sessions[domain] = sessions.get(domain, 0) + count
                elif kind == KIND_RESULT and (rule.metric == (TLSRPT_ANY_RESULT,)
                                              or rest[0] in rule.metric):  # fmt: skip
                    failed[(domain, rest[0])] = failed.get((domain, rest[0]), 0) + count
        for (domain, result_type), matching in sorted(failed.items()):
            total = sessions.get(domain, 0)
            if _holds(rule, total, matching):
                findings.append(TlsRptFinding(
                    rule, "inbound", domain, None, today - timedelta(days=rule.window_days - 1),
                    today, max(total, matching), matching, result_type=result_type,
                ))  # fmt: skip
    return findings
