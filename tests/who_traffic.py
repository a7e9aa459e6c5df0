"""Generated traffic with many distinct remote domains and a known truth (tests and bench)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

VERSIONS = ("TLS1.3", "TLS1.2", "TLS1.0", "TLS1.1", None)
WEIGHTS = (50, 35, 6, 2, 7)


@dataclass
class WhoTruth:
    """Messages per (day, direction, domain) and per (day, direction): counted here,
    independently of mailflow's code."""

    per_domain: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    per_day: Counter[tuple[str, str]] = field(default_factory=Counter)
    per_version: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    # (day, direction, domain, transport security class): filled with ``classes=True``
    per_class: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)


# (tls_policy, tls_auth) of encrypted mail -> its transport security class, by the table of
# docs/transit-security.md, written out here rather than asked of mailflow's code.
SECURITY = (
    (("dane", None), "dane"), (("dane", "verified"), "dane"), (("mta-sts", "verified"), "mta-sts"),
    (("verify", None), "authenticated"), ((None, "verified"), "authenticated"),
    (("may", None), "encrypted"), ((None, "untrusted"), "encrypted"), ((None, None), "encrypted"),
    (("dane", "untrusted"), "encrypted"),
)  # fmt: skip


def domain_traffic(
    domains: int,
    days: int,
    end: datetime,
    seed: int = 7,
    per_domain: int = 2,
    classes: bool = False,
) -> tuple[list[dict[str, Any]], WhoTruth]:
    """``domains`` distinct domains spread over the ``days`` UTC days ending with ``end``'s,
    each domain on one day and one direction only, with 1..``per_domain`` messages (the first
    domains of each day more, so that the kept ones are told apart from the rest). With
    ``classes``, encrypted mail also names a TLS policy and peer authentication (``SECURITY``)
    and the truth counts each message's transport security class."""
    rng = random.Random(seed)
    truth = WhoTruth()
    traces: list[dict[str, Any]] = []
    midnight = end.replace(hour=0, minute=0, second=0, microsecond=0)
    for number in range(domains):
        day_start = midnight - timedelta(days=number % days)
        direction = "outbound" if number % 2 else "inbound"
        domain = f"d{number}.example"
        day = day_start.date().isoformat()
        for copy in range(rng.randint(1, per_domain)):
            moment = day_start + timedelta(seconds=rng.randrange(int(
                min(86400, (end - day_start).total_seconds()))))  # fmt: skip
            version = rng.choices(VERSIONS, WEIGHTS)[0]
            trace: dict[str, Any] = {
                "id": f"w{number}-{copy}", "timestamp": moment.isoformat(),
                "direction": direction, "tls_version": version,
                "remote_host": f"mx{copy % 3}.{domain}",
            }  # fmt: skip
            trace["recipient_domain" if direction == "outbound" else "sender_domain"] = domain
            if classes:
                klass = "none"
                if version is not None:
                    (policy, auth), klass = rng.choice(SECURITY)
                    trace.update({k: v for k, v in (("tls_policy", policy), ("tls_auth", auth))
                                  if v is not None})  # fmt: skip
                truth.per_class[(day, direction, domain, klass)] += 1
            traces.append(trace)
            truth.per_domain[(day, direction, domain)] += 1
            truth.per_day[(day, direction)] += 1
            truth.per_version[(day, direction, domain, version or "none")] += 1
    rng.shuffle(traces)
    return traces, truth


def all_domain_rows(client: Any, query: str) -> list[dict[str, Any]]:
    """Every row of GET /api/v1/domains?``query``, page after page."""
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        url = f"/api/v1/domains?{query}" + (f"&cursor={cursor}" if cursor else "")
        response = client.get(url)
        assert response.status_code == 200, response.json
        rows += response.json["rows"]
        cursor = response.json["next_cursor"]
        if cursor is None:
            return rows
