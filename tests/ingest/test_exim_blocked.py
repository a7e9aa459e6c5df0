"""Exim deliveries deferred (`==`) or failed (`**`) for Exim's own TLS policy: blocked records.

One record per message and relay whatever the number of retries and recipients, every field
equal to the truth of the generated log (exim_blocked_log), the same ids in every run, and no
record for other deferrals, even those whose remote reply speaks of TLS.
"""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from service.ingest.command import ingest
from service.ingest.connector_map import parse_connector_map
from service.ingest.exim import EximParser
from service.ingest.transport_security import exim_tls_policy_block

from .exim_blocked_log import BLOCKED, NOT_BLOCKED, RETRIES, generate
from .support import SHARED, feed_all

CONNECTORS = parse_connector_map(
    '[[rule]]\nconnector = "Internet out"\ntype = "onpremises"\ndirection = "outbound"\n'
    'router = "dnslookup"\ntransport = "remote_smtp"\n'
)


def parse(lines: list[str], **kw: Any) -> tuple[EximParser, list[dict[str, Any]]]:
    parser = EximParser(host="mx1", **kw)
    return parser, feed_all(parser, lines)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("a TLS session is required, but the server did not offer TLS support", (True, None)),
        ("a TLS session is required, but an attempt to start TLS failed", (True, None)),
        ("TLS session: (certificate verification failed): certificate invalid",
         (True, "verify")),
        ("TLS session: (SSL_connect): error:0A000086:SSL routines::certificate verify failed",
         (True, "verify")),
        ("TLS session: (tls lib connect fn): timed out", (True, None)),
        ("TLS session: (SSL_connect) Server certificate revoked", (True, None)),
        ("DANE error: tlsa lookup FAIL", (True, "dane")),
        ("DANE error: mx.a.example lookup not DNSSEC", (True, "dane")),
        # The remote server's words are its own policy, not Exim's, whatever they say.
        ("SMTP error from remote mail server after RCPT TO:<r@a.example>: 450 4.7.0 a TLS "
         "session is required", (False, None)),
        ("SMTP error from remote mail server after STARTTLS: 454 TLS session: unavailable",
         (False, None)),
        ("Connection refused", (False, None)),
        ("retry timeout exceeded", (False, None)),
    ],
)  # fmt: skip
def test_which_exim_reasons_are_a_tls_policy(
    reason: str, expected: tuple[bool, str | None]
) -> None:
    assert exim_tls_policy_block(reason) == expected


def test_every_blocked_message_is_one_record_equal_to_the_truth() -> None:
    log = generate()
    parser, traces = parse(log.lines, connectors=CONNECTORS)
    blocked = [t for t in traces if t.get("outcome") == "blocked"]
    got = {t["recipient_domain"]: {k: v for k, v in t.items() if k != "id"} for t in blocked}
    assert len(got) == len(blocked)  # one record per message
    assert got == log.truth
    # Every other deferral is only counted; the plaintext fallback is a delivery.
    (delivered,) = [t for t in traces if t.get("outcome") is None]
    assert delivered["tls_version"] == "none"
    deferrals = sum(RETRIES if flag == "==" else 1 for flag, *_ in BLOCKED)
    assert parser.kinds["repeat_blocked"] == 2 * deferrals - len(BLOCKED)
    assert parser.kinds["delivery_not_sent"] == RETRIES * len(NOT_BLOCKED) + sum(
        1 for flag, *_ in BLOCKED if flag == "=="
    )  # the other deferrals, and the `retry timeout exceeded` failures
    assert parser.used + sum(parser.kinds.values()) == parser.lines
    assert parser.state_size() == len(NOT_BLOCKED)  # `Completed` releases messages


def test_ids_are_the_same_in_every_run_and_distinct() -> None:
    lines = generate().lines
    _, first = parse(lines)
    _, again = parse(lines)
    ids = [t["id"] for t in first]
    assert ids == [t["id"] for t in again]
    assert len(set(ids)) == len(ids)
    other_server = feed_all(EximParser(host="mx2"), lines)
    assert not set(ids) & {t["id"] for t in other_server}


