"""Connector mapping: which connector a message from the logs belongs to.

A log line does not name a connector; the operator's mapping file does, as an ordered list of
rules in TOML. The first rule whose conditions all hold names the connector and its type; no
match means mail to/from the internet without a connector (null).

    [[rule]]
    connector = "Contoso partner"
    type = "partner"                   # partner | onpremises
    direction = "inbound"              # optional: inbound | outbound
    ip = ["203.0.113.0/24"]            # peer IP or CIDR
    host_suffix = ["contoso.com"]      # peer hostname, at a label boundary
    sender_domain = ["contoso.com"]    # the domain or any subdomain of it
    recipient_domain = ["contoso.com"]
    service = ["partners/smtpd"]       # Postfix service: program path without the syslog name
    router = ["to_partner"]            # Exim router (R=), transport (T=), interface (I=)
    transport = ["remote_smtp"]
    interface = ["192.0.2.10", "587"]  # Exim receiving interface: IP, CIDR or port

Each condition is a string or a list of strings (any may match); a rule needs at least one.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from service.core.text import TextError, checked_name
from service.core.traces import MAX_CONNECTOR

CONNECTOR_TYPES = ("partner", "onpremises")
DIRECTIONS = ("inbound", "outbound")
CONDITIONS = (
    "ip",
    "host_suffix",
    "sender_domain",
    "recipient_domain",
    "service",
    "router",
    "transport",
    "interface",
)
_RULE_HEADER_RE = re.compile(r"^[ \t]*\[\[[ \t]*rule[ \t]*\]\]", re.MULTILINE)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConnectorMapError(ValueError):
    """A mapping file that cannot be used; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Peer:
    """What a parser knows about one message hop when it asks for its connector."""

    direction: str
    ip: str | None = None
    host: str | None = None
    sender_domain: str | None = None
    recipient_domain: str | None = None
    service: str | None = None
    router: str | None = None
    transport: str | None = None
    interface: str | None = None


@dataclass(slots=True)
class Rule:
    connector: str
    type: str
    direction: str | None = None
    networks: list[IPNetwork] = field(default_factory=list)
    host_suffixes: list[str] = field(default_factory=list)
    sender_domains: list[str] = field(default_factory=list)
    recipient_domains: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    routers: list[str] = field(default_factory=list)
    transports: list[str] = field(default_factory=list)
    interface_networks: list[IPNetwork] = field(default_factory=list)
    interface_ports: list[str] = field(default_factory=list)
    has_ip: bool = False
    has_interface: bool = False

    def matches(self, peer: Peer) -> bool:
        if self.direction is not None and peer.direction != self.direction:
            return False
        if self.has_ip and not _ip_in(peer.ip, self.networks):
            return False
        if self.host_suffixes and not _suffix_in(peer.host, self.host_suffixes):
            return False
        if self.sender_domains and not _suffix_in(peer.sender_domain, self.sender_domains):
            return False
        if self.recipient_domains and not _suffix_in(peer.recipient_domain, self.recipient_domains):
            return False
        if self.services and peer.service not in self.services:
            return False
        if self.routers and peer.router not in self.routers:
            return False
        if self.transports and peer.transport not in self.transports:
            return False
        return not self.has_interface or _interface_in(peer.interface, self)


class ConnectorMap:
    """Ordered rules; `lookup` returns (connector, type) of the first match, or None."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = list(rules)

    def lookup(self, peer: Peer) -> tuple[str, str] | None:
        for rule in self.rules:
            if rule.matches(peer):
                return rule.connector, rule.type
        return None


def load_connector_map(path: str | Path) -> ConnectorMap:
    """Read and check a mapping file; every problem is a ConnectorMapError naming the line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConnectorMapError(f"{path}: cannot read connector mapping: {exc}") from exc
    return parse_connector_map(text, str(path))


