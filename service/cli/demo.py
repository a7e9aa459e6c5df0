"""A realistic demo week: internet mail plus Partner and OnPremises connectors, one of them
with about 12 % TLS1.0 (the kind of traffic the insights exist for)."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# (direction, connector, type, messages per day, TLS mix)
DEMO_FLOWS: tuple[tuple[str, str | None, str | None, int, dict[str, float]], ...] = (
    ("inbound", None, None, 900, {"TLS1.3": 0.55, "TLS1.2": 0.38, "none": 0.07}),
    ("outbound", None, None, 700, {"TLS1.3": 0.61, "TLS1.2": 0.35, "TLS1.1": 0.01, "none": 0.03}),
    ("inbound", "Contoso Partner", "partner", 160,
     {"TLS1.2": 0.80, "TLS1.0": 0.12, "TLS1.3": 0.08}),
    ("inbound", "Fabrikam Partner", "partner", 90, {"TLS1.3": 0.7, "TLS1.2": 0.3}),
    ("outbound", "Fabrikam Partner", "partner", 70, {"TLS1.3": 0.66, "TLS1.2": 0.34}),
    ("inbound", "HQ Exchange", "onpremises", 240, {"TLS1.2": 0.97, "TLS1.1": 0.03}),
    ("outbound", "HQ Exchange", "onpremises", 260, {"TLS1.2": 1.0}),
    ("outbound", "Scanner Relay", "onpremises", 30, {"none": 0.2, "TLS1.2": 0.8}),
)  # fmt: skip

DOMAINS = ("contoso.example", "fabrikam.example", "example.org", "mail.example.net")
# Transport security of the TLS messages per (direction, connector): (tls_auth, tls_policy)
# and weight; drawn from a generator of their own, so the TLS mix above stays as it was.
DEMO_SECURITY: dict[tuple[str, str | None], dict[tuple[str | None, str | None], float]] = {
    ("inbound", None): {("anonymous", None): 0.9, ("verified", None): 0.1},
    ("outbound", None): {("verified", "dane"): 0.22, ("verified", "mta-sts"): 0.18,
                         ("verified", "may"): 0.1, ("untrusted", "may"): 0.5},
    ("inbound", "Contoso Partner"): {("trusted", None): 1.0},
    ("inbound", "Fabrikam Partner"): {("verified", "verify"): 1.0},
    ("outbound", "Fabrikam Partner"): {("verified", "dane"): 1.0},
    ("inbound", "HQ Exchange"): {("verified", "secure"): 1.0},
    ("outbound", "HQ Exchange"): {("verified", "secure"): 1.0},
}  # fmt: skip
# Outbound mail a TLS policy blocked, per day: (recipient domain, policy, reason).
DEMO_BLOCKED = (
    ("legacy.example", "encrypt", "TLS is required, but was not offered by host mx.legacy.example"),
    ("dane-broken.example", "dane", "Server certificate not verified"),
)  # fmt: skip


def demo_traces(now: datetime, days: int = 7, seed: int = 7) -> Iterator[dict[str, Any]]:
    """Traces for the ``days`` UTC days ending with today, none later than ``now``."""
    rng = random.Random(seed)
    security_rng = random.Random(seed + 1)
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for back in range(days - 1, -1, -1):
        day = today - timedelta(days=back)
        span = (now - day).total_seconds() if back == 0 else 86400
        for direction, connector, ctype, per_day, mix in DEMO_FLOWS:
            versions, weights = zip(*mix.items(), strict=False)
            count = per_day if back else max(1, int(per_day * span / 86400))
            for n in range(count):
                trace: dict[str, Any] = {
                    "id": f"demo-{day.date()}-{direction}-{connector or 'internet'}-{n}",
                    "timestamp": (day + timedelta(seconds=rng.uniform(0, span - 1))).isoformat(),
                    "direction": direction,
                    "connector": connector,
                    "tls_version": rng.choices(versions, weights)[0],
                    "sender_domain": rng.choice(DOMAINS),
                    "size_bytes": rng.randint(2_000, 400_000),
                }
                if ctype:
                    trace["connector_type"] = ctype
                security = DEMO_SECURITY.get((direction, connector))
                if security and trace["tls_version"] != "none":
                    choices, chances = zip(*security.items(), strict=True)
                    auth, policy = security_rng.choices(choices, chances)[0]
                    trace.update({"tls_auth": auth} | ({"tls_policy": policy} if policy else {}))
                yield trace
        for n, (domain, policy, reason) in enumerate(DEMO_BLOCKED):
            yield {"id": f"demo-{day.date()}-blocked-{n}", "direction": "outbound",
                   "timestamp": (day + timedelta(seconds=security_rng.uniform(0, span - 1))
                                 ).isoformat(),
                   "connector": None, "tls_version": None, "outcome": "blocked",
                   "tls_policy": policy, "recipient_domain": domain, "blocked_reason": reason}  # fmt: skip


DEMO_TENANT = "demo"
DEMO_KEY_SCOPES = {"read": ("read",), "ingest": ("ingest",), "admin": ("admin",)}


def demo_keys(client: Any, path: Path, now: datetime) -> dict[str, str]:
    """The demo tenant's read, ingest and admin keys, kept (mode 0600) in ``path`` so a second run
    prints the same ones; a key missing from the store or revoked there is made anew."""
    from service.store.api_keys import create_key, key_is_valid

    try:
        kept = json.loads(path.read_text())
    except (OSError, ValueError):
        kept = {}
    keys = {}
    for role, scopes in DEMO_KEY_SCOPES.items():
        key = kept.get(role) if isinstance(kept, dict) else None
        if not isinstance(key, str) or not key_is_valid(client, key, DEMO_TENANT, scopes[0]):
            key = create_key(client, DEMO_TENANT, scopes, f"demo {role}", now)
        keys[role] = key
    if keys != kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(keys, handle, indent=2)
        os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT
    return keys
