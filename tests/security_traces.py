"""Traces whose transport security class is known, and their truth, counted here independently
of mailflow's code (the table of docs/transit-security.md, written out again)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

# (tls_version, tls_auth, tls_policy spelling) -> the class the table gives, by hand.
CASES: list[tuple[str | None, str | None, str | None, str]] = [
    ("TLSv1.3", "verified", "dane", "dane"),
    ("TLS1.2", None, "DANE-only", "dane"),
    ("TLS1.3", "untrusted", "dane", "encrypted"),
    ("TLS1.3", "verified", "MTA-STS", "mta-sts"),
    ("TLS1.2", None, "sts", "mta-sts"),
    ("TLS1.2", "trusted", "mta-sts", "encrypted"),
    ("TLS1.3", "verified", None, "authenticated"),
    ("TLS1.2", "verified", "may", "authenticated"),
    ("TLS1.2", None, "fingerprint", "authenticated"),
    ("TLS1.3", None, "secure", "authenticated"),
    ("TLS1.2", "trusted", None, "encrypted"),
    ("TLS1.2", "untrusted", "may", "encrypted"),
    ("TLS1.3", "anonymous", None, "encrypted"),
    ("TLS1.2", None, "encrypt", "encrypted"),
    ("TLSv1", None, None, "encrypted"),
    ("TLS1.3", None, None, "encrypted"),
    (None, None, None, "none"),
    ("none", None, "may", "none"),
]
CONNECTORS = [(None, None), ("Partner A", "partner"), ("HQ", "onpremises")]
BLOCK_REASONS = ["TLS is required, but was not offered by host mx.example.net",
                 "Server certificate not verified"]  # fmt: skip
BLOCK_POLICIES = ["dane", "encrypt", "verify", None]


def make_security_traces(
    count: int, start: datetime, seed: int = 1, days: int = 3, blocked_share: float = 0.1
) -> tuple[list[dict[str, Any]], Counter[tuple[str, str | None, str]], Counter[tuple[Any, ...]]]:
    """``count`` traces over the ``days`` UTC days ending with ``start``'s; the truth of the
    delivered ones per (direction, connector, class), of the blocked ones per (direction,
    connector, policy, recipient domain, reason)."""
    rng = random.Random(seed)
    first = start.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days - 1)
    span = (start - first).total_seconds()
    traces: list[dict[str, Any]] = []
    delivered: Counter[tuple[str, str | None, str]] = Counter()
    blocked: Counter[tuple[Any, ...]] = Counter()
    for i in range(count):
        direction = rng.choice(("inbound", "outbound"))
        connector, ctype = rng.choice(CONNECTORS)
        trace: dict[str, Any] = {
            "id": f"s{seed}-{i}",
            "timestamp": (first + timedelta(seconds=rng.uniform(0, span))).isoformat(),
            "direction": direction,
        }
        if connector is not None:
            trace.update(connector=connector, connector_type=ctype)
        if rng.random() < blocked_share:
            policy = rng.choice(BLOCK_POLICIES)
            domain = rng.choice(["example.net", "example.org"])
            reason = rng.choice(BLOCK_REASONS)
            trace.update(tls_version=None, outcome="blocked", blocked_reason=reason,
                         recipient_domain=domain)  # fmt: skip
            if policy is not None:
                trace["tls_policy"] = policy
            blocked[(direction, connector, policy, domain, reason)] += 1
        else:
            version, auth, policy, klass = rng.choice(CASES)
            trace["tls_version"] = version
            if auth is not None:
                trace["tls_auth"] = auth
            if policy is not None:
                trace["tls_policy"] = policy
            if rng.random() < 0.2:
                trace["outcome"] = "delivered"
            delivered[(direction, connector, klass)] += 1
        traces.append(trace)
    return traces, delivered, blocked
