"""The Postfix parser's whole output pinned by a digest: every trace (all fields, in order) and
every line count, for the real samples and for a generated log full of odd lines.

Speed work on the parser's hot loop must not change a single trace or count; the reference
tests (test_ingest_samples.py) check the meaning, this checks nothing else moved. A digest
that changes on purpose (a new field, a fixed bug) is updated here with the reason.
"""

from __future__ import annotations

import hashlib
import itertools
import lzma
import tarfile
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from service.ingest.exim import EximParser
from service.ingest.postfix import PostfixParser
from service.ingest.synthetic import postfix_lines
from service.ingest.syslog import MONTHS, TimestampParser

from .support import SHARED

SAMPLES = SHARED / "samples"
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared/ samples are not present")


def run(parser: Any, lines: list[str], chunk: int) -> str:
    """Feed `lines` in chunks of `chunk` as the command does; digest traces and counts."""
    traces = []
    for start in range(0, len(lines), chunk):
        parser.feed_lines(lines[start : start + chunk])
        traces.extend(parser.take())
    traces.extend(parser.flush())
    counts = {
        "lines": parser.lines,
        "used": parser.used,
        "kinds": parser.kinds,
        "unrecognised": getattr(parser, "unrecognised", {}),
        "evicted": parser.evicted,
        "traces": len(traces),
    }
    assert parser.used + sum(parser.kinds.values()) == parser.lines == len(lines)
    blob = orjson.dumps([counts, traces], option=orjson.OPT_SORT_KEYS)
    return f"{len(traces)}:{hashlib.sha256(blob).hexdigest()[:16]}"


def postfix_digest(lines: list[str], chunk: int = 8192) -> str:
    return run(PostfixParser(TimestampParser(year=2021)), lines, chunk)


def bsd(line: str) -> str:
    """The same line with a BSD syslog timestamp instead of RFC 3339."""
    ts, rest = line.split(" ", 1)
    month = next(m for m, i in MONTHS.items() if i == int(ts[5:7]))
    return f"{month} {int(ts[8:10]):>2} {ts[11:19]} {rest}"


ODD_LINES = [
    "\n",
    "   \n",
    "garbage without structure\n",
    "2025-03-03T00:00:00 mx\n",  # too few fields
    "2025-03-03 00:00:00 mx postfix/smtpd[1]: connect from a[192.0.2.1]\n",  # no T
    "2025-3-3T0:0:0 mx postfix/smtpd[1]: connect from a[192.0.2.1]\n",  # too short
    "2025-03-03T00:00:01+00:00 mx postfix/smtpd[1] connect from a[192.0.2.1]\n",  # no colon
    "2025-03-03T00:00:01+00:00 mx postfix/smtpd: connect from a[192.0.2.1]\n",  # no pid
    "2025-03-03T00:00:01+00:00 mx postfix-out/submission/smtpd[7]: connect from b[192.0.2.2]\n",
    "2025-03-03T00:00:01+00:00 mx postfix-out/submission/smtpd[7]: Verified TLS connection "
    "established from b[192.0.2.2]: TLSv1.2 with cipher X (256/256 bits)\n",
    "2025-03-03T00:00:01+00:00 mx postfix-out/submission/smtpd[7]: AB12: client=b[192.0.2.2], "
    "sasl_method=PLAIN, sasl_username=alice@example.org\n",
    "2025-03-03T00:00:01+00:00 mx postfix/smtpd[8]: Weird TLS connection established from "
    "c[192.0.2.3]: TLSv9 with cipher Y (1/1 bits)\r\n",
    "2025-03-03T00:00:01+00:00 mx postfix/smtpd[8]: CD34: client=c[192.0.2.3]\r\n",
    "2025-03-03T00:00:01+00:00 mx postfix/postscreen[9]: CONNECT from [192.0.2.9]:1 to [x]:25\n",
    "2025-03-03T00:00:01+00:00 mx postfix/anvil[9]: statistics: max connection rate\n",
    "2025-03-03T00:00:01+00:00 mx dovecot[3]: imap-login: Login\n",
    "2025-03-03T00:00:01+00:00 mx amavis[3]: (1234-01) Passed CLEAN\n",
    "2025-03-03T00:00:01+00:00 mx notpostfix/smtpd[3]: connect from d[192.0.2.4]\n",
    "2025-03-03T00:00:01+00:00 mx postfix/smtp[5]: EF56: to=<r@far.example>, relay=mx.far."
    "example[203.0.113.9]:25, delay=1, dsn=4.7.5, status=deferred (TLS is required, but was "
    "not offered by host mx.far.example[203.0.113.9])\n",
    "2025-03-03T00:00:01+00:00 mx postfix/smtp[5]: EF57: to=<r@far.example>, relay=mx.far."
    "example[203.0.113.9]:25, delay=1, tls=may:none, dsn=2.0.0, status=sent (250 ok)\n",
    "Feb 30 00:00:01 mx postfix/smtpd[1]: AB99: client=e[192.0.2.5]\n",  # no such date
    "Foo  3 00:00:01 mx postfix/smtpd[1]: connect from e[192.0.2.5]\n",
    "Mar  3 00:00:01 mx postfix/qmgr[2]: AB12: removed\n",
    "Mar  3 00:00:01 mx postfix/qmgr[2]:\n",
    "2025-03-03T00:00:01+00:00  postfix/smtpd[1]: double space\n",
    "2025-03-03T00:00:01+00:00 mx postfix/local[4]: AB12: to=<u@example.org>, relay=local, "
    "delay=0, status=sent (delivered)\n",
    "2025-03-03T00:00:01+00:00 mx postfix/pickup[4]: 9F00: uid=0 from=<root>\n",
    "2025-03-03T00:00:01+00:00 mx postfix/cleanup[4]: 9F00: message-id=<x@y>\n",
    "2025-03-03T00:00:01+00:00 mx postfix[4]: no slash in the program\n",
    "2025-03-03T00:00:01+00:00 mx postfix/smtpd[1]:\n",
    "2025-03-03T00:00:01+00:00 mx postfix/smtpd[1]: \u00e9\u00e8 unicode \ufffd\n",
]


