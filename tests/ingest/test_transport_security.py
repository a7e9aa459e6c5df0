"""Peer authentication, TLS policy and blocked mail from Postfix and Exim logs.

The generated log below gives every message a known class (how its peer was authenticated,
which policy applied, or why it was blocked); every trace the parser emits must carry exactly
the transport security fields of that class, and a message deferred again and again for a TLS
policy must give one blocked record per relay, whatever the number of retries.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from service.ingest.command import ingest
from service.ingest.connector_map import parse_connector_map
from service.ingest.exim import EximParser
from service.ingest.postfix import PostfixParser
from service.ingest.syslog import TimestampParser
from service.ingest.transport_security import TlsFeatures, tls_features, tls_policy_block

from .support import SHARED, feed_all
from .transport_log import BLOCKED, generate, key_of

FIELDS = ("tls_version", "tls_auth", "tls_policy", "tls_downgraded", "outcome", "blocked_reason")


# -- the `tls=` field, form by form (postconf(5), smtp_log_tls_feature_status) ------------------


@pytest.mark.parametrize(
    ("value", "required", "applied", "downgraded", "violated"),
    [
        ("none", "none", "none", False, False),
        ("may", "may", "may", False, False),
        ("may?", "may", "may", False, False),  # undecided: no connection was made
        ("may:none", "may", "none", True, False),  # no STARTTLS: plaintext, as may allows
        ("encrypt", "encrypt", "encrypt", False, False),
        ("fingerprint", "verify", "verify", False, False),
        ("dane", "dane", "dane", False, False),
        ("dane?", "dane", "dane", False, False),
        ("dane:halfdane", "dane", "dane", True, False),  # MX records not DNSSEC-signed
        ("dane:encrypt", "dane", "encrypt", True, False),  # no usable TLSA record
        ("dane:none", "dane", "none", True, False),
        ("dane-only", "dane", "dane", False, False),
        ("verify", "verify", "verify", False, False),
        ("secure", "secure", "secure", False, False),
        ("!dane", "dane", "dane", False, True),  # the connection was not used
        ("!secure", "secure", "secure", False, True),
        ("unknown?", None, None, False, False),  # the policy lookup failed
        ("dane/requiretls", "dane", "dane", False, False),
        ("dane/requiretls?", "dane", "dane", False, False),
        ("may/requiretls:nocertmatch", "may", "may", False, False),
        ("may/requiretls:none", "may", "may", False, False),
        ("may/requiretls:nomatch", "may", "may", False, False),
        ("dane/!requiretls:nocertmatch", "dane", "dane", False, True),
        ("dane/!requiretls:nostarttls", "dane", "dane", False, True),
        ("encrypt/!requiretls:noencryption", "encrypt", "encrypt", False, True),
        ("secure/!requiretls:none", "secure", "secure", False, True),
    ],
)
def test_every_documented_tls_form(
    value: str, required: str | None, applied: str | None, downgraded: bool, violated: bool
) -> None:
    assert tls_features(value) == TlsFeatures(required, applied, downgraded, violated)


@pytest.mark.parametrize(
    "value",
    ["", "bogus", "dane:bogus", "dane/bogus", "!dane?", "dane:none:may", "dane//requiretls",
     "requiretls", "dane/requiretls:bogus", "DANE", "unknown:may"],
)  # fmt: skip
def test_undocumented_tls_forms_are_not_guessed(value: str) -> None:
    assert tls_features(value) is None


@pytest.mark.parametrize(
    ("reason", "tls", "expected"),
    [
        ("Server certificate not verified", None, (True, None)),
        ("Server certificate not verified", "!verify", (True, "verify")),
        ("TLS is required, but was not offered by host mx.a.example[192.0.2.1]", None,
         (True, None)),
        ("TLS is required, but our TLS engine is unavailable", "!encrypt", (True, "encrypt")),
        ("TLSA lookup error for mx.a.example:25", None, (True, "dane")),
        ("no TLSA records found", None, (True, "dane")),
        ("Cannot start TLS: handshake failure", "dane?", (True, "dane")),
        ("Cannot start TLS: handshake failure", "may?", (False, None)),  # plaintext was allowed
        ("Cannot start TLS: handshake failure", None, (False, None)),  # level not logged
        ("Sender requested REQUIRETLS, but no server was found that supports REQUIRETLS",
         "dane/!requiretls:none", (True, "dane")),
        ("connect to mx.a.example[192.0.2.1]:25: Connection timed out", None, (False, None)),
        ("connect to mx.a.example[192.0.2.1]:25: Connection timed out", "!dane", (True, "dane")),
        # The remote server's words are its own policy, not ours.
        ("host mx.a.example[192.0.2.1] said: 450 4.7.1 TLS is required, but was not used "
         "(in reply to RCPT TO command)", "may", (False, None)),
    ],
)  # fmt: skip
def test_which_reasons_are_a_tls_policy(
    reason: str, tls: str | None, expected: tuple[bool, str | None]
) -> None:
    assert tls_policy_block(reason, tls_features(tls) if tls else None) == expected


# -- a generated Postfix log whose every message has a known class (transport_log) --------------


def parse(lines: list[str]) -> tuple[PostfixParser, list[dict[str, Any]]]:
    parser = PostfixParser(TimestampParser())
    return parser, feed_all(parser, lines)


CONNECTORS = """
[[rule]]
connector = "Partners in"
type = "partner"
direction = "inbound"
ip = "192.0.2.0/24"

