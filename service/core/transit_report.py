"""The Transit security report: Microsoft's *Outbound messages in Transit Security*, for any MTA.

Three sections over a window, per direction (Microsoft's is outbound; both are here):
- ``sent``: messages per transport security class per UTC day;
- ``blocked``: messages blocked by a TLS policy, per recipient domain and policy, with the
  distinct errors logged;
- ``no_tls_offered``: per recipient domain, the outbound messages delivered without TLS (from
  the per-domain counters, docs/domains.md) and, apart, the blocked messages whose error says
  the server did not offer TLS (STARTTLS): the domains to talk to.

The per-domain counters are kept ``MAILFLOW_DOMAIN_RETENTION_DAYS``, often less than the
window: ``domain_coverage`` says which of the window's days the delivered counts cover.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any

from service.core.blocked import BlockedDays, blocked_by_domain
from service.core.snapshot import security_breakdown
from service.core.tls import TLS_VERSIONS
from service.core.tls_report import CLASS_PREFIX, DailyTls
from service.core.traces import OTHER as BLOCKED_OTHER
from service.core.traces import split_blocked_field
from service.core.transport_security import SECURITY_CLASSES
from service.core.who import DOMAINS, OTHER, UNKNOWN
from service.core.who_report import WhoRow
from service.core.windows import Window

MAX_ERRORS = 20  # distinct errors listed per blocked row; ``errors_total`` counts them all
# What MTAs log when the server did not offer STARTTLS: Postfix "TLS is required, but was not
# offered by host ...", Exim "a TLS session is required, but the server did not offer TLS",
# and the common "STARTTLS not offered" / "does not support STARTTLS".
_NOT_OFFERED = re.compile(
    r"not offered|did not offer|not advertised|does not support starttls|no starttls",
    re.IGNORECASE,
)


def not_offered(reason: str) -> bool:
    """Whether a blocked message's error says the server did not offer TLS."""
    return _NOT_OFFERED.search(reason) is not None


def domain_coverage(window: Window, today: date, retention_days: int) -> Window | None:
    """The days of ``window`` the per-domain counters are kept for (the last
    ``retention_days`` up to ``today``, as the domain report allows); None: none of them."""
    start = max(window.start, today - timedelta(days=retention_days - 1))
    return Window(start, window.end) if start <= window.end else None


def coverage_document(window: Window, covered: Window | None, retention_days: int) -> Any:
    """What the response says of the delivered counts' days: ``complete`` when they are the
    whole window."""
    return {"start": covered.start.isoformat() if covered else None,
            "end": covered.end.isoformat() if covered else None,
            "days": len(covered.days) if covered else 0,
            "complete": covered == window, "domain_retention_days": retention_days}  # fmt: skip


_NO_TLS = TLS_VERSIONS.index("none")
# A row's kind: a domain, mail of the domains past the day's limit (the per-domain counters'
# ``(other domains)``, the blocked counters' ``(other)``), or mail naming no domain.
_ROW_KINDS = {OTHER: "other", BLOCKED_OTHER: "other", UNKNOWN: "unknown"}


def _blocked_not_offered(
    blocked: BlockedDays, days: Iterable[str], direction: str
) -> dict[str, int]:
    domains: dict[str, int] = {}
    for day in days:
        for field, count in blocked.get(day, {}).items():
            sent_direction, _, _, _, domain, reason = split_blocked_field(field)
            if sent_direction == direction and not_offered(reason):
                domains[domain] = domains.get(domain, 0) + count
    return domains


def _no_tls_offered(
    blocked: BlockedDays, days: Iterable[str], direction: str, rows: Sequence[WhoRow] | None
) -> list[Any]:
    """One row per recipient domain: messages delivered without TLS (``rows``, the outbound
    per-domain rows; None for inbound, whose per-domain counters are by sender domain) and
    messages blocked because its server did not offer TLS. A blocked message without a
    domain and the ``(unknown)`` row are both the domain null."""
    delivered: dict[str, int] = {}
    for row in rows or ():
        if row.direction == direction and row.counts[_NO_TLS]:
            delivered[row.name] = row.counts[_NO_TLS]
    refused = _blocked_not_offered(blocked, days, direction)
    listed: list[dict[str, Any]] = []
    for name in delivered.keys() | refused.keys():
        listed.append({
            "recipient_domain": DOMAINS.other_label if name == OTHER else name or None,
            "row": _ROW_KINDS.get(name, "domain"),
            "delivered_without_tls": delivered.get(name, 0) if rows is not None else None,
            "blocked_not_offered": refused.get(name, 0),
        })  # fmt: skip
    listed.sort(key=lambda r: (-(r["delivered_without_tls"] or 0), -r["blocked_not_offered"],
                               r["recipient_domain"] or ""))  # fmt: skip
    return listed


def build_transit_report(
    daily: DailyTls,
    blocked: BlockedDays,
    window: Window,
    directions: tuple[str, ...],
    generated_at: str,
    data_as_of: str | None,
    domain_rows: Sequence[WhoRow] = (),
    coverage: Any = None,
) -> dict[str, Any]:
    """``domain_rows``: the per-domain rows over the days ``coverage`` describes."""
    days = window.days
    by_domain = blocked_by_domain(blocked, days)
    sections: dict[str, Any] = {}
    for direction in directions:
        sent = []
        for day in days:
            sums = daily.get(day, {})
            by_class = {c: sums.get((direction, CLASS_PREFIX + c), 0) for c in SECURITY_CLASSES}
            sent.append({"date": day, **security_breakdown(by_class),
                         "messages": sum(by_class.values())})  # fmt: skip
        rows = []
        for row in by_domain:
            if row["direction"] == direction:
                errors = row["errors"]
                rows.append({"recipient_domain": row["recipient_domain"], "policy": row["policy"],
                             "messages": row["messages"], "errors": errors[:MAX_ERRORS],
                             "errors_total": len(errors)})  # fmt: skip
        sections[direction] = {
            "sent": sent,
            "blocked": rows,
            "no_tls_offered": _no_tls_offered(
                blocked, days, direction, domain_rows if direction == "outbound" else None
            ),
        }
    return {
        "window": window.as_dict(),
        "directions": sections,
        "no_tls_offered_coverage": coverage,
        "generated_at": generated_at,
        "data_as_of": data_as_of,
    }
