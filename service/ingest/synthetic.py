"""A synthetic Postfix log of any length, for benchmarks and memory checks.

Each message is a full inbound SMTP session (postscreen noise, connect, TLS, client=, cleanup,
qmgr, a relay to the internet over a reused TLS connection, removed). Some messages lose their
`removed` line and some sessions their `disconnect` line, as in real logs cut by rotation or
lost by syslog, so that only expiry keeps the correlation state bounded.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

_VERSIONS = ("TLSv1.3", "TLSv1.2", "TLSv1.3", "TLSv1", "TLSv1.1", None)


def queue_id(n: int) -> str:
    return f"{n:010X}"


def postfix_lines(messages: int, start: datetime | None = None) -> Iterator[str]:
    """About 12 lines per message, RFC 3339 timestamps, one second apart per message."""
    t0 = start or datetime(2025, 3, 3, tzinfo=UTC)
    for n in range(messages):
        ts = (t0 + timedelta(seconds=n)).isoformat()
        pid = 10_000 + n % 50  # smtpd pids are reused by later sessions
        out_pid = 20_000 + (n // 10) % 20  # one process per connection reuse run
        ip = f"192.0.{(n >> 8) & 255}.{n & 255}"
        qid = queue_id(n)
        version = _VERSIONS[n % len(_VERSIONS)]
        yield f"{ts} mx postfix/postscreen[99]: CONNECT from [{ip}]:4000 to [198.51.100.1]:25\n"
        yield f"{ts} mx postfix/postscreen[99]: PASS OLD [{ip}]:4000\n"
        yield f"{ts} mx postfix/smtpd[{pid}]: connect from h{n}.example[{ip}]\n"
        if version:
            yield (
                f"{ts} mx postfix/smtpd[{pid}]: Anonymous TLS connection established from "
                f"h{n}.example[{ip}]: {version} with cipher ECDHE-RSA-AES256-GCM-SHA384 "
                "(256/256 bits)\n"
            )
        yield f"{ts} mx postfix/smtpd[{pid}]: {qid}: client=h{n}.example[{ip}]\n"
        yield f"{ts} mx postfix/cleanup[300]: {qid}: message-id=<m{n}@h{n}.example>\n"
        yield f"{ts} mx postfix/qmgr[200]: {qid}: from=<s@h{n}.example>, size=1234, nrcpt=1 (queue active)\n"  # noqa: E501
        if n % 53:
            yield (
                f"{ts} mx postfix/smtpd[{pid}]: disconnect from h{n}.example[{ip}] ehlo=2 "
                "starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7\n"
            )
        if n % 10 == 0:  # a new outbound connection every ten messages, then reuse
            yield (
                f"{ts} mx postfix/smtp[{out_pid}]: Trusted TLS connection established to "
                f"mx.relay.example[203.0.113.{n // 10 % 7}]:25: TLSv1.3 with cipher "
                "TLS_AES_256_GCM_SHA384 (256/256 bits)\n"
            )
        yield (
            f"{ts} mx postfix/smtp[{out_pid}]: {qid}: to=<r{n}@far.example>, "
            f"relay=mx.relay.example[203.0.113.{n // 10 % 7}]:25, delay=0.5, delays=0.1/0/0.2/0.2, "
            "dsn=2.0.0, status=sent (250 ok)\n"
        )
        if n % 47:
            yield f"{ts} mx postfix/qmgr[200]: {qid}: removed\n"
        yield f"{ts} mx dovecot: imap-login: Login: user=<u{n}>, rip={ip}, TLS\n"
