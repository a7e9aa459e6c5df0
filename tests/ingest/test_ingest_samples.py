"""The parser against real Postfix logs, checked by an independent, deliberately naive count.

The reference below applies the documented semantics directly with regexes and plain dicts
(no expiry, no caps, no buffering), so a disagreement means one of the two is wrong. The
samples are not part of the repository: these tests skip on a fresh clone.
"""

from __future__ import annotations

import lzma
import re
import tarfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from service.ingest.postfix import PostfixParser
from service.ingest.syslog import TimestampParser

from .support import SHARED, feed_all

SAMPLES = SHARED / "samples" / "postfix"
pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared/ samples are not present")

LINE = re.compile(
    r"^(?:\d{4}-\d\d-\d\dT\S+|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (\S+) (\S+?)\[(\d+)\]: (.*)$"
)
TLS_IN = re.compile(r"TLS connection established from .*?: (TLSv[\d.]+) with cipher")
TLS_OUT = re.compile(r"TLS connection established to (\S+): (TLSv[\d.]+) with cipher")
CLIENT = re.compile(r"^(\w+): client=.*?\[([^\]]+)\]")
SENT = re.compile(
    r"^(\w+): to=<.*?>, (?:orig_to=<.*?>, )?relay=(\S+?\[([^\]]+)\]:\d+), .*status=sent"
)
REMOVED = re.compile(r"^(\w+): removed$")
VERSION = {"TLSv1": "TLS1.0", "TLSv1.1": "TLS1.1", "TLSv1.2": "TLS1.2", "TLSv1.3": "TLS1.3"}


def loopback(ip: str) -> bool:
    return ip.startswith("127.") or ip == "::1"


@dataclass(frozen=True)
class Hop:
    """One message hop as the stated rules see it."""

    direction: str
    tls: str
    trust: str | None  # the TLS line's first word (Verified, Trusted, ...), if it has one
    peer_ip: str


def trust_word(msg: str) -> str | None:
    word = msg.split(" ", 1)[0]
    return word if word in ("Anonymous", "Untrusted", "Trusted", "Verified") else None


def reference_hops(lines: Iterable[str]) -> list[Hop]:
    """Every message hop straight from the stated rules (FORMATS.md)."""
    hops: list[Hop] = []
    session_tls: dict = {}  # type: ignore[type-arg]
    smtp_tls: dict = {}  # type: ignore[type-arg]
    open_inbound: set = set()  # type: ignore[type-arg]
    delivered: set = set()  # type: ignore[type-arg]
    for line in lines:
        m = LINE.match(line.rstrip("\n"))
        if not m:
            continue
        host, prog, pid, msg = m.groups()
        proc = (host, prog, pid)
        if prog.endswith("/smtpd"):
            if msg.startswith("connect from "):
                session_tls[proc] = ("none", None)
            elif msg.startswith("disconnect from "):
                session_tls.pop(proc, None)
            elif t := TLS_IN.search(msg):
                session_tls[proc] = (VERSION[t.group(1)], trust_word(msg))
            elif (
                (c := CLIENT.match(msg))
                and not loopback(c.group(2))
                and (host, c.group(1)) not in open_inbound
            ):
                open_inbound.add((host, c.group(1)))
                tls, trust = session_tls.get(proc, ("none", None))
                hops.append(Hop("inbound", tls, trust, c.group(2)))
        elif prog.endswith("/smtp"):
            if t := TLS_OUT.search(msg):
                smtp_tls[proc, t.group(1)] = (VERSION[t.group(2)], trust_word(msg))
            elif (s := SENT.match(msg)) and not loopback(s.group(3)):
                key = (host, s.group(1), s.group(2))
                if key not in delivered:
                    delivered.add(key)
                    tls, trust = smtp_tls.get((proc, s.group(2)), ("none", None))
                    hops.append(Hop("outbound", tls, trust, s.group(3)))
        elif prog.endswith("/qmgr") and (r := REMOVED.match(msg)):
            open_inbound.discard((host, r.group(1)))
            delivered = {k for k in delivered if k[:2] != (host, r.group(1))}
    return hops


def reference_count(lines: Iterable[str]) -> Counter:  # type: ignore[type-arg]
    """(direction, tls) counts straight from the stated rules."""
    return Counter((hop.direction, hop.tls) for hop in reference_hops(lines))


def ours(lines: list[str]) -> tuple[Counter, PostfixParser]:  # type: ignore[type-arg]
    parser = PostfixParser(TimestampParser(year=2021))
    traces = feed_all(parser, lines)
    assert parser.used + sum(parser.kinds.values()) == parser.lines == len(lines)
    return Counter((t["direction"], t["tls_version"]) for t in traces), parser


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)


def test_lightmeter_individual_files() -> None:
    files = sorted((SAMPLES / "lightmeter" / "individual_files").glob("*.log"))
    assert files
    total: Counter = Counter()  # type: ignore[type-arg]
    for path in files:
        lines = read_lines(path)
        got, _ = ours(lines)
        assert got == reference_count(lines), path.name
        total += got
    # Not vacuous: these scenarios contain both directions.
    assert total["inbound", "none"] + total["inbound", "TLS1.2"] + total["inbound", "TLS1.3"] > 5
    assert sum(n for (d, _), n in total.items() if d == "outbound") > 5


def test_lightmeter_complete_archive() -> None:
    with tarfile.open(SAMPLES / "lightmeter" / "complete.tar.gz") as tar:
        members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
        # mail.log.1 is the older file: give them oldest first, as the command expects.
        text = "".join(
            tar.extractfile(members[name]).read().decode("utf-8", "replace")  # type: ignore[union-attr]
            for name in ("mail.log.1", "mail.log")
        )
    lines = text.splitlines(keepends=True)
    got, parser = ours(lines)
    assert got == reference_count(lines)
    assert sum(got.values()) > 50
    assert parser.kinds["unrelated_program"] > 2000  # dovecot, amavis, opendkim, ...


def test_pixelpark_xz() -> None:
    with lzma.open(
        SAMPLES / "pixelpark_postfix-logsums_test_mail.log.xz", "rt", errors="replace"
    ) as fh:
        lines = fh.read().splitlines(keepends=True)
    assert len(lines) == 69_861
    got, parser = ours(lines)
    assert got == reference_count(lines)
    # The amavis re-injections are not new inbound messages.
    reinjected = sum(1 for x in lines if "/10025/smtpd[" in x and ": client=localhost[" in x)
    assert parser.kinds["loopback_client"] == reinjected > 0
    assert got["inbound", "TLS1.2"] > 0 and got["outbound", "TLS1.3"] > 0
