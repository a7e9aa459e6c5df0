"""Our own log numbers beside a TLS-RPT policy domain's reports.

TLS-RPT reports are about mail senders delivered *to* a policy domain, so the side of our logs
to set beside them is inbound mail. Our counters count delivered inbound mail per connector,
TLS version and class, and per *sender* domain (the per-domain report), never per recipient
domain: so the exact number we have for delivered mail is the tenant's whole inbound mail per
UTC day (``scope``: the policy domain's own only when the tenant receives for it alone). The
blocked counters do keep the recipient domain, so the inbound messages our servers refused for
want of TLS are the policy domain's own. See docs/tls-rpt.md, "Beside our own logs".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from service.core.blocked import BlockedDays
from service.core.traces import split_blocked_field

SCOPE = "tenant-inbound"
DIRECTION = "inbound"


def blocked_to_domain(blocked: BlockedDays, days: Iterable[str], domain: str) -> dict[str, int]:
    """Per day, the inbound messages blocked by a TLS policy whose recipient domain is
    ``domain`` (every day given, zeros included)."""
    per_day: dict[str, int] = {}
    for day in days:
        per_day[day] = 0
        for field, count in blocked.get(day, {}).items():
            direction, _, _, _, recipient_domain, _ = split_blocked_field(field)
            if direction == DIRECTION and recipient_domain.lower() == domain:
                per_day[day] += count
    return per_day


def our_inbound_logs(tls_report: Mapping[str, Any], blocked: Mapping[str, int]) -> dict[str, Any]:
    """The inbound side of a ``build_tls_report`` document (totals and every day of its
    window, each with messages, TLS versions and transport security classes), with the
    policy domain's blocked inbound messages per day (``blocked_to_domain``)."""
    total = tls_report["directions"][DIRECTION]
    return {
        "scope": SCOPE,
        "messages": total["messages"],
        "encrypted_messages": total["encrypted_messages"],
        "encrypted_percent": total["encrypted_percent"],
        "tls": total["tls"],
        "security": total["security"],
        "blocked_messages": sum(blocked.values()),
        "days": [
            {"date": day["date"], **day["directions"][DIRECTION],
             "blocked_messages": blocked.get(day["date"], 0)}
            for day in tls_report["series"]
        ],
    }  # fmt: skip
