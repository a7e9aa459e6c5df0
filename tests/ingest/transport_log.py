"""A generated Postfix log whose every message has a known transport security class.

Inbound sessions under each trust word, outbound deliveries under each `tls=` form, messages
deferred (several times) or returned for a TLS policy, and deferrals for other reasons; with,
for every message hop, the transport security fields the parser must give it (``Truth``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)


@dataclass
class Truth:
    """What the parser must say about one message hop."""

    direction: str
    recipient_domain: str
    fields: dict[str, Any]
    outcome: str = "delivered"


@dataclass
class Log:
    lines: list[str] = field(default_factory=list)
    truth: list[Truth] = field(default_factory=list)
    clock: datetime = T0

    def at(self, seconds: int = 1) -> str:
        self.clock += timedelta(seconds=seconds)
        return self.clock.isoformat()

    def add(self, program: str, text: str, seconds: int = 1) -> None:
        self.lines.append(f"{self.at(seconds)} mx postfix/{program}: {text}\n")


# (trust word of the inbound TLS line or None for no TLS) -> tls_auth
INBOUND = [("Anonymous", "anonymous"), ("Untrusted", "untrusted"), ("Trusted", "trusted"),
           ("Verified", "verified"), (None, None)]  # fmt: skip

# (trust word of the outbound TLS line or None, the `tls=` value or None) -> expected fields
OUTBOUND: list[tuple[str | None, str | None, dict[str, Any]]] = [
    ("Verified", "dane", {"tls_auth": "verified", "tls_policy": "dane"}),
    ("Verified", "dane-only", {"tls_auth": "verified", "tls_policy": "dane"}),
    ("Verified", "dane/requiretls", {"tls_auth": "verified", "tls_policy": "dane"}),
    ("Verified", "secure", {"tls_auth": "verified", "tls_policy": "secure"}),
    ("Verified", "verify", {"tls_auth": "verified", "tls_policy": "verify"}),
    ("Verified", "fingerprint", {"tls_auth": "verified", "tls_policy": "verify"}),
    ("Trusted", "may", {"tls_auth": "trusted", "tls_policy": "may"}),
    ("Trusted", "dane:halfdane", {"tls_auth": "trusted", "tls_policy": "dane",
                                  "tls_downgraded": True}),
    ("Untrusted", "may", {"tls_auth": "untrusted", "tls_policy": "may"}),
    ("Untrusted", "encrypt", {"tls_auth": "untrusted", "tls_policy": "encrypt"}),
    ("Untrusted", "dane:encrypt", {"tls_auth": "untrusted", "tls_policy": "encrypt",
                                   "tls_downgraded": True}),
    (None, "may:none", {"tls_policy": "none", "tls_downgraded": True}),
    (None, "none", {"tls_policy": "none"}),
    (None, None, {}),  # Postfix before 3.11, no TLS: nothing to say beyond the version
    ("Trusted", None, {"tls_auth": "trusted"}),  # Postfix before 3.11 with TLS
]  # fmt: skip

# Deferred or returned for a TLS policy: (status, tls= value, reason, relay name or None for
# `relay=none`, expected tls_policy, expected remote_host).
HOST = "{host}[{ip}]"
BLOCKED: list[tuple[str, str | None, str, str | None, str | None, str | None]] = [
    ("deferred", "!dane", "Server certificate not verified", "mx", "dane", "mx"),
    ("deferred", "!encrypt", f"TLS is required, but was not offered by host {HOST}", "mx",
     "encrypt", "mx"),
    ("deferred", None, "TLSA lookup error for {host}:25", None, "dane", None),
    ("deferred", "dane?", "Cannot start TLS: handshake failure", "mx", "dane", "mx"),
    ("deferred", None, f"delivery temporarily suspended: TLS is required, but was not offered "
     f"by host {HOST}", None, None, "mx"),
    ("deferred", "dane:encrypt", "Server certificate not trusted", "mx", "dane", "mx"),
    ("bounced", "secure/!requiretls:nostarttls", f"Sender requested REQUIRETLS, but TLS service "
     f"was not offered by host {HOST}", "mx", "secure", "mx"),
]  # fmt: skip
# Deferred for reasons that are not our TLS policy: no record at all.
NOT_BLOCKED: list[tuple[str | None, str]] = [
    (None, "connect to {host}[{ip}]:25: Connection timed out"),
    ("may?", "Cannot start TLS: handshake failure"),
    ("may", "host {host}[{ip}] said: 450 4.7.1 TLS is required, but was not used (in reply to "
     "RCPT TO command)"),
]  # fmt: skip
RETRIES = 3


def qid(n: int) -> str:
    return f"{n:010X}"


def generate(messages_per_class: int = 3, start: datetime = T0) -> Log:
    log = Log(clock=start)
    n = 0
    for _ in range(messages_per_class):
        for word, auth in INBOUND:
            n += 1
            inbound_message(log, n, word, auth)
        for word, tls, expected in OUTBOUND:
            n += 1
            outbound_message(log, n, word, tls, expected)
        for status, tls, reason, relay, policy, remote in BLOCKED:
            n += 1
            blocked_message(log, n, status, tls, reason, relay, policy, remote)
        for tls, reason in NOT_BLOCKED:
            n += 1
            blocked_message(log, n, "deferred", tls, reason, "mx", None, None, block=False)
    return log


def inbound_message(log: Log, n: int, word: str | None, auth: str | None) -> None:
    pid, ip, domain = f"smtpd[{n}]", f"192.0.2.{n % 250 + 1}", f"in{n}.ours.example"
    log.add(pid, f"connect from c{n}.example[{ip}]")
    if word:
        log.add(pid, f"{word} TLS connection established from c{n}.example[{ip}]: TLSv1.3 with "
                     "cipher TLS_AES_256_GCM_SHA384 (256/256 bits)")  # fmt: skip
    log.add(pid, f"{qid(n)}: client=c{n}.example[{ip}]")
    log.add("qmgr[600]", f"{qid(n)}: from=<s@c{n}.example>, size=100, nrcpt=1 (queue active)")
    log.add(pid, f"disconnect from c{n}.example[{ip}] ehlo=2 starttls=1 quit=1 commands=4")
    log.add("local[700]", f"{qid(n)}: to=<u@{domain}>, relay=local, delay=1, "
                          "delays=0.5/0/0/0.5, dsn=2.0.0, status=sent (delivered to mailbox)")  # fmt: skip
    log.add("qmgr[600]", f"{qid(n)}: removed")
    fields: dict[str, Any] = {"tls_version": "TLS1.3" if word else "none"}
    if auth:
        fields["tls_auth"] = auth
    log.truth.append(Truth("inbound", domain, fields))


def submitted(log: Log, n: int) -> None:
    log.add("pickup[650]", f"{qid(n)}: uid=1000 from=<app>")
    log.add("qmgr[600]", f"{qid(n)}: from=<app@ours.example>, size=100, nrcpt=2 (queue active)")


def delivery(n: int, mx: str, ip: str, domain: str, tls: str | None, rest: str) -> str:
    tls_field = f"tls={tls}, " if tls is not None else ""
    return (f"{qid(n)}: to=<r@{domain}>, relay={mx}[{ip}]:25, delay=1, delays=0.1/0/0.5/0.4, "
            f"{tls_field}{rest}")  # fmt: skip


def outbound_message(
    log: Log, n: int, word: str | None, tls: str | None, expected: dict[str, Any]
) -> None:
    pid, mx, ip, domain = f"smtp[{n}]", f"mx.out{n}.example", f"203.0.113.{n % 250 + 1}", \
        f"out{n}.example"  # fmt: skip
    submitted(log, n)
    if word:
        log.add(pid, f"{word} TLS connection established to {mx}[{ip}]:25: TLSv1.2 with cipher "
                     "ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)")  # fmt: skip
    # Two recipients over the same connection: one hop, one trace.
    for _ in range(2):
        log.add(pid, delivery(n, mx, ip, domain, tls, "dsn=2.0.0, status=sent (250 ok)"))
    log.add("qmgr[600]", f"{qid(n)}: removed")
    log.truth.append(
        Truth("outbound", domain, {"tls_version": "TLS1.2" if word else "none", **expected})
    )


def blocked_message(
    log: Log,
    n: int,
    status: str,
    tls: str | None,
    reason: str,
    relay: str | None,
    policy: str | None,
    remote: str | None,
    block: bool = True,
) -> None:
    pid, mx, ip, domain = f"smtp[{n}]", f"mx.b{n}.example", f"198.51.100.{n % 250 + 1}", \
        f"b{n}.example"  # fmt: skip
    text = reason.format(host=mx, ip=ip)
    dsn = "5.7.10" if status == "bounced" else "4.7.5"
    submitted(log, n)
    for attempt in range(1 if status == "bounced" else RETRIES):
        if attempt:  # Postfix's queue manager picks the message up again for each retry
            log.add("qmgr[600]", f"{qid(n)}: from=<app@ours.example>, size=100, nrcpt=2 "
                                 "(queue active)", seconds=600 * attempt)  # fmt: skip
        line = delivery(n, mx, ip, domain, tls, f"dsn={dsn}, status={status} ({text})")
        if relay is None:
            line = line.replace(f"relay={mx}[{ip}]:25", "relay=none")
        for _ in range(2):  # both recipients in the same attempt
            log.add(pid, line)
    if not block:
        return
    fields: dict[str, Any] = {"tls_version": None, "outcome": "blocked", "blocked_reason": text}
    if policy:
        fields["tls_policy"] = policy
    log.truth.append(Truth("outbound", domain, fields, outcome="blocked"))
    if remote:
        log.truth[-1].fields["remote_host"] = mx


def key_of(t: dict[str, Any]) -> tuple[str, str, str]:
    return t["direction"], t.get("outcome", "delivered"), t["recipient_domain"]