[[rule]]
connector = "Internet out"
type = "onpremises"
direction = "outbound"
recipient_domain = "example"
"""
CONNECTOR_OF = {"inbound": ("Partners in", "partner"), "outbound": ("Internet out", "onpremises")}


def test_every_trace_carries_the_truth_of_its_message() -> None:
    log = generate()
    parser = PostfixParser(TimestampParser(), connectors=parse_connector_map(CONNECTORS))
    traces = feed_all(parser, log.lines)
    truth = {(t.direction, t.outcome, t.recipient_domain): t for t in log.truth}
    got = {key_of(t): t for t in traces}
    assert len(got) == len(traces)  # one trace per message hop, one blocked record per message
    assert got.keys() == truth.keys()
    for key, t in got.items():
        expected = truth[key].fields
        names = FIELDS + (("remote_host",) if "remote_host" in expected else ())
        assert {k: t.get(k) for k in names} == {k: expected.get(k) for k in names}, key
        # Blocked records too (even one whose relay is unknown): mapped as delivered mail is.
        assert (t["connector"], t["connector_type"]) == CONNECTOR_OF[t["direction"]], key
    # Not vacuous: every class is there, in both directions.
    classes = Counter((t["direction"], t.get("tls_auth"), t.get("tls_policy")) for t in traces)
    assert classes["outbound", "verified", "dane"] == 3 * 3
    assert classes["inbound", "anonymous", None] == 3
    assert sum(1 for t in traces if t.get("outcome") == "blocked") == 3 * len(BLOCKED)
    assert parser.unrecognised == {}
    assert parser.used + sum(parser.kinds.values()) == parser.lines


def test_a_retried_deferral_is_one_blocked_record_with_a_stable_id() -> None:
    log = generate(messages_per_class=1)
    _, first = parse(log.lines)
    _, again = parse(log.lines)  # a separate run over the same log
    blocked = [t for t in first if t.get("outcome") == "blocked"]
    retried = [t for t in blocked if t["blocked_reason"] == "Server certificate not verified"]
    assert len(retried) == 1  # three attempts, two recipients each: one record
    assert Counter(t["recipient_domain"] for t in blocked).most_common(1)[0][1] == 1
    assert [t["id"] for t in first] == [t["id"] for t in again]
    assert len({t["id"] for t in first}) == len(first)
    # The first attempt's time: later attempts add nothing.
    retried_line = next(x for x in log.lines if "Server certificate not verified" in x)
    assert retried[0]["timestamp"] == retried_line.split(" ", 1)[0]


def test_blocked_at_another_relay_is_another_record_and_delivery_still_counts() -> None:
    lines = [
        "2025-03-03T10:00:00+00:00 mx postfix/pickup[1]: AAAA: uid=1000 from=<app>\n",
        "2025-03-03T10:00:00+00:00 mx postfix/qmgr[2]: AAAA: from=<a@ours.example>, size=5, "
        "nrcpt=1 (queue active)\n",
        "2025-03-03T10:00:01+00:00 mx postfix/smtp[3]: AAAA: to=<r@far.example>, "
        "relay=mx1.far.example[192.0.2.1]:25, delay=1, delays=0/0/1/0, tls=!dane, dsn=4.7.5, "
        "status=deferred (Server certificate not verified)\n",
        "2025-03-03T10:00:02+00:00 mx postfix/smtp[3]: AAAA: to=<r@far.example>, "
        "relay=mx2.far.example[192.0.2.2]:25, delay=1, delays=0/0/1/0, tls=!dane, dsn=4.7.5, "
        "status=deferred (Server certificate not verified)\n",
        # A later retry reaches mx1 at another address: still mx1, not a new record.
        "2025-03-03T11:00:01+00:00 mx postfix/smtp[4]: AAAA: to=<r@far.example>, "
        "relay=mx1.far.example[192.0.2.9]:25, delay=1, delays=0/0/1/0, tls=!dane, dsn=4.7.5, "
        "status=deferred (Server certificate not verified)\n",
        "2025-03-03T12:00:00+00:00 mx postfix/smtp[5]: Verified TLS connection established to "
        "mx3.far.example[192.0.2.3]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 "
        "bits)\n",
        "2025-03-03T12:00:01+00:00 mx postfix/smtp[5]: AAAA: to=<r@far.example>, "
        "relay=mx3.far.example[192.0.2.3]:25, delay=1, delays=0/0/1/0, tls=dane, dsn=2.0.0, "
        "status=sent (250 ok)\n",
    ]
    parser, traces = parse(lines)
    got = [(t.get("outcome"), t.get("remote_host"), t.get("tls_auth")) for t in traces]
    assert got == [
        ("blocked", "mx1.far.example", None),
        ("blocked", "mx2.far.example", None),
        (None, "mx3.far.example", "verified"),
    ]
    assert parser.kinds["repeat_blocked"] == 1


def test_a_blocked_record_is_mapped_to_its_connector_and_keeps_a_clean_reason() -> None:
    mapping = parse_connector_map(
        '[[rule]]\nconnector = "Eta"\ntype = "partner"\ndirection = "outbound"\n'
        'recipient_domain = "eta.example"\n'
    )
    reason = "TLS is required, but was not offered by host mx.eta.example[192.0.2.7]\x07 " + (
        "x" * 2000
    )
    parser = PostfixParser(TimestampParser(), connectors=mapping)
    (trace,) = feed_all(parser, [
        "2025-03-03T10:00:00+00:00 mx postfix/smtp[3]: AAAA: to=<r@eta.example>, relay=none, "
        f"delay=1, delays=0/0/1/0, dsn=4.7.4, status=deferred ({reason})\n",
    ])  # fmt: skip
    assert (trace["connector"], trace["connector_type"]) == ("Eta", "partner")
    assert (trace["remote_host"], trace["remote_ip"]) == ("mx.eta.example", "192.0.2.7")
    assert len(trace["blocked_reason"]) == 998
    assert trace["blocked_reason"].startswith("TLS is required, but was not offered by host "
                                              "mx.eta.example[192.0.2.7] xxx")  # fmt: skip


def test_a_plaintext_tls_field_wins_over_an_earlier_tls_line() -> None:
    tls_line = (
        "2025-03-03T10:00:00+00:00 mx postfix/smtp[3]: Verified TLS connection established to "
        "mx.far.example[192.0.2.1]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\n"
    )
    sent = (
        "2025-03-03T10:00:01+00:00 mx postfix/smtp[3]: {qid}: to=<r@far.example>, "
        "relay=mx.far.example[192.0.2.1]:25, delay=1, delays=0/0/1/0, tls={tls}, dsn=2.0.0, "
        "status=sent (250 ok)\n"
    )
    _, traces = parse([tls_line, sent.format(qid="AAAA", tls="dane"),
                       sent.format(qid="BBBB", tls="may:none")])  # fmt: skip
    got = [(t["tls_version"], t.get("tls_auth"), t.get("tls_policy"), t.get("cipher"))
           for t in traces]  # fmt: skip
    assert got == [
        ("TLS1.3", "verified", "dane", "TLS_AES_256_GCM_SHA384"),
        ("none", None, "none", None),  # STARTTLS gone on the next connection: plaintext
    ]


def test_unknown_spellings_are_counted_and_the_field_omitted(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lines = [
        "2025-03-03T10:00:00+00:00 mx postfix/smtp[3]: Sideways TLS connection established to "
        "mx.far.example[192.0.2.1]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\n",
        "2025-03-03T10:00:01+00:00 mx postfix/smtp[3]: AAAA: to=<r@far.example>, "
        "relay=mx.far.example[192.0.2.1]:25, delay=1, delays=0/0/1/0, tls=quantum, dsn=2.0.0, "
        "status=sent (250 ok)\n",
    ]
    parser, (trace,) = parse(lines)
    assert trace["tls_version"] == "TLS1.3"
    assert "tls_auth" not in trace and "tls_policy" not in trace
    assert parser.unrecognised == {"tls_trust_word": 1, "tls_feature_status": 1}
    log = tmp_path / "mail.log"
    log.write_text("".join(lines))
    result = CliRunner().invoke(ingest, [str(log), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "TLS details not recognised (field omitted): 2" in result.stderr
    assert re.search(r"tls_feature_status +1\n", result.stderr)


def test_the_summary_shows_blocked_mail_apart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "mail.log"
    log.write_text("".join(generate(messages_per_class=1).lines))
    result = CliRunner().invoke(ingest, [str(log), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert f"blocked {len(BLOCKED)}" in result.stderr


# -- the sample lines: every variant Postfix writes ---------------------------------------------

VARIANTS = SHARED / "samples" / "postfix" / "postfix_tls_line_variants.txt"
_SOURCE = re.compile(r"^\[[^\]]+\] ")
_PEER_TO = re.compile(r"established to (\S+?\[[^\]]+\]:\d+):")
_PEER_FROM = re.compile(r"established from (\S*?)\[([^\]]+)\]")
_SYSLOG = re.compile(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d (\S+) (\S+?)\[(\d+)\]: (.*)$")


def sample_payloads() -> Iterator[str]:
    for line in VARIANTS.read_text().splitlines():
        if line and not line.startswith("#"):
            yield _SOURCE.sub("", line)


def expected_policy(value: str) -> dict[str, Any]:
    features = tls_features(value)
    assert features is not None, value
    out: dict[str, Any] = {"tls_policy": features.applied}
    if features.downgraded:
        out["tls_downgraded"] = True
    return out


@pytest.mark.skipif(not VARIANTS.is_file(), reason="shared/ samples are not present")
def test_every_sample_variant_parses() -> None:
    checked: Counter[str] = Counter()
    for payload in sample_payloads():
        syslog = _SYSLOG.match(payload)
        if syslog:  # a whole log line
            _host, program, pid, payload = syslog.groups()
        else:  # the payload of the client (smtp) or server (smtpd)
            client = "established to " in payload or ", tls=" in payload
            program, pid = ("postfix/smtp" if client else "postfix/smtpd"), "1"
        if "TLS connection established to " in payload:
            peer = _PEER_TO.search(payload)
            assert peer, payload
            word = payload.split(" ", 1)[0]
            prefix = f"Mar  3 10:00:00 mx {program}[{pid}]: "
            delivery_line = (f"Mar  3 10:00:01 mx {program}[{pid}]: AAAA: to=<r@far.example>, "
                             f"relay={peer.group(1)}, delay=1, delays=0/0/1/0, dsn=2.0.0, "
                             "status=sent (250 ok)\n")  # fmt: skip
            parser, traces = parse([prefix + payload + "\n", delivery_line])
            if "[127.0.0.1]" in peer.group(1):  # a content filter: read, but no mail flow
                assert traces == [] and parser.kinds == {"loopback_relay": 1}
                ((_version, _cipher, _epoch, auth),) = parser.tls_out.values()
                assert auth == word.lower()
            else:
                (trace,) = traces
                assert trace["tls_auth"] == word.lower(), payload
                assert trace["tls_version"] in {"TLS1.0", "TLS1.2", "TLS1.3"}, payload
            checked["outbound tls line"] += 1
        elif "TLS connection established from " in payload:
            peer = _PEER_FROM.search(payload)
            assert peer, payload
            word = payload.split(" ", 1)[0]
            session = f"Mar  3 10:00:00 mx {program}[{pid}]: "
            parser, (trace,) = parse([
                f"{session}connect from {peer.group(1)}[{peer.group(2)}]\n",
                f"{session}{payload}\n",
                f"{session}AAAA: client={peer.group(1)}[{peer.group(2)}]\n",
            ])  # fmt: skip
            assert trace["tls_auth"] == word.lower(), payload
            checked["inbound tls line"] += 1
        elif ", tls=" in payload:
            value = payload.split(", tls=", 1)[1].split(",", 1)[0]
            parser, (trace,) = parse([f"Mar  3 10:00:01 mx postfix/smtp[2]: {payload}\n"])
            got = {k: trace[k] for k in ("tls_policy", "tls_downgraded") if k in trace}
            assert got == expected_policy(value), payload
            checked["tls= delivery line"] += 1
        elif " " not in payload:  # a bare `tls=` value
            assert tls_features(payload) is not None, payload
            checked["tls= value"] += 1
        else:  # the counters of `disconnect from` (with or without their start)
            parser, traces = parse([f"Mar  3 10:00:01 mx postfix/smtpd[1]: {payload}\n"])
            assert traces == [] and parser.lines == 1, payload
            checked["other"] += 1
        assert parser.unrecognised == {}, payload
        assert parser.used + sum(parser.kinds.values()) == parser.lines
    assert checked == {"outbound tls line": 8, "inbound tls line": 2, "tls= delivery line": 6,
                       "tls= value": 6, "other": 4}  # fmt: skip


# -- Exim: CV= ---------------------------------------------------------------------------------

EXIM = [
    "2025-03-03 10:00:01 1tA001-000000000a1-0001 <= a@partner.example H=mx.partner.example "
    "[192.0.2.10]:41000 I=[198.51.100.1]:25 P=esmtps X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no "
    "S=1234 id=m1@partner.example\n",
    "2025-03-03 10:00:02 1tA002-000000000a2-0002 <= b@partner.example H=mx.partner.example "
    "[192.0.2.11]:41000 I=[198.51.100.1]:25 P=esmtps X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=yes "
    "S=1234 id=m2@partner.example\n",
    "2025-03-03 10:00:03 1tA003-000000000a3-0003 <= c@plain.example H=mx.plain.example "
    "[192.0.2.12]:41000 I=[198.51.100.1]:25 P=esmtp S=1234 id=m3@plain.example\n",
    "2025-03-03 10:00:04 1tA001-000000000a1-0001 => r@dane.example R=dnslookup T=remote_smtp "
    "H=mx.dane.example [203.0.113.5] X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=dane "
    'C="250 OK"\n',
    "2025-03-03 10:00:05 1tA002-000000000a2-0002 => r@pkix.example R=dnslookup T=remote_smtp "
    "H=mx.pkix.example [203.0.113.6] X=TLS1.2:ECDHE-RSA-AES256-GCM-SHA384:256 CV=yes "
    'C="250 OK"\n',
    "2025-03-03 10:00:06 1tA003-000000000a3-0003 => r@odd.example R=dnslookup T=remote_smtp "
    "H=mx.odd.example [203.0.113.7] X=TLS1.2:ECDHE-RSA-AES256-GCM-SHA384:256 CV=maybe "
    'C="250 OK"\n',
]


def test_exim_cv_gives_authentication_and_dane() -> None:
    parser = EximParser()
    traces = feed_all(parser, EXIM)
    got = {t["remote_ip"]: (t.get("tls_auth"), t.get("tls_policy")) for t in traces}
    assert got == {
        "192.0.2.10": ("untrusted", None),
        "192.0.2.11": ("verified", None),
        "192.0.2.12": (None, None),  # no TLS, no CV=
        "203.0.113.5": ("verified", "dane"),
        "203.0.113.6": ("verified", None),
        "203.0.113.7": (None, None),  # CV=maybe: nobody's spelling
    }
    assert parser.unrecognised == {"exim_cv": 1}
