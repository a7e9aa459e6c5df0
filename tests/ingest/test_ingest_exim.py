"""Exim mainlog: arrivals and remote deliveries, TLS from X= in OpenSSL and GnuTLS forms."""

from __future__ import annotations

import json
import socket
from collections import Counter

from click.testing import CliRunner

from service.ingest.command import ingest
from service.ingest.connector_map import parse_connector_map
from service.ingest.exim import EximParser

from .support import FIXTURES, feed_all


def parse(**kw):  # type: ignore[no-untyped-def]
    parser = EximParser(**kw)
    lines = (FIXTURES / "exim_mainlog.log").read_text().splitlines(keepends=True)
    return parser, feed_all(parser, lines)


def test_inbound_versions_from_openssl_and_gnutls_forms() -> None:
    _, traces = parse()
    inbound = {t["remote_ip"]: t["tls_version"] for t in traces if t["direction"] == "inbound"}
    assert inbound == {
        "192.0.2.10": "TLS1.3",  # OpenSSL, new spelling
        "192.0.2.20": "TLS1.0",  # OpenSSL, old `TLSv1`
        "192.0.2.30": "TLS1.2",  # GnuTLS cipher names
        "192.0.2.31": "TLS1.1",  # GnuTLS description form
        "192.0.2.40": "none",  # no X=
    }


def test_outbound_remote_transports_only() -> None:
    parser, traces = parse()
    outbound = Counter(
        (t["remote_ip"], t["tls_version"]) for t in traces if t["direction"] == "outbound"
    )
    assert outbound == {
        ("203.0.113.5", "TLS1.3"): 1,  # `=>` plus a `->` over the same connection: one
        ("203.0.113.9", "TLS1.2"): 1,
        ("203.0.113.11", "none"): 1,
        ("10.0.0.25", "TLS1.2"): 1,
    }
    assert parser.kinds["repeat_delivery"] == 1
    assert parser.kinds["delivery_not_sent"] == 1
    assert parser.kinds["loopback_relay"] == 1
    assert parser.kinds["loopback_client"] == 1
    assert parser.kinds["exim_local"] == 2  # U=root arrival, local_delivery
    assert parser.used + sum(parser.kinds.values()) == parser.lines


def test_fields() -> None:
    _, traces = parse()
    first = next(t for t in traces if t.get("remote_ip") == "192.0.2.10")
    assert first["timestamp"] == "2025-03-03T10:00:01+00:00"
    assert first["sender_domain"] == "partner.example"
    assert first["recipient_domain"] == "ours.example"
    assert first["size_bytes"] == 1234
    assert first["message_id"] == "m1@partner.example"
    assert first["cipher"] == "TLS_AES_256_GCM_SHA384"
    assert first["remote_host"] == "mx.partner.example"
    legacy = next(t for t in traces if t.get("remote_ip") == "192.0.2.20")
    assert "remote_host" not in legacy  # H=(helo) [ip]: no verified name
    out = next(t for t in traces if t.get("remote_ip") == "203.0.113.5")
    assert out["sender_domain"] == "ours.example"  # from the arrival line
    assert out["recipient_domain"] == "remote.example"


def test_connector_by_router_transport_interface() -> None:
    mapping = parse_connector_map(
        """
[[rule]]
connector = "Smarthost"
type = "onpremises"
router = "smarthost"
transport = "to_smarthost"

[[rule]]
connector = "Submission"
type = "onpremises"
interface = "587"

[[rule]]
connector = "Partner"
type = "partner"
interface = "198.51.100.0/24"
sender_domain = "partner.example"
"""
    )
    _, traces = parse(connectors=mapping)
    named = {t["remote_ip"]: (t["connector"], t.get("connector_type")) for t in traces}
    assert named["10.0.0.25"] == ("Smarthost", "onpremises")
    assert named["192.0.2.30"] == ("Submission", "onpremises")
    assert named["192.0.2.10"] == ("Partner", "partner")
    assert named["192.0.2.20"] == (None, None)


def test_ids_stable_and_distinct() -> None:
    _, a = parse()
    _, b = parse()
    assert [t["id"] for t in a] == [t["id"] for t in b]
    assert len({t["id"] for t in a}) == len(a)


def test_impossible_dates_are_counted_not_fatal() -> None:
    parser = EximParser()
    traces = feed_all(
        parser,
        [
            "2025-02-30 10:00:01 1tA001-000000000a1-0001 <= a@b.example H=mx.b.example "
            "[192.0.2.1] P=esmtp S=1\n",
            "2025-03-01 10:00:01 1tA002-000000000a1-0001 <= a@b.example H=mx.b.example "
            "[192.0.2.1] P=esmtp S=1\n",
        ],
    )
    assert len(traces) == 1
    assert parser.kinds == {"bad_timestamp": 1}


def exim_ids(*args: str) -> list[str]:
    log = str(FIXTURES / "exim_mainlog.log")
    result = CliRunner().invoke(ingest, [log, "--format", "exim", "--output", "ndjson", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line)["id"] for line in result.stdout.splitlines()]


def test_ids_carry_the_server_so_two_servers_never_collide() -> None:
    # Two servers can log the same Exim message id: their traces must stay apart.
    mx1, mx2 = exim_ids("--host", "mx1"), exim_ids("--host", "mx2")
    assert len(mx1) == len(mx2) == 9 and not set(mx1) & set(mx2)
    assert exim_ids("--host", "mx1") == mx1  # stable: re-ingesting the same log dedupes
    # Without --host the ids carry this machine's name, never the same for every server.
    _, traces = parse(host=socket.gethostname())
    assert exim_ids() == [t["id"] for t in traces]
    _, nameless = parse()
    assert exim_ids("--host", "") == [t["id"] for t in nameless]  # the ids before --host


def test_host_is_for_exim_only() -> None:
    log = str(FIXTURES / "postfix_scenarios.log")
    result = CliRunner().invoke(ingest, [log, "--dry-run", "--host", "mx1"])
    assert result.exit_code == 2  # Postfix lines name their host themselves


def test_a_host_looked_up_with_dnssec_is_still_a_remote_delivery() -> None:
    # log_selector +dnssec writes `H=name DS [ip]` on deliveries, deferrals and failures.
    parser = EximParser()
    traces = feed_all(parser, [
        "2025-03-03 10:00:01 1tA001-000000000a1-0001 => r@dane.example R=dnslookup "
        "T=remote_smtp H=mx.dane.example DS [203.0.113.5]:25 X=TLS1.3:TLS_AES_256_GCM_SHA384:256 "
        'CV=dane C="250 OK"\n',
        "2025-03-03 10:00:02 1tA002-000000000a2-0002 == r@dane.example R=dnslookup "
        "T=remote_smtp defer (-37) H=mx.dane.example DS [203.0.113.5]: TLS session: "
        "(SSL_connect): error: handshake failure\n",
    ])  # fmt: skip
    got = [(t["remote_host"], t["remote_ip"], t["tls_version"], t.get("tls_policy"))
           for t in traces]  # fmt: skip
    assert got == [
        ("mx.dane.example", "203.0.113.5", "TLS1.3", "dane"),
        ("mx.dane.example", "203.0.113.5", None, None),
    ]
    assert parser.kinds == {}