def parse_connector_map(text: str, source: str = "<connectors>") -> ConnectorMap:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already ends in "(at line L, column C)".
        raise ConnectorMapError(f"{source}: invalid TOML: {exc}") from exc
    unknown = sorted(set(data) - {"rule"})
    if unknown:
        raise ConnectorMapError(
            f"{source}: unknown top-level key(s) {', '.join(unknown)}; rules go in [[rule]] tables"
        )
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list):
        raise ConnectorMapError(f"{source}: `rule` must be an array of tables ([[rule]])")
    # tomllib keeps no positions, so find each [[rule]] header in the text to name its line.
    header_lines = [text.count("\n", 0, m.start()) + 1 for m in _RULE_HEADER_RE.finditer(text)]
    rules = []
    for index, raw in enumerate(raw_rules):
        line = header_lines[index] if index < len(header_lines) else None
        where = f"{source}: rule {index + 1}" + (f" (line {line})" if line else "")
        rules.append(_parse_rule(raw, where))
    return ConnectorMap(rules)


def _parse_rule(raw: object, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise ConnectorMapError(f"{where}: must be a table")
    unknown = sorted(set(raw) - {"connector", "type", "direction", *CONDITIONS})
    if unknown:
        raise ConnectorMapError(f"{where}: unknown key(s) {', '.join(unknown)}")
    connector = raw.get("connector")
    if not isinstance(connector, str) or not connector.strip():
        raise ConnectorMapError(f"{where}: `connector` must be a non-empty string ≤ 128 chars")
    try:  # the API's rule for a connector name: a name it would refuse on every trace
        connector = checked_name(connector, MAX_CONNECTOR)
    except TextError as exc:
        raise ConnectorMapError(f"{where}: `connector` {exc}") from None
    ctype = raw.get("type")
    if ctype not in CONNECTOR_TYPES:
        raise ConnectorMapError(f"{where}: `type` must be one of {', '.join(CONNECTOR_TYPES)}")
    direction = raw.get("direction")
    if direction is not None and direction not in DIRECTIONS:
        raise ConnectorMapError(f"{where}: `direction` must be one of {', '.join(DIRECTIONS)}")
    if not any(key in raw for key in CONDITIONS):
        raise ConnectorMapError(
            f"{where}: needs at least one condition ({', '.join(CONDITIONS)}); "
            "a rule without one would match everything"
        )
    rule = Rule(connector=connector, type=ctype, direction=direction)
    for key in CONDITIONS:
        if key not in raw:
            continue
        values = _string_list(raw[key], f"{where}: `{key}`")
        if key == "ip":
            rule.networks = [_network(v, f"{where}: `ip`") for v in values]
            rule.has_ip = True
        elif key == "interface":
            rule.has_interface = True
            for v in values:
                if v.isdigit():
                    rule.interface_ports.append(v)
                else:
                    rule.interface_networks.append(_network(v, f"{where}: `interface`"))
        elif key in ("host_suffix", "sender_domain", "recipient_domain"):
            normalised = [v.strip().strip(".").lower() for v in values]
            if not all(normalised):
                raise ConnectorMapError(f"{where}: `{key}` has an empty value")
            target = {
                "host_suffix": rule.host_suffixes,
                "sender_domain": rule.sender_domains,
                "recipient_domain": rule.recipient_domains,
            }[key]
            target.extend(normalised)
        else:
            {"service": rule.services, "router": rule.routers, "transport": rule.transports}[
                key
            ].extend(values)
    return rule


def _string_list(value: object, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConnectorMapError(f"{where} must be a string or a non-empty list of strings")
    return list(value)


def _network(value: str, where: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError as exc:
        raise ConnectorMapError(f"{where}: {value!r} is not an IP address or CIDR") from exc


def _ip_in(ip: str | None, networks: list[IPNetwork]) -> bool:
    if not ip:
        return False
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr in net for net in networks)


def _suffix_in(name: str | None, suffixes: list[str]) -> bool:
    """`mx1.contoso.com` matches `contoso.com`; `evilcontoso.com` does not."""
    if not name:
        return False
    name = name.lower()
    return any(name == s or name.endswith("." + s) for s in suffixes)


def _interface_in(interface: str | None, rule: Rule) -> bool:
    """Exim's `I=[192.0.2.10]:25` arrives here as `192.0.2.10:25` (or without a port)."""
    if not interface:
        return False
    ip, _, port = interface.rpartition(":") if interface.count(":") == 1 else (interface, "", "")
    if "]:" in interface:  # IPv6 kept in brackets: [2001:db8::1]:25
        ip, port = interface[1:].split("]:", 1)
    if port and port in rule.interface_ports:
        return True
    return _ip_in(ip.strip("[]"), rule.interface_networks)
