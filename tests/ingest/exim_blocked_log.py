"""A generated Exim mainlog whose messages are known to be blocked, or not, by Exim's TLS policy.

Each blocked message has two recipients and is deferred (`==`) on several queue runs, or failed
(`**`) once; other messages are deferred for reasons that are not Exim's TLS policy (the remote
server's replies, even when they speak of TLS, a refused connection) or fall back to plaintext
and are delivered. ``Truth`` holds, for every blocked message, the record the parser must give.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

T0 = datetime(2025, 3, 3, 10, 0)
RETRIES = 3
ROUTER, TRANSPORT = "dnslookup", "remote_smtp"


@dataclass
class Log:
    lines: list[str] = field(default_factory=list)
    truth: dict[str, dict[str, Any]] = field(default_factory=dict)  # recipient domain -> record
    clock: datetime = T0

    def add(self, text: str, seconds: int = 1) -> str:
        self.clock += timedelta(seconds=seconds)
        stamp = self.clock.strftime("%Y-%m-%d %H:%M:%S")
        self.lines.append(f"{stamp} {text}\n")
        return f"{self.clock.isoformat()}+00:00"


# (flag, errno on `==` lines, reason ({mx} is the host), a `DANE attempt failed` line before,
# the line names the host (H=), expected tls_policy, expected remote_host is the host)
BLOCKED: list[tuple[str, str, str, bool, bool, str | None, bool]] = [
    ("==", "-38", "a TLS session is required, but the server did not offer TLS support",
     False, True, None, True),
    ("==", "-38", "a TLS session is required, but an attempt to start TLS failed",
     False, True, None, True),
    ("==", "-37", "TLS session: (certificate verification failed): certificate invalid",
     False, True, "verify", True),
    ("==", "-37", "TLS session: (SSL_connect): error:0A000086:SSL routines::certificate verify "
     "failed", False, True, "verify", True),
    ("==", "-37", "TLS session: (SSL_connect): error:0A000086:SSL routines::certificate verify "
     "failed", True, True, "dane", True),
    ("==", "-37", "TLS session: (gnutls_handshake): A TLS fatal alert has been received.",
     False, True, None, True),
    ("==", "-36", "DANE error: tlsa lookup DEFER", False, False, "dane", False),
    ("**", "", "DANE error: {mx} lookup not DNSSEC", False, False, "dane", True),
]  # fmt: skip
# Deferred for reasons that are not Exim's TLS policy: (errno, reason, the line names the host).
NOT_BLOCKED: list[tuple[str, str, bool]] = [
    ("-44", "SMTP error from remote mail server after RCPT TO:<r@{domain}>: 450 4.7.0 TLS is "
     "required, but the server did not offer TLS support", True),
    ("0", "SMTP error from remote mail server after STARTTLS: 454 4.7.0 TLS session: not "
     "available due to temporary reason", True),
    ("-53", "retry time not reached", False),
]  # fmt: skip


def message_id(n: int) -> str:
    return f"1tA{n:03d}-{n:011d}-{n:04d}"


def generate(start: datetime = T0) -> Log:
    """The log from `start` on (naive: Exim logs local time, read as UTC by default)."""
    log = Log(clock=start)
    n = 0
    for flag, errno, reason, dane, named, policy, remote in BLOCKED:
        n += 1
        blocked_message(log, n, flag, errno, reason, dane, named, policy, remote)
    for errno, reason, named in NOT_BLOCKED:
        n += 1
        deferred_message(log, n, errno, reason, named)
    n += 1
    fallback_message(log, n)
    return log


def hosts(n: int) -> tuple[str, str, str]:
    return f"mx.b{n}.example", f"198.51.100.{n}", f"b{n}.example"


def arrival(log: Log, n: int, domain: str) -> None:
    log.add(f"{message_id(n)} <= app@ours.example U=app P=local S=1234 id=m{n}@ours.example "
            f"for r1@{domain} r2@{domain}")  # fmt: skip


def blocked_message(
    log: Log,
    n: int,
    flag: str,
    errno: str,
    reason: str,
    dane: bool,
    named: bool,
    policy: str | None,
    remote: bool,
) -> None:
    mx, ip, domain = hosts(n)
    text = reason.format(mx=mx)
    arrival(log, n, domain)
    first = ""
    for attempt in range(1 if flag == "**" else RETRIES):
        log.add("Start queue run: pid=4000 -q", seconds=600 * attempt)
        if dane:
            log.add(f"{message_id(n)} DANE attempt failed; TLS connection to {mx} [{ip}]: {text}")
        host = f" H={mx} [{ip}]" if named else ""
        for rcpt in ("r1", "r2"):  # Exim logs each recipient of the attempt
            if flag == "==":
                line = (f"{message_id(n)} == {rcpt}@{domain} R={ROUTER} T={TRANSPORT} defer "
                        f"({errno}){host}: {text}")  # fmt: skip
            else:
                line = (f"{message_id(n)} ** {rcpt}@{domain} R={ROUTER} T={TRANSPORT}{host} : "
                        f"{text}")  # fmt: skip
            stamp = log.add(line)
            first = first or stamp
    if flag == "==":
        # The retry limit: Exim gives up, naming no reason (the deferrals above said it).
        log.add(f"{message_id(n)} ** r1@{domain}: retry timeout exceeded")
    log.add(f"{message_id(n)} Completed")
    record: dict[str, Any] = {
        "timestamp": first,
        "direction": "outbound",
        "connector": "Internet out",
        "connector_type": "onpremises",
        "tls_version": None,
        "outcome": "blocked",
        "blocked_reason": text,
        "recipient_domain": domain,
    }
    if remote:
        record["remote_host"] = mx
    if named:
        record["remote_ip"] = ip
    if policy:
        record["tls_policy"] = policy
    log.truth[domain] = record


def deferred_message(log: Log, n: int, errno: str, reason: str, named: bool) -> None:
    mx, ip, domain = hosts(n)
    arrival(log, n, domain)
    host = f" H={mx} [{ip}]" if named else ""
    for attempt in range(RETRIES):
        log.add("Start queue run: pid=4000 -q", seconds=600 * attempt)
        log.add(f"{message_id(n)} == r1@{domain} R={ROUTER} T={TRANSPORT} defer ({errno}){host}: "
                f"{reason.format(domain=domain)}")  # fmt: skip


def fallback_message(log: Log, n: int) -> None:
    """STARTTLS failed where TLS was not required: Exim says so and delivers in clear."""
    mx, ip, domain = hosts(n)
    arrival(log, n, domain)
    log.add(f"{message_id(n)} TLS session: (certificate verification failed): certificate "
            f"invalid: delivering unencrypted to H={mx} [{ip}] (not in hosts_require_tls)")  # fmt: skip
    log.add(f'{message_id(n)} => r1@{domain} R={ROUTER} T={TRANSPORT} H={mx} [{ip}] C="250 OK"')
    log.add(f"{message_id(n)} Completed")
