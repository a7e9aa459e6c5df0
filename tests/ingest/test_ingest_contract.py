"""Every trace the parsers make passes the API's own trace validation (service.core.traces)."""

from __future__ import annotations

import lzma
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from service.core.traces import KNOWN_FIELDS, IngestWindow, TraceError, normalize_trace
from service.ingest.exim import EximParser
from service.ingest.postfix import PostfixParser
from service.ingest.syslog import TimestampParser

from .exim_blocked_log import generate as generate_exim_blocked
from .support import FIXTURES, SHARED, feed_all
from .transport_log import generate

# Any time is fine here: this checks fields, not the retention window.
WINDOW = IngestWindow(datetime(1990, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


# The transport security fields as agreed with the API (issue 15). The API's validation
# learns them in a change of its own; a field it does not know yet is held to the agreement
# here instead, and the rest of the trace to the API's code. Once it knows them all, every
# field goes through the API's code and this table only adds its own check.
AGREED: dict[str, Callable[[Any], bool]] = {
    "tls_auth": lambda v: v in {"verified", "trusted", "untrusted", "anonymous"},
    "tls_policy": lambda v: v in {"dane", "mta-sts", "verify", "secure", "encrypt", "may", "none"},
    "tls_downgraded": lambda v: v is True,
    "outcome": lambda v: v == "blocked",
    "blocked_reason": lambda v: isinstance(v, str) and 0 < len(v) <= 998 and v.isprintable(),
}


def assert_all_valid(traces: list[dict]) -> None:  # type: ignore[type-arg]
    assert traces
    for trace in traces:
        for name in trace.keys() & AGREED.keys():
            assert AGREED[name](trace[name]), f"{name}: {trace[name]!r} in {trace}"
        assert ("outcome" in trace) == ("blocked_reason" in trace), trace
        pending = (trace.keys() & AGREED.keys()) - KNOWN_FIELDS
        try:
            normalize_trace({k: v for k, v in trace.items() if k not in pending}, WINDOW)
        except TraceError as exc:  # pragma: no cover - the message is the point
            pytest.fail(f"{exc.field}: {exc.message} in {trace}")


def test_fixture_traces_are_valid() -> None:
    lines = (FIXTURES / "postfix_scenarios.log").read_text().splitlines(True)
    assert_all_valid(feed_all(PostfixParser(TimestampParser(year=2025)), lines))
    lines = (FIXTURES / "exim_mainlog.log").read_text().splitlines(True)
    assert_all_valid(feed_all(EximParser(), lines))


def test_transport_security_traces_are_valid() -> None:
    """Every class, blocked records included (tests/ingest/transport_log.py)."""
    traces = feed_all(PostfixParser(TimestampParser()), generate(messages_per_class=1).lines)
    assert any(t.get("outcome") == "blocked" for t in traces)
    assert_all_valid(traces)


def test_exim_blocked_records_are_valid() -> None:
    """Exim's blocked records (tests/ingest/exim_blocked_log.py), with and without a host."""
    traces = feed_all(EximParser(host="mx1"), generate_exim_blocked().lines)
    assert sum(1 for t in traces if t.get("outcome") == "blocked") > 1
    assert_all_valid(traces)


def test_odd_peers_are_omitted_not_sent_invalid() -> None:
    lines = [
        "Mar  3 10:00:01 mx1 postfix/smtpd[1]: connect from mail_x.example[2001:DB8::5]\n",
        "Mar  3 10:00:02 mx1 postfix/smtpd[1]: AAAA1: client=mail_x.example[2001:DB8::5]\n",
        "Mar  3 10:00:02 mx1 postfix/qmgr[2]: AAAA1: from=<a@[192.0.2.1]>, size=1, nrcpt=1\n",
    ]
    (trace,) = feed_all(PostfixParser(TimestampParser(year=2025)), lines)
    assert trace["remote_ip"] == "2001:db8::5"
    assert "remote_host" not in trace  # underscores are not valid in a domain name
    assert "sender_domain" not in trace  # an address literal is not a domain
    assert_all_valid([trace])


@pytest.mark.skipif(not (SHARED / "samples").is_dir(), reason="shared/ samples are not present")
def test_real_sample_traces_are_valid() -> None:
    path = SHARED / "samples" / "postfix" / "pixelpark_postfix-logsums_test_mail.log.xz"
    with lzma.open(path, "rt", errors="replace") as fh:
        assert_all_valid(feed_all(PostfixParser(), fh.read().splitlines(True)))
    traces = []
    for path in sorted(
        (SHARED / "samples" / "postfix" / "lightmeter" / "individual_files").glob("*.log")
    ):
        traces += feed_all(
            PostfixParser(TimestampParser(year=2021)),
            path.read_text(errors="replace").splitlines(True),
        )
    assert_all_valid(traces)


def test_text_the_api_refuses_is_removed_not_sent() -> None:
    """A log may hold characters the API's text rule refuses (format characters, separators,
    C1 controls) or a reason with nothing in it: the parser sends what remains, in NFC, so the
    message is counted instead of the whole trace being refused."""
    sent = ("Mar  3 10:00:0{s} mx1 postfix/smtp[3]: {qid}: to=<r@far.example>, "
            "relay=mx.far.example[192.0.2.1]:25, delay=1, delays=0/0/1/0, tls=!dane, "
            "dsn=4.7.5, status=deferred ({reason})\n")  # fmt: skip
    long_reason = "TLS is required, but was not offered by host " + "\u2adc" * 990
    lines = [
        "Mar  3 10:00:01 mx1 postfix/pickup[1]: AAAA1: uid=1000 from=<app>\n",
        "Mar  3 10:00:01 mx1 postfix/cleanup[2]: AAAA1: message-id=<a\u200bb\u202e@x\x85>\n",
        "Mar  3 10:00:01 mx1 postfix/qmgr[4]: AAAA1: from=<a@ours.example>, size=1, nrcpt=1\n",
        sent.format(s=2, qid="AAAA1", reason="Server certificate\u2028not verified\ufeff"),
        sent.format(s=3, qid="AAAA2", reason=""),
        sent.format(s=4, qid="AAAA3", reason="\u200b\x07"),
        sent.format(s=5, qid="AAAA4", reason=long_reason),
    ]
    traces = feed_all(PostfixParser(TimestampParser(year=2025)), lines)
    assert_all_valid(traces)
    reasons = [t["blocked_reason"] for t in traces]
    assert reasons[:3] == ["Server certificatenot verified", "(no reason logged)",
                           "(no reason logged)"]  # fmt: skip
    assert len(reasons[3]) == 998  # cut after NFC, which makes each U+2ADC two characters
