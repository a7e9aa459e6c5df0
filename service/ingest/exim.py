"""Exim mainlog: arrivals and remote deliveries, with TLS from the `X=` field.

Unlike Postfix, Exim writes the TLS version on the message line itself, so every trace comes
from one line. The only state kept is each message's sender, size and Message-ID from its
arrival line, so that its deliveries can carry them; `Completed` releases it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING

from service.ingest.syslog import PREFIX_RE
from service.ingest.traces import (
    ReadyQueue,
    Trace,
    canonical_tls,
    clean_host,
    clean_ip,
    domain_of_address,
    exim_auth_user,
    is_loopback,
    put_connector,
    put_optional,
    put_optionals,
    trace_id,
)

if TYPE_CHECKING:
    from service.ingest.connector_map import ConnectorMap

# `2024-01-02 10:00:00[.123] [+0100] [[pid]] <message id> <flag> ...`; ids are 6-6-2 (before
# Exim 4.97) or 6-11-4 characters.
_LINE_RE = re.compile(
    r"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.\d+)?(?: ([+-]\d\d)(\d\d))? (?:\[\d+\] )?"
    r"(?:([0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}) (<=|=>|->|==|\*\*|\*>) )?"
)
# H=name (helo) [ip]:port, H=(helo) [ip], H=[ip], H=name [ip]* (`*` marks a continued
# connection on deliveries).
_HOST_RE = re.compile(r" H=(?:([^\s(\[]\S*) )?(?:\([^)]*\) )?\[([^\]]+)\](?::(\d+))?")
_FIELD_RE = {key: re.compile(rf" {key}=(\S+)") for key in ("X", "R", "T", "S", "P", "id", "I", "U")}
_SENDER_RE = re.compile(r'<= ("[^"]*"@\S+|\S+)')


class EximParser(ReadyQueue):
    """Feed mainlog lines; `take()` returns traces; `flush()` at the end (Exim needs none)."""

    def __init__(
        self,
        zone: tzinfo = UTC,
        connectors: ConnectorMap | None = None,
        host: str = "",
        max_messages: int = 200_000,
    ) -> None:
        self.zone = zone
        self.connectors = connectors
        self.host = host  # part of trace ids: Exim ids are unique per server, not globally
        self.max_messages = max_messages
        self.lines = 0
        self.used = 0
        self.kinds: dict[str, int] = {}
        self.evicted = 0
        self.ready: list[Trace] = []
        # message id -> (sender domain, size, Message-ID, relays already reported)
        self.messages: dict[str, tuple[str | None, int | None, str | None, set[str]]] = {}

    def feed(self, line: str) -> None:
        self.lines += 1
        line = line.rstrip("\r\n")
        m = _LINE_RE.match(line)
        if m is None:
            # Exim logging through syslog (no own timestamp) is not supported: counted apart.
            if PREFIX_RE.match(line) is not None and "exim" in line[:64]:
                self._skip("exim_via_syslog")
            else:
                self._skip("blank" if not line.strip() else "not_exim_log")
            return
        flag = m.group(6)
        if flag is None:
            if line.endswith(" Completed") and len(line) > m.end():
                self.messages.pop(line[m.end() : m.end() + 23].split(" ", 1)[0], None)
                self.used += 1
                return
            self._skip("exim_other")
            return
        rest = line[m.end() - 3 :]  # from the flag on: `<= sender ...`
        outcome = self._arrival(m, rest) if flag == "<=" else self._delivery(m, flag, rest)
        if outcome is True:
            self.used += 1
        else:
            self._skip(outcome if isinstance(outcome, str) else "exim_other")

    def state_size(self) -> int:
        return len(self.messages)

    # -- message lines --------------------------------------------------------------------------

    def _arrival(self, m: re.Match[str], rest: str) -> bool | str:
        msg_id = m.group(5)
        s = _SENDER_RE.match(rest)
        sender_domain = domain_of_address(s.group(1)) if s else None
        size = _field(rest, "S")
        message_id = _field(rest, "id")
        self.messages.pop(msg_id, None)
        self.messages[msg_id] = (
            sender_domain,
            int(size) if size and size.isdigit() else None,
            message_id,
            set(),
        )
        while len(self.messages) > self.max_messages:
            del self.messages[next(iter(self.messages))]
            self.evicted += 1
        h = _HOST_RE.search(rest)
        if h is None:
            return "exim_local"  # `U=` local submission or pickup: no SMTP peer, no TLS
        name, ip, _port = h.groups()
        if is_loopback(ip):
            return "loopback_client"
        version, cipher = _tls(_field(rest, "X"))
        if version is None:
            return "unknown_tls_version"
        stamp = self._stamp(m)
        if stamp is None:
            return "bad_timestamp"
        trace = self._trace(
            stamp, "inbound", trace_id("exim", self.host, msg_id, "inbound"), version
        )
        recipient = _recipient_of_arrival(rest)
        recipient_domain = domain_of_address(recipient) if recipient else None
        put_optionals(trace, cipher=cipher, sender_domain=sender_domain,
                      recipient_domain=recipient_domain, remote_host=clean_host(name or ""),
                      remote_ip=clean_ip(ip), message_id=message_id,
                      size_bytes=self.messages[msg_id][1])  # fmt: skip
        put_optional(trace, "auth_user", exim_auth_user(rest))  # SMTP AUTH submission
        interface = _field(rest, "I")
        put_connector(
            trace,
            self.connectors,
            "inbound",
            ip=ip,
            host=name,
            sender_domain=sender_domain,
            recipient_domain=recipient_domain,
            interface=interface.replace("[", "").replace("]", "") if interface else None,
        )
        self.ready.append(trace)
        return True

    def _delivery(self, m: re.Match[str], flag: str, rest: str) -> bool | str:
        if flag in ("==", "**"):
            return "delivery_not_sent"  # deferred or failed
        if flag == "*>":
            return "exim_other"  # suppressed by -N: nothing was sent
        h = _HOST_RE.search(rest)
        if h is None:
            return "exim_local"  # local transports (appendfile, pipe) name no host
        name, ip, _port = h.groups()
        if is_loopback(ip):
            return "loopback_relay"
        stamp = self._stamp(m)
        if stamp is None:
            return "bad_timestamp"
        msg_id = m.group(5)
        known = self.messages.get(msg_id)
        if known is None:
            known = self.messages[msg_id] = (None, None, None, set())
        sender_domain, size, message_id, relays = known
        if ip in relays:
            return "repeat_delivery"  # `->`: another recipient over the same connection
        relays.add(ip)
        version, cipher = _tls(_field(rest, "X"))
        if version is None:
            return "unknown_tls_version"
        day = m.group(1)
        trace = self._trace(
            stamp, "outbound", trace_id("exim", self.host, msg_id, "outbound", ip, day), version
        )
        recipient = rest[3:].split(" ", 1)[0]
        recipient_domain = domain_of_address(recipient.strip("<>"))
        put_optionals(trace, cipher=cipher, sender_domain=sender_domain,
                      recipient_domain=recipient_domain, remote_host=clean_host(name or ""),
                      remote_ip=clean_ip(ip), message_id=message_id, size_bytes=size)  # fmt: skip
        put_connector(
            trace,
            self.connectors,
            "outbound",
            ip=ip,
            host=name,
            sender_domain=sender_domain,
            recipient_domain=recipient_domain,
            router=_field(rest, "R"),
            transport=_field(rest, "T"),
        )
        self.ready.append(trace)
        return True

    # -- helpers ----------------------------------------------------------------------------------

    def _stamp(self, m: re.Match[str]) -> str | None:
        """RFC 3339 from Exim's local time (or its logged offset); None for impossible dates."""
        try:
            local = datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}")
        except ValueError:
            return None
        if m.group(3):
            return f"{m.group(1)}T{m.group(2)}{m.group(3)}:{m.group(4)}"
        return local.replace(tzinfo=self.zone).isoformat()

    def _trace(self, stamp: str, direction: str, tid: str, version: str) -> Trace:
        return {
            "id": tid,
            "timestamp": stamp,
            "direction": direction,
            "connector": None,
            "tls_version": version,
        }


def _field(rest: str, key: str) -> str | None:
    f = _FIELD_RE[key].search(rest)
    return f.group(1) if f else None


def _tls(x: str | None) -> tuple[str | None, str | None]:
    """Version and cipher from `X=`; ("none", None) when absent (cleartext).

    OpenSSL: `TLS1.3:TLS_AES_256_GCM_SHA384:256` (older: `TLSv1.2:ECDHE-RSA-...:256`).
    GnuTLS: `TLS1.2:ECDHE_RSA_AES_256_GCM_SHA384:256`, or the description form
    `(TLS1.3)-(ECDHE-SECP256R1)-(RSA-PSS-RSAE-SHA256)-(AES-256-GCM)`.
    """
    if not x:
        return "none", None
    if x.startswith("("):
        version, _, cipher = x[1:].partition(")-")
    else:
        parts = x.split(":")
        version = parts[0]
        cipher = parts[1] if len(parts) > 1 else ""
    return canonical_tls(version), cipher or None


def _recipient_of_arrival(rest: str) -> str | None:
    """With `log_selector = +received_recipients` the arrival ends in `for a@x b@y`."""
    at = rest.rfind(" for ")
    if at < 0:
        return None
    return rest[at + 5 :].split(" ", 1)[0]