def test_a_message_blocked_at_two_relays_is_two_records() -> None:
    deferral = (
        "2025-03-03 10:0{m}:00 1tA001-000000000a1-0001 == r@far.example R=dnslookup "
        "T=remote_smtp defer (-38) H={mx} [{ip}]: a TLS session is required, but the server "
        "did not offer TLS support\n"
    )
    parser, traces = parse([
        deferral.format(m=1, mx="mx1.far.example", ip="192.0.2.1"),
        deferral.format(m=2, mx="mx2.far.example", ip="192.0.2.2"),
        # mx1 again, at another of its addresses: the same relay
        deferral.format(m=3, mx="mx1.far.example", ip="192.0.2.9"),
        deferral.format(m=4, mx="localhost", ip="127.0.0.1"),
    ])  # fmt: skip
    assert [t["remote_host"] for t in traces] == ["mx1.far.example", "mx2.far.example"]
    assert parser.kinds == {"repeat_blocked": 1, "loopback_relay": 1}


def test_a_failure_logged_with_its_delivery_time_keeps_the_reason_alone() -> None:
    _, (trace,) = parse([
        "2025-03-03 10:00:00 1tA001-000000000a1-0001 ** r@far.example R=dnslookup "
        "T=remote_smtp : DANE error: mx.far.example lookup not DNSSEC DT=0.2s\n"
    ])  # fmt: skip
    assert trace["blocked_reason"] == "DANE error: mx.far.example lookup not DNSSEC"
    assert trace["remote_host"] == "mx.far.example"


def test_deferrals_of_messages_never_seen_arriving_stay_bounded() -> None:
    parser = EximParser(host="mx1", max_messages=10)
    feed_all(parser, [
        f"2025-03-03 10:00:00 1tA{n:03d}-000000000a1-0001 == r@far.example R=dnslookup "
        f"T=remote_smtp defer (-38) H=mx.far.example [192.0.2.1]: a TLS session is required, "
        "but the server did not offer TLS support\n"
        for n in range(50)
    ])  # fmt: skip
    assert parser.state_size() == 10 and parser.evicted == 40


def test_a_long_reason_is_cut_and_cleaned() -> None:
    reason = "TLS session: (SSL_connect): error\x07 " + "x" * 2000
    _, (trace,) = parse([
        "2025-03-03 10:00:00 1tA001-000000000a1-0001 == r@far.example R=dnslookup "
        f"T=remote_smtp defer (-37) H=mx.far.example [192.0.2.1]: {reason}\n"
    ])  # fmt: skip
    assert len(trace["blocked_reason"]) == 998
    assert trace["blocked_reason"].startswith("TLS session: (SSL_connect): error xxx")


def test_the_summary_counts_exim_blocked_mail(tmp_path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "mainlog"
    log.write_text("".join(generate().lines))
    result = CliRunner().invoke(ingest, [str(log), "--format", "exim", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert f"blocked {len(BLOCKED)}" in result.stderr


EXIM_SAMPLES = SHARED / "samples" / "exim"


@pytest.mark.skipif(not EXIM_SAMPLES.is_dir(), reason="shared/ samples are not present")
def test_the_real_samples_still_parse() -> None:
    paths = sorted(EXIM_SAMPLES.glob("*.log"))
    assert "exim_testsuite_log_2012.log" in {p.name for p in paths}  # not vacuous
    for path in paths:
        lines = path.read_text().splitlines(keepends=True)
        parser, traces = parse(lines)
        assert parser.used + sum(parser.kinds.values()) == parser.lines, path.name
        blocked = [t for t in traces if t.get("outcome") == "blocked"]
        # Reading deferrals adds blocked records and changes nothing else.
        undelivered = [x for x in lines if " == " not in x and " ** " not in x]
        _, others = parse(undelivered)
        assert [t for t in traces if t.get("outcome") is None] == others, path.name
        if path.name == "exim_testsuite_log_2012.log":  # hosts_require_tls, a bad certificate
            assert [(t["recipient_domain"], t.get("tls_policy"), t["blocked_reason"])
                    for t in blocked] == [
                ("test.ex", "verify",
                 "TLS session: (certificate verification failed): certificate invalid"),
            ]  # fmt: skip
        else:
            assert blocked == [], path.name
