"""Connector mapping: each condition, first match wins, and errors that name the line."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from service.ingest.command import ingest
from service.ingest.connector_map import (
    ConnectorMapError,
    Peer,
    load_connector_map,
    parse_connector_map,
)
from service.ingest.postfix import PostfixParser
from service.ingest.syslog import TimestampParser

from .support import FIXTURES, feed_all


@pytest.fixture
def mapping():  # type: ignore[no-untyped-def]
    return load_connector_map(FIXTURES / "connectors.toml")


@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        (Peer("inbound", ip="192.0.2.10", service="submission/smtpd"), ("Laptops", "onpremises")),
        (Peer("inbound", ip="192.0.2.10", service="smtpd"), ("Alpha partner", "partner")),
        (Peer("inbound", ip="2001:db8::25"), ("Alpha partner", "partner")),
        (Peer("outbound", ip="192.0.2.10"), None),  # the ip rule is inbound only
        (Peer("inbound", ip="192.0.2.16"), None),  # just outside the /29
        (Peer("inbound", host="old.Gamma.example"), ("Gamma by name", "partner")),
        (Peer("inbound", host="gamma.example"), ("Gamma by name", "partner")),
        (Peer("inbound", host="notgamma.example"), None),  # label boundary
        (Peer("inbound", sender_domain="mail.delta.example"), ("Delta senders", "partner")),
        (Peer("outbound", recipient_domain="eta.example"), ("Eta outbound", "partner")),
        (Peer("outbound", recipient_domain="theta.example"), ("Shadowed", "onpremises")),
        (Peer("inbound", ip="not-an-ip"), None),
        (Peer("inbound"), None),
    ],
)
def test_each_condition(mapping, peer, expected) -> None:  # type: ignore[no-untyped-def]
    assert mapping.lookup(peer) == expected


def test_first_match_wins_on_the_postfix_fixture(mapping) -> None:  # type: ignore[no-untyped-def]
    parser = PostfixParser(TimestampParser(year=2025), connectors=mapping)
    traces = feed_all(parser, (FIXTURES / "postfix_scenarios.log").read_text().splitlines(True))
    named = {(t["direction"], t["remote_ip"]): t["connector"] for t in traces}
    assert named[("inbound", "198.51.100.77")] == "Laptops"
    assert named[("inbound", "192.0.2.10")] == "Alpha partner"
    assert named[("inbound", "192.0.2.30")] == "Gamma by name"
    assert named[("inbound", "192.0.2.40")] == "Delta senders"  # sender known only after client=
    assert named[("outbound", "203.0.113.7")] == "Eta outbound"
    assert named[("outbound", "198.51.100.9")] == "Shadowed"
    assert named[("inbound", "192.0.2.20")] is None
    for t in traces:
        assert ("connector_type" in t) == (t["connector"] is not None)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[[rule]]\nconnector = "A"\ntype = "partner"\nip = 10.0.0.1\n', "line 4, column"),
        ('[[rule]]\nconnector = "A"\ntype = "partner"\nip = "10.0.0.0/33"\n', "rule 1 (line 1)"),
        (
            '[[rule]]\nconnector = "A"\ntype = "partner"\nip = "10.0.0.1"\n\n'
            '[[rule]]\nconnector = "B"\ntype = "friend"\nip = "10.0.0.2"\n',
            "rule 2 (line 6)",
        ),
        ('[[rule]]\nconnector = "A"\ntype = "partner"\n', "needs at least one condition"),
        ('[[rule]]\nconnector = "A"\ntype = "partner"\nsender = "x"\n', "unknown key(s) sender"),
        ('[[rule]]\ntype = "partner"\nip = "10.0.0.1"\n', "`connector`"),
        ('[[rule]]\nconnector = "A"\ntype = "partner"\nip = []\n', "non-empty list"),
        ("rules = 1\n", "unknown top-level key"),
        # Names the API would refuse on every trace (its text rule, service.core.text).
        ('[[rule]]\nconnector = " A"\ntype = "partner"\nip = "10.0.0.1"\n', "whitespace"),
        (
            '[[rule]]\nconnector = "A\\u200b"\ntype = "partner"\nip = "10.0.0.1"\n',
            "format character (U+200B)",
        ),
        (
            '[[rule]]\nconnector = "A\\tB"\ntype = "partner"\nip = "10.0.0.1"\n',
            "control characters",
        ),
        (
            f'[[rule]]\nconnector = "{"A" * 129}"\ntype = "partner"\nip = "10.0.0.1"\n',
            "1 to 128 characters",
        ),
    ],
)
def test_bad_mapping_is_a_clear_error(text: str, needle: str) -> None:
    with pytest.raises(ConnectorMapError) as err:
        parse_connector_map(text, "map.toml")
    assert needle in str(err.value)
    assert str(err.value).startswith("map.toml")


def test_toml_syntax_error_names_line_and_column() -> None:
    with pytest.raises(ConnectorMapError, match=r"line 4, column"):
        parse_connector_map('[[rule]]\nconnector = "A"\ntype = "partner"\nip = 10.0.0.1\n', "m")


def test_bad_mapping_exits_2_before_sending(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nconnector = "A"\ntype = "partner"\n\n[[rule]]\nconnector = 1\n')
    result = CliRunner().invoke(
        ingest,
        [
            str(FIXTURES / "postfix_scenarios.log"),
            "--connectors",
            str(bad),
            "--key",
            "k",
            "--url",
            "http://127.0.0.1:9",
        ],
    )
    assert result.exit_code == 2
    assert "rule 1 (line 1)" in result.output
    assert "lines read" not in result.output  # stopped before reading or sending anything
