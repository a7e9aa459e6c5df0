"""Where a webhook may be sent: the URL rules and the address rules that keep mailflow from
being used to reach its own network (SSRF).

A URL is checked twice: when a subscription is saved, and at every delivery, where the host is
resolved once and the connection goes to the address that was checked (so a DNS answer that
changes between the check and the connection cannot redirect it). The resolver is a parameter:
tests answer DNS themselves and never send a packet outside loopback.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# host, port -> the addresses the name resolves to (text), as getaddrinfo would answer.
Resolver = Callable[[str, int], Sequence[str]]

MAX_URL = 2048
# Cloud metadata services: link-local or unique-local already, named so the refusal says why.
METADATA = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254"))


class TargetRefused(ValueError):
    """The URL or an address it resolves to may not receive webhooks (the message says why)."""


@dataclass(frozen=True)
class TargetPolicy:
    """The networks an operator allows besides the public internet, and whether plain HTTP
    is allowed (it is also to an address inside an allowed network)."""

    allow_networks: tuple[IPNetwork, ...] = ()
    allow_http: bool = False

    @classmethod
    def parse(cls, networks: str, allow_http: bool) -> TargetPolicy:
        """From MAILFLOW_WEBHOOK_ALLOW_NETWORKS (comma-separated CIDRs); ValueError if bad."""
        allowed = tuple(ipaddress.ip_network(n.strip(), strict=False)
                        for n in networks.split(",") if n.strip())  # fmt: skip
        return cls(allowed, allow_http)

    def allows(self, address: IPAddress) -> bool:
        return any(address in network for network in self.allow_networks)

    def refusal(self, address: IPAddress) -> str | None:
        """Why ``address`` may not be reached, or None."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if self.allows(address):
            return None
        if address in METADATA:
            return "a cloud metadata address"
        for kind, flag in (("a loopback", address.is_loopback),
                           ("an unspecified", address.is_unspecified),
                           ("a link-local", address.is_link_local),
                           ("a multicast", address.is_multicast),
                           ("a private", address.is_private),
                           ("a reserved", address.is_reserved),
                           ("a non-global", not address.is_global)):  # fmt: skip
            if flag:
                return f"{kind} address"
        return None


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (``address``) and what to call the host (TLS SNI and
    ``Host``)."""

    scheme: str
    host: str
    port: int
    path: str  # with the query
    address: str


def parse_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path with query) of a webhook URL; TargetRefused if malformed."""
    if len(url) > MAX_URL:
        raise TargetRefused(f"the URL is longer than {MAX_URL} characters")
    if not url.isascii():
        raise TargetRefused("the URL must be ASCII: percent-encode its path, write its host "
                            "in punycode (xn--)")  # fmt: skip
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise TargetRefused(f"the URL is malformed: {error}") from None
    if parts.scheme not in ("https", "http"):
        raise TargetRefused("the URL must be https:// (or http:// where allowed)")
    if not parts.hostname:
        raise TargetRefused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("the URL may not carry a user name or password")
    if parts.fragment:
        raise TargetRefused("the URL may not have a #fragment")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise TargetRefused("the URL may not contain spaces or control characters")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname.lower(), port or default, path


def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's answer (getaddrinfo), every address once, in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def resolve_target(url: str, policy: TargetPolicy, resolver: Resolver) -> Target:
    """Check ``url`` and resolve its host once: the Target to connect to, or TargetRefused.

    Every address the name has must be allowed (one forbidden answer refuses the URL, since
    a later resolution could pick it), and plain HTTP needs MAILFLOW_WEBHOOK_ALLOW_HTTP or an
    address inside MAILFLOW_WEBHOOK_ALLOW_NETWORKS."""
    scheme, host, port, path = parse_url(url)
    literal = _literal(host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            answers = resolver(host, port)
        except (OSError, UnicodeError) as error:
            raise TargetRefused(f"{host} does not resolve: {error}") from None
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in answers]
        if not addresses:
            raise TargetRefused(f"{host} does not resolve")
    for address in addresses:
        reason = policy.refusal(address)
        if reason is not None:
            shown = host if literal is not None else f"{host} ({address})"
            raise TargetRefused(f"{shown} is {reason}; allow it with "
                                "MAILFLOW_WEBHOOK_ALLOW_NETWORKS")  # fmt: skip
    chosen = addresses[0]
    if scheme == "http" and not (policy.allow_http or policy.allows(chosen)):
        raise TargetRefused("the URL must be https:// (plain http:// needs "
                            "MAILFLOW_WEBHOOK_ALLOW_HTTP)")  # fmt: skip
    return Target(scheme, host, port, path, str(chosen))


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
