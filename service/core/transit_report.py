"""The Transit security report: Microsoft's *Outbound messages in Transit Security*, for any MTA.

Three sections over a window, per direction (Microsoft's is outbound; both are here):
- ``sent``: messages per transport security class per UTC day;
- ``blocked``: messages blocked by a TLS policy, per recipient domain and policy, with the
  distinct errors logged;
- ``no_tls_offered``: per recipient domain, the blocked messages whose error says the server
  did not offer TLS (STARTTLS), the domains to talk to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from service.core.blocked import BlockedDays, blocked_by_domain
from service.core.snapshot import security_breakdown
from service.core.tls_report import CLASS_PREFIX, DailyTls
from service.core.traces import split_blocked_field
from service.core.transport_security import SECURITY_CLASSES
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


def _no_tls_offered(blocked: BlockedDays, days: Iterable[str], direction: str) -> list[Any]:
    domains: dict[str, int] = {}
    for day in days:
        for field, count in blocked.get(day, {}).items():
            sent_direction, _, _, _, domain, reason = split_blocked_field(field)
            if sent_direction == direction and not_offered(reason):
                domains[domain] = domains.get(domain, 0) + count
    ordered = sorted(domains.items(), key=lambda item: (-item[1], item[0]))
    return [{"recipient_domain": domain or None, "messages": n} for domain, n in ordered]


def build_transit_report(
    daily: DailyTls,
    blocked: BlockedDays,
    window: Window,
    directions: tuple[str, ...],
    generated_at: str,
    data_as_of: str | None,
) -> dict[str, Any]:
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
            "no_tls_offered": _no_tls_offered(blocked, days, direction),
        }
    return {
        "window": window.as_dict(),
        "directions": sections,
        "generated_at": generated_at,
        "data_as_of": data_as_of,
    }
