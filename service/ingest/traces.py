"""Building trace records: canonical TLS versions, clean strings, stable ids.

Every parser (Postfix, Exim, tabular) hands its findings to these helpers so all traces obey the
same rules: optional fields are omitted rather than null, strings carry no control characters,
domains are lowercase and syntactically plausible, and ids are stable across runs.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

try:
    # hashlib would load OpenSSL (several ms at start-up) only to hand back this builtin.
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - CPython always has it; other interpreters may not
    from hashlib import blake2b

from service.core.text import FORBIDDEN_CATEGORIES
from service.core.tls import TLS_VERSIONS, canonical_tls_version

# Not typing's: a dry run does not import typing (~3 ms of its start-up); the interpreter gets
# the plain dict for Trace, the type checker its value type (mypy takes any constant of this
# name as true).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from service.ingest.connector_map import ConnectorMap

    Trace = dict[str, Any]
else:
    Trace = dict

# Every canonical name a trace may carry (DESIGN's trace table); spellings are core's.
CANONICAL_TLS = frozenset(TLS_VERSIONS)

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# Label syntax as the API checks it (ASCII letters, digits, inner hyphens); anything else
# (address literals, underscores, garbage) is omitted instead of getting the trace rejected.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN_RE = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")
MAX_STRING = 998  # longest header line SMTP allows; longer values are not real message ids
MAX_CIPHER = 128  # the API's limit for `cipher`


def canonical_tls(version: str | None) -> str | None:
    """`TLSv1.2` -> `TLS1.2`; None when nothing was logged or for spellings nobody knows
    (e.g. Exim's test `TLS1.x`). The spellings are the API's (``service.core.tls``)."""
    if not version:
        return None
    return canonical_tls_version(version)


def clean(value: str) -> str:
    """Strip the characters the API's text rule refuses (service.core.text: controls, format
    characters, line and paragraph separators), and give non-ASCII text in NFC as the API
    stores it, so that a length checked here is the length the API checks."""
    # isascii() and isprintable() are fast C checks, true for almost every real value; every
    # refused character is one isprintable() is false for.
    if value.isascii():
        return value if value.isprintable() else _CONTROL_RE.sub("", value)
    if not value.isprintable():
        value = "".join(c for c in value if unicodedata.category(c) not in FORBIDDEN_CATEGORIES)
    return unicodedata.normalize("NFC", value)


def domain_of_address(address: str) -> str | None:
    """The lowercase domain of `user@Example.ORG`, or None (empty sender, no domain, literal)."""
    at = address.rfind("@")
    if at < 0:
        return None
    return clean_domain(address[at + 1 :])


@lru_cache(maxsize=8192)  # the same few thousand domains recur all through a log
def clean_domain(domain: str) -> str | None:
    """A lowercase, syntactically plausible domain, or None."""
    d = domain.strip().rstrip(".").lower()
    return d if d and _DOMAIN_RE.fullmatch(d) else None


def clean_host(name: str) -> str | None:
    """A peer hostname worth reporting: Postfix writes `unknown` when reverse DNS failed."""
    if not name or name == "unknown":
        return None
    return clean_domain(name)


@lru_cache(maxsize=8192)
def clean_ip(ip: str) -> str | None:
    """A valid IP address (IPv6 may carry an `IPv6:` prefix in some logs), else None."""
    if _is_plain_ipv4(ip):
        return ip  # what ipaddress would give back, without its 3 µs of parsing
    import ipaddress  # here, not at the top: only lines that make traces get this far

    if ip.lower().startswith("ipv6:"):
        ip = ip[5:]
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return None


def _is_plain_ipv4(ip: str) -> bool:
    """Dotted-quad IPv4 exactly as ipaddress accepts and prints it: four ASCII decimal octets,
    each at most 255, no leading zeros. Anything else goes to ipaddress to decide."""
    octets = ip.split(".")
    if len(octets) != 4:
        return False
    for octet in octets:
        if not (octet.isascii() and octet.isdigit()) or len(octet) > 3:
            return False
        if (octet[0] == "0" and len(octet) > 1) or int(octet) > 255:
            return False
    return True


def is_loopback(ip: str) -> bool:
    """127/8 and ::1: traffic a host sends itself (content filters, local relays)."""
    return ip.startswith("127.") or ip == "::1" or ip.startswith("::ffff:127.")


def trace_id(prefix: str, *parts: str) -> str:
    """A stable, fixed-length idempotency key from the parts that identify one message hop."""
    digest = blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()
    return f"{prefix}-{digest}"


def put_optional(trace: Trace, key: str, value: str | int | None) -> None:
    """Set an optional field only when known: the API wants absent, not null."""
    if value is None or value == "":
        return
    if isinstance(value, str):
        if not (value.isascii() and value.isprintable()):  # else clean() gives it back as is
            value = clean(value)
        # Too long to be real: omitted rather than cut (a cut id would be a wrong id).
        if not value or len(value) > (MAX_CIPHER if key == "cipher" else MAX_STRING):
            return
    trace[key] = value


def put_optionals(trace: Trace, **values: str | int | None) -> None:
    """``put_optional`` for each field, in the order given."""
    for key, value in values.items():
        put_optional(trace, key, value)


def put_connector(
    trace: Trace, connectors: ConnectorMap | None, direction: str, **peer: str | None
) -> None:
    """Name the trace's connector and its type when the mapping knows the peer."""
    if connectors is None:
        return  # no mapping: not even the Peer is built (nor its module imported)
    # Imported on first use: runs without --connectors never load the mapping code.
    from service.ingest.connector_map import Peer

    found = connectors.lookup(Peer(direction, **peer))
    if found is not None:
        trace["connector"], trace["connector_type"] = found


