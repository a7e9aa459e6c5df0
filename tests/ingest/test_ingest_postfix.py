"""Postfix correlation on a hand-written log whose expected traces are listed line by line."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from service.ingest.postfix import Limits, PostfixParser, service_of
from service.ingest.syslog import TimestampParser

from .support import FIXTURES, feed_all


def parse_fixture(name: str = "postfix_scenarios.log", **kw):  # type: ignore[no-untyped-def]
    parser = PostfixParser(TimestampParser(year=2025), **kw)
    lines = (FIXTURES / name).read_text().splitlines(keepends=True)
    return parser, feed_all(parser, lines)


def by_ip(traces, direction):  # type: ignore[no-untyped-def]
    return {t["remote_ip"]: t for t in traces if t["direction"] == direction}


def test_inbound_tls_per_session() -> None:
    _, traces = parse_fixture()
    inbound = [t for t in traces if t["direction"] == "inbound"]
    got = sorted((t["remote_ip"], t["tls_version"]) for t in inbound)
    assert got == sorted(
        [
            ("192.0.2.10", "TLS1.2"),  # first session of smtpd[200]
            ("192.0.2.20", "none"),  # second session of the same pid: no TLS line of its own
            ("192.0.2.30", "TLS1.0"),  # TLSv1, interleaved with smtpd[202]
            ("192.0.2.40", "TLS1.1"),
            ("192.0.2.50", "TLS1.3"),  # before the amavis loop
            ("192.0.2.60", "none"),  # reused queue id A1A1A1A1A1
            ("198.51.100.77", "TLS1.3"),  # submission
        ]
    )


def test_amavis_reinjection_is_not_a_new_message() -> None:
    parser, traces = parse_fixture()
    assert not any(t.get("remote_ip", "").startswith("127.") for t in traces)
    assert parser.kinds["loopback_client"] == 1
    # The filtered message still goes out once, from its re-injected queue id.
    zeta = [t for t in traces if t.get("remote_ip") == "203.0.113.5"]
    assert [(t["direction"], t["tls_version"]) for t in zeta] == [("outbound", "TLS1.3")]
    # Its inbound trace got the recipient from the delivery to the filter.
    assert by_ip(traces, "inbound")["192.0.2.50"]["recipient_domain"] == "zeta.example"


def test_outbound_cached_connection_and_no_leak_between_processes() -> None:
    _, traces = parse_fixture()
    eta = [t for t in traces if t.get("remote_ip") == "203.0.113.7"]
    # smtp[301]: TLS line, then two messages over that connection (one with two recipients);
    # smtp[302] delivers a third message to the same MX without a TLS line of its own.
    got = sorted((t.get("message_id", "-"), t["tls_version"]) for t in eta)
    assert got == [("-", "none"), ("seven@ours.example", "TLS1.2"), ("six@ours.example", "TLS1.2")]


def test_multi_instance_and_deferred() -> None:
    _, traces = parse_fixture()
    out = by_ip(traces, "outbound")
    assert out["198.51.100.9"]["tls_version"] == "TLS1.3"  # postfix-out/smtp
    assert out["198.51.100.9"]["remote_host"] == "relay.theta.example"
    assert "198.51.100.11" not in out  # deferred is not delivered
    assert out["203.0.113.20"]["tls_version"] == "none"


def test_counts_and_line_accounting() -> None:
    parser, traces = parse_fixture()
    counts = Counter((t["direction"], t["tls_version"]) for t in traces)
    assert counts == {
        ("inbound", "TLS1.0"): 1,
        ("inbound", "TLS1.1"): 1,
        ("inbound", "TLS1.2"): 1,
        ("inbound", "TLS1.3"): 2,
        ("inbound", "none"): 2,
        ("outbound", "TLS1.2"): 2,
        ("outbound", "TLS1.3"): 2,
        ("outbound", "none"): 2,
    }
    # Every line is accounted for exactly once: used, or skipped under one kind.
    assert parser.used + sum(parser.kinds.values()) == parser.lines == 89
    assert parser.kinds == {
        "postscreen": 4,
        "smtpd_other": 2,
        "unrelated_program": 2,
        "blank": 1,
        "not_syslog": 1,
        "postfix_other": 1,
        "delivery_not_sent": 1,
        "loopback_client": 1,
        "repeat_delivery": 1,
    }


def test_trace_fields() -> None:
    _, traces = parse_fixture()
    first = by_ip(traces, "inbound")["192.0.2.10"]
    assert first == {
        "id": first["id"],
        "timestamp": "2025-03-03T10:00:02+00:00",
        "direction": "inbound",
        "connector": None,
        "tls_version": "TLS1.2",
        "cipher": "ECDHE-RSA-AES256-GCM-SHA384",
        "tls_auth": "anonymous",  # `Anonymous TLS connection established from`
        "remote_host": "mail.alpha.example",
        "remote_ip": "192.0.2.10",
        "sender_domain": "alpha.example",  # lowercased from News@Alpha.Example
        "recipient_domain": "ours.example",
        "message_id": "one@alpha.example",
        "size_bytes": 2048,
    }
    second = by_ip(traces, "inbound")["192.0.2.20"]
    assert "remote_host" not in second  # `unknown` is not a hostname
    assert all(v is not None for t in traces for k, v in t.items() if k != "connector")


def test_queue_id_reuse_gives_distinct_ids() -> None:
    _, traces = parse_fixture()
    inbound = by_ip(traces, "inbound")
    a, b = inbound["192.0.2.10"], inbound["192.0.2.60"]
    assert a["id"] != b["id"]
    assert len({t["id"] for t in traces}) == len(traces)


def test_ids_are_stable_across_runs_and_overlapping_files() -> None:
    _, first = parse_fixture()
    lines = (FIXTURES / "postfix_scenarios.log").read_text().splitlines(keepends=True)
    # A rotated pair that overlaps: the second file repeats the last 40 lines of the first.
    parser = PostfixParser(TimestampParser(year=2025))
    again = feed_all(parser, lines[:60]) + feed_all(
        PostfixParser(TimestampParser(year=2025)), lines[20:]
    )
    assert {t["id"] for t in first} == {t["id"] for t in again}


def test_inbound_waits_for_qmgr_and_is_emitted_on_removed() -> None:
    parser = PostfixParser(TimestampParser(year=2025))
    lines = [
        "Mar  3 10:00:01 mx1 postfix/smtpd[1]: connect from a.example[192.0.2.1]\n",
        "Mar  3 10:00:02 mx1 postfix/smtpd[1]: AAAA1: client=a.example[192.0.2.1]\n",
    ]
    for line in lines:
        parser.feed(line)
    assert parser.take() == []  # the sender is not known yet
    parser.feed("Mar  3 10:00:02 mx1 postfix/qmgr[2]: AAAA1: from=<s@b.example>, size=1, nrcpt=1\n")
    assert parser.take() == []
    parser.feed("Mar  3 10:00:03 mx1 postfix/qmgr[2]: AAAA1: removed\n")
    (trace,) = parser.take()
    assert trace["sender_domain"] == "b.example"


def test_inbound_expires_after_hold_window() -> None:
    parser = PostfixParser(TimestampParser(year=2025), limits=Limits(hold=60, sweep_every=1))
    parser.feed("Mar  3 10:00:02 mx1 postfix/smtpd[1]: AAAA1: client=a.example[192.0.2.1]\n")
    parser.feed("Mar  3 10:00:30 mx1 postfix/smtpd[9]: connect from c.example[192.0.2.3]\n")
    assert parser.take() == []
    parser.feed("Mar  3 10:01:03 mx1 postfix/smtpd[9]: connect from c.example[192.0.2.3]\n")
    (trace,) = parser.take()
    assert trace["remote_ip"] == "192.0.2.1"


def test_tls_line_without_connect_starts_the_session() -> None:
    parser = PostfixParser(TimestampParser(year=2025))
    traces = feed_all(
        parser,
        [
            "Mar  3 10:00:01 mx1 postfix/smtpd[1]: Anonymous TLS connection established from "
            "a.example[192.0.2.1]: TLSv1.2 with cipher X (256/256 bits)\n",
            "Mar  3 10:00:02 mx1 postfix/smtpd[1]: AAAA1: client=a.example[192.0.2.1]\n",
        ],
    )
    assert [t["tls_version"] for t in traces] == ["TLS1.2"]


def test_bsd_year_boundary() -> None:
    ts = TimestampParser(now=lambda: datetime(2026, 1, 1, 0, 10, tzinfo=UTC))
    traces = feed_all(
        PostfixParser(ts), (FIXTURES / "postfix_year_boundary.log").read_text().splitlines(True)
    )
    assert sorted(t["timestamp"] for t in traces) == [
        "2025-12-31T23:59:59+00:00",
        "2026-01-01T00:00:03+00:00",
    ]


def test_unknown_tls_spelling_is_counted_not_sent() -> None:
    parser = PostfixParser(TimestampParser(year=2025))
    traces = feed_all(
        parser,
        [
            "Mar  3 10:00:01 mx1 postfix/smtpd[1]: connect from a.example[192.0.2.1]\n",
            "Mar  3 10:00:01 mx1 postfix/smtpd[1]: Anonymous TLS connection established from "
            "a.example[192.0.2.1]: TLSv9.9 with cipher X (256/256 bits)\n",
            "Mar  3 10:00:02 mx1 postfix/smtpd[1]: AAAA1: client=a.example[192.0.2.1]\n",
        ],
    )
    assert traces == []
    assert parser.kinds == {"unknown_tls_version": 1}


def test_service_of() -> None:
    assert service_of("postfix/submission/smtpd") == "submission/smtpd"
    assert service_of("postfix-out/smtp") == "smtp"
    assert service_of("postfix/smtpd") == "smtpd"


def test_impossible_dates_are_counted_not_fatal() -> None:
    parser = PostfixParser(TimestampParser(year=2025))
    traces = feed_all(
        parser,
        [
            "Feb 30 10:00:01 mx1 postfix/smtpd[1]: connect from a.example[192.0.2.1]\n",
            "Feb 30 10:00:02 mx1 postfix/smtpd[1]: AAAA1: client=a.example[192.0.2.1]\n",
            "Mar xx 10:00:02 mx1 postfix/smtp[2]: BBBB2: to=<a@b.example>, "
            "relay=mx.b.example[192.0.2.9]:25, delay=1, dsn=2.0.0, status=sent (ok)\n",
            "2025-13-01T10:00:03+00:00 mx1 postfix/smtpd[3]: CCCC3: client=c.example[192.0.2.3]\n",
            "Mar  3 10:00:04 mx1 postfix/smtpd[4]: DDDD4: client=d.example[192.0.2.4]\n",
        ],
    )
    assert [t["remote_ip"] for t in traces] == ["192.0.2.4"]
    assert parser.kinds == {"bad_timestamp": 3}