def generated_log() -> list[str]:
    """Synthetic sessions, half of them in BSD syslog form, with odd lines spread through."""
    plain = list(itertools.islice(postfix_lines(2_000), 30_000))
    out: list[str] = []
    odd = itertools.cycle(ODD_LINES)
    for n, line in enumerate(plain):
        out.append(bsd(line) if (n // 500) % 2 else line)
        if n % 97 == 0:
            out.append(next(odd))
    return out


def test_generated_log_output_is_unchanged() -> None:
    lines = generated_log()
    assert postfix_digest(lines) == GENERATED
    # Chunking is no part of the result: one line at a time gives the same.
    assert postfix_digest(lines, chunk=1) == GENERATED


# Recorded on the parser before its hot loop was rewritten for speed.
GENERATED = "4009:560bf23160c7500d"
PIXELPARK = "180:6edb0ab5cf0c5dd8"
LIGHTMETER = "39:c5edc9afd05d47b0"
EXIM = "3:f1c89f2dbece8a67"


def text_lines(raw: bytes) -> list[str]:
    return raw.decode("utf-8", "replace").splitlines(keepends=True)


@needs_samples
def test_pixelpark_sample_output_is_unchanged() -> None:
    raw = lzma.decompress(
        (SAMPLES / "postfix" / "pixelpark_postfix-logsums_test_mail.log.xz").read_bytes()
    )
    lines = text_lines(raw)
    assert len(lines) == 69_861
    assert postfix_digest(lines, chunk=1 << 13) == PIXELPARK


def lightmeter_logs() -> Iterator[list[str]]:
    folder = SAMPLES / "postfix" / "lightmeter" / "individual_files"
    for path in sorted(folder.glob("*.log")):
        yield text_lines(path.read_bytes())
    with tarfile.open(SAMPLES / "postfix" / "lightmeter" / "complete.tar.gz") as tar:
        members = {m.name.rsplit("/", 1)[-1]: m for m in tar.getmembers() if m.isfile()}
        parts = []
        for name in ("mail.log.1", "mail.log"):
            fh = tar.extractfile(members[name])
            assert fh is not None
            parts.append(fh.read())
        yield text_lines(b"".join(parts))
    for name in ("pixelpark_excerpt_flows.log", "postfix_tls_line_variants.txt"):
        yield text_lines((SAMPLES / "postfix" / name).read_bytes())


@needs_samples
def test_other_postfix_samples_output_is_unchanged() -> None:
    digests = [postfix_digest(lines, chunk=7) for lines in lightmeter_logs()]
    combined = hashlib.sha256(" ".join(digests).encode()).hexdigest()[:16]
    assert f"{len(digests)}:{combined}" == LIGHTMETER


@needs_samples
def test_exim_samples_output_is_unchanged() -> None:
    digests = []
    for path in sorted((SAMPLES / "exim").glob("*.log")):
        lines = text_lines(path.read_bytes())
        digests.append(run(EximParser(host="mx"), lines, 5))
    combined = hashlib.sha256(" ".join(digests).encode()).hexdigest()[:16]
    assert f"{len(digests)}:{combined}" == EXIM


def test_a_digest_sees_one_changed_field() -> None:
    lines = generated_log()
    changed = [line.replace("TLSv1.2 with", "TLSv1.3 with", 1) for line in lines]
    assert postfix_digest(changed) != postfix_digest(lines)