class ReadyQueue:
    """What every parser that emits a trace as soon as its line is read has in common: no
    state that ages (``advance`` does nothing), and ``flush`` is ``take``. Subclasses set
    ``self.ready`` and implement ``feed``."""

    ready: list[Trace]
    kinds: dict[str, int]

    def feed(self, line: str) -> None:
        raise NotImplementedError

    def feed_lines(self, lines: Sequence[str]) -> None:
        for line in lines:
            self.feed(line)

    def advance(self, now: float) -> None:
        """Nothing here expires with time; present so every parser can be followed alike."""

    def take(self) -> list[Trace]:
        ready, self.ready = self.ready, []
        return ready

    def flush(self) -> list[Trace]:
        return self.take()

    def state_size(self) -> int:
        return 0

    def _skip(self, kind: str, count: int = 1) -> None:
        """Count lines that made no trace, by why (``kinds``)."""
        self.kinds[kind] = self.kinds.get(kind, 0) + count


# -- SMTP AUTH identities (docs/domains.md) -------------------------------------------------

_SASL_USERNAME_RE = re.compile(r"\bsasl_username=([^,\s]+)")
_EXIM_AUTHENTICATOR_RE = re.compile(r" A=[^:\s]+:(\S+)")
MAX_AUTH_USER = 256  # the trace contract's limit (service.core.traces.MAX_AUTH_USER)


def postfix_auth_user(msg: str) -> str | None:
    """The SASL user of a Postfix smtpd ``client=`` line (``sasl_username=``), or None."""
    m = _SASL_USERNAME_RE.search(msg) if "sasl_username=" in msg else None
    return _auth_user(m.group(1)) if m else None


def exim_auth_user(rest: str) -> str | None:
    """The authenticated id of an Exim ``<=`` line (``A=<authenticator>:<id>``), or None."""
    m = _EXIM_AUTHENTICATOR_RE.search(rest) if " A=" in rest else None
    return _auth_user(m.group(1)) if m else None


def _auth_user(value: str) -> str | None:
    value = clean(value)
    # Too long to be real: omitted rather than cut (a cut name would be another user).
    return value if 0 < len(value) <= MAX_AUTH_USER else None
