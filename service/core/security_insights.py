"""The transport security insight rules (docs/transit-security.md), over daily counters.

- ``classes``: over the rule's window a connector's mail of the classes in ``metric``
  (``encrypted``, ``none``: not authenticated) is at least ``min_percent`` of its messages and
  at least ``min_messages`` in number (as the version rules, by class).
- ``downgrade``: over the 14 UTC days before yesterday the connector carried at least
  ``min_messages`` messages, at least ``min_percent`` % of them authenticated (dane, mta-sts,
  authenticated), and today or yesterday it carried mail of the ``metric`` classes, or mail
  whose log recorded a downgrade.
- ``blocked``: today or yesterday at least ``min_messages`` of the connector's messages (the
  internet without a connector too) were blocked by a TLS policy, and at least
  ``min_percent`` % of its delivered plus blocked ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, timedelta
from decimal import Decimal

from service.core.blocked import blocked_by_connector
from service.core.connectors import INTERNET, ConnectorRow, Definitions, build_rows
from service.core.insight_rules import Rule
from service.core.insights import DayCounts, Finding
from service.core.traces import DOWNGRADED, FIELD_SEP
from service.core.transport_security import AUTHENTICATED_CLASSES, SECURITY_CLASSES

BASELINE_DAYS = 14
RECENT_DAYS = 2  # today and yesterday
BlockedDayCounts = Mapping[str, Mapping[str, int]]  # day -> blocked field -> messages


def _days(today: date, first_back: int, count: int) -> list[str]:
    return [(today - timedelta(days=back)).isoformat()
            for back in range(first_back, first_back + count)]  # fmt: skip


def _rows(day_counts: DayCounts, days: Iterable[str], definitions: Definitions,
          blocked: BlockedDayCounts | None = None) -> list[ConnectorRow]:  # fmt: skip
    counts = [pair for day in days for pair in day_counts.get(day, ())]
    per_connector = None
    if blocked is not None:
        per_connector = blocked_by_connector(blocked.get(day, {}) for day in days)
    return build_rows(counts, definitions, blocked=per_connector)


def _subject(rule: Rule, row: ConnectorRow) -> bool:
    """Whether the rule watches this row: its direction and type (the internet row is the
    type ``internet``), forced TLS if the rule asks."""
    if row.direction not in rule.directions:
        return False
    if (row.type if row.name is not None else "internet") not in rule.connector_types:
        return False
    return not rule.forced_tls_only or row.forced_tls


def _matching(rule: Rule, row: ConnectorRow) -> int:
    return sum(n for c, n in zip(SECURITY_CLASSES, row.classes, strict=True) if c in rule.metric)


def _unauthenticated(
    rule: Rule, day_counts: DayCounts, blocked: BlockedDayCounts, defs: Definitions, today: date
) -> list[Finding]:
    days = _days(today, 0, rule.window_days)
    findings = []
    for row in _rows(day_counts, days, defs):
        if row.name is None or not _subject(rule, row):
            continue
        messages, matching = sum(row.counts), _matching(rule, row)
        if rule.fires(messages, matching):
            findings.append(Finding(rule, row.direction, row.name, row.type,
                                    date.fromisoformat(days[-1]), today, messages, matching))  # fmt: skip
    return findings


def _downgraded(day_counts: DayCounts, days: Iterable[str]) -> dict[tuple[str, str], int]:
    """(direction, connector) -> messages whose log recorded a downgrade, over ``days``."""
    found: dict[tuple[str, str], int] = {}
    for day in days:
        for field, count in day_counts.get(day, ()):
            if field.endswith(DOWNGRADED):
                parts = field.split(FIELD_SEP)
                if len(parts) > 5 and parts[5] == DOWNGRADED:
                    key = (parts[0], parts[1])
                    found[key] = found.get(key, 0) + count
    return found


def _authenticated_before(rule: Rule, messages: int, authenticated: int) -> bool:
    """At least ``min_messages`` messages, ``min_percent`` % of them authenticated, exactly
    (unlike the other rules, the count threshold is on all the messages)."""
    if messages == 0 or messages < rule.min_messages:
        return False
    return Decimal(authenticated) * 100 >= Decimal(str(rule.min_percent)) * messages


def _downgrade(
    rule: Rule, day_counts: DayCounts, blocked: BlockedDayCounts, defs: Definitions, today: date
) -> list[Finding]:
    baseline_days = _days(today, RECENT_DAYS, BASELINE_DAYS)
    recent_days = _days(today, 0, RECENT_DAYS)
    baseline = {(r.direction, r.name): r for r in _rows(day_counts, baseline_days, defs)}
    downgraded = _downgraded(day_counts, recent_days)
    findings = []
    for row in _rows(day_counts, recent_days, defs):
        before = baseline.get((row.direction, row.name))
        if row.name is None or before is None or not _subject(rule, before):
            continue
        messages = sum(before.counts)
        authenticated = sum(n for c, n in zip(SECURITY_CLASSES, before.classes, strict=True)
                            if c in AUTHENTICATED_CLASSES)  # fmt: skip
        weak, logged = _matching(rule, row), downgraded.get((row.direction, row.name), 0)
        if (weak or logged) and _authenticated_before(rule, messages, authenticated):
            findings.append(Finding(
                rule, row.direction, row.name, before.type, date.fromisoformat(baseline_days[-1]),
                today, messages, authenticated,
                (("recent_messages", sum(row.counts)), ("recent_unauthenticated", weak),
                 ("recent_downgraded", logged)),
            ))  # fmt: skip
    return findings


def _blocked(
    rule: Rule, day_counts: DayCounts, blocked: BlockedDayCounts, defs: Definitions, today: date
) -> list[Finding]:
    days = _days(today, 0, min(rule.window_days, RECENT_DAYS))
    findings = []
    for row in _rows(day_counts, days, defs, blocked):
        if not row.blocked or not _subject(rule, row):
            continue
        messages = sum(row.counts) + row.blocked
        if rule.fires(messages, row.blocked):
            findings.append(Finding(rule, row.direction, row.name or INTERNET, row.type,
                                    date.fromisoformat(days[-1]), today, messages, row.blocked))  # fmt: skip
    return findings


_Evaluator = Callable[[Rule, DayCounts, BlockedDayCounts, Definitions, date], list[Finding]]
EVALUATORS: dict[str, _Evaluator] = {
    "classes": _unauthenticated,
    "downgrade": _downgrade,
    "blocked": _blocked,
}


def evaluate_security(
    rules: Iterable[Rule],
    day_counts: DayCounts,
    blocked: BlockedDayCounts,
    definitions: Definitions,
    today: date,
) -> list[Finding]:
    """Every (rule, connector) of the transport security rules whose condition holds today.
    ``day_counts`` must hold the longest rule window's days, ``blocked`` today's and
    yesterday's blocked counters."""
    findings = []
    for rule in rules:
        if rule.enabled and rule.kind in EVALUATORS:
            findings += EVALUATORS[rule.kind](rule, day_counts, blocked, definitions, today)
    return findings
