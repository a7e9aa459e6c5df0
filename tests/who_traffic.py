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


def domain_traffic(
    domains: int, days: int, end: datetime, seed: int = 7, per_domain: int = 2
) -> tuple[list[dict[str, Any]], WhoTruth]:
    """``domains`` distinct domains spread over the ``days`` UTC days ending with ``end``'s,
    each domain on one day and one direction only, with 1..``per_domain`` messages (the first
    domains of each day more, so that the kept ones are told apart from the rest)."""
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
            traces.append(trace)
            truth.per_domain[(day, direction, domain)] += 1
            truth.per_day[(day, direction)] += 1
            truth.per_version[(day, direction, domain, version or "none")] += 1
    rng.shuffle(traces)
    return traces, truth
