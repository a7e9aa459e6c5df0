"""Exim mainlog: arrivals and remote deliveries, with TLS from the `X=` field.

Unlike Postfix, Exim writes the TLS version on the message line itself, so every trace comes
from one line. The only state kept is each message's sender, size and Message-ID from its
arrival line, so that its deliveries can carry them, the relays it was already reported at,
and the hosts a DANE attempt failed at; `Completed` releases it.

Deferrals (`==`) and failures (`**`) for Exim's TLS policy become blocked records, one per
message and relay (docs/ingest-transport-security.md).
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
from service.ingest.transport_security import (
    EXIM_CV,
    blocked_record,
    blocked_relay_key,
    exim_host_in_reason,
    exim_tls_policy_block,
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
# connection on deliveries), H=name DS [ip] (log_selector +dnssec: the address was looked up
# with DNSSEC).
_HOST_RE = re.compile(r" H=(?:([^\s(\[]\S*) )?(?:DS )?(?:\([^)]*\) )?\[([^\]]+)\](?::(\d+))?")
# Logged by the smtp transport before the deferral when a DANE-verified TLS session failed.
_DANE_FAILED = "DANE attempt failed; "
_DANE_FAILED_RE = re.compile(r"(\S+) DANE attempt failed; TLS connection to \S* \[([^\]]+)\]")
_DELIVER_TIME_RE = re.compile(r" DT=\S+$")
_MAX_DANE_FAILED = 10_000  # messages whose DANE failures are remembered until `Completed`
_FIELD_RE = {
    key: re.compile(rf" {key}=(\S+)") for key in ("X", "R", "T", "S", "P", "id", "I", "U", "CV")
}
_SENDER_RE = re.compile(r'<= ("[^"]*"@\S+|\S+)')


# sender domain, size, Message-ID, relays delivered to, relays blocked at (None until the first)
_Message = tuple[str | None, int | None, str | None, set[str], set[str] | None]


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
        # Spellings of TLS details nobody documents, by kind: the field is omitted, not guessed.
        self.unrecognised: dict[str, int] = {}
        self.evicted = 0
        self.ready: list[Trace] = []
        self.messages: dict[str, _Message] = {}
        # message id -> addresses of hosts where a DANE-verified session failed
        self.dane_failed: dict[str, set[str]] = {}

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
                msg_id = line[m.end() : m.end() + 23].split(" ", 1)[0]
                self.messages.pop(msg_id, None)
                if self.dane_failed:
                    self.dane_failed.pop(msg_id, None)
                self.used += 1
                return
            if _DANE_FAILED in line and self._dane_failed(line[m.end() :]):
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
        return len(self.messages) + len(self.dane_failed)

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
            None,
        )
        self._cap_messages()
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
        self._verification(trace, rest)
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
            return self._undelivered(m, flag, rest)
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
        sender_domain, size, message_id, relays, _blocked = self._message(msg_id)
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
        self._verification(trace, rest)
        self._emit_outbound(trace, rest, ip, name, sender_domain, recipient_domain)
        return True

    def _undelivered(self, m: re.Match[str], flag: str, rest: str) -> bool | str:
        """A `==` deferral or `**` failure: a blocked record when Exim's TLS policy stopped the
        delivery, once per message and relay (retries and other recipients are counted as
        `repeat_blocked`); other reasons are not read."""
        # `== rcpt R= T= defer (errno)[: strerror][ H=name [ip]:port]: reason`;
        # `** rcpt R= T=[ H=name [ip]][ X=... CV=...] : reason`.
        if flag == "==":
            defer = rest.find(" defer (")
            close = rest.find(")", defer) if defer > 0 else -1
            at = rest.find(": ", close) if close > 0 else -1
            reason = rest[at + 2 :]
        else:
            close = 0
            at = rest.find(" : ")
            # +deliver_time puts ` DT=…` after the reason of a failure (before it on a deferral)
            reason = _DELIVER_TIME_RE.sub("", rest[at + 3 :])
        if at < 0:
            return "delivery_not_sent"  # `** rcpt: retry timeout exceeded` names no reason
        blocked, policy = exim_tls_policy_block(reason)
        if not blocked:
            return "delivery_not_sent"
        h = _HOST_RE.search(rest, close, at + 1)
        if h is not None:
            name, ip = h.group(1) or "", h.group(2)
            if is_loopback(ip):
                return "loopback_relay"
        else:  # a DANE lookup failure is logged before any host is chosen
            name, ip = exim_host_in_reason(reason) or "", ""
        stamp = self._stamp(m)
        if stamp is None:
            return "bad_timestamp"
        msg_id = m.group(5)
        sender_domain, size, message_id, relays, blocked_at = self._message(msg_id)
        remote_host, remote_ip = clean_host(name), clean_ip(ip)
        relay_key = blocked_relay_key(remote_host, remote_ip)
        if blocked_at is None:
            blocked_at = set()
            self.messages[msg_id] = (sender_domain, size, message_id, relays, blocked_at)
        elif relay_key in blocked_at:
            return "repeat_blocked"
        blocked_at.add(relay_key)
        if ip and ip in self.dane_failed.get(msg_id, ()):
            policy = "dane"  # the session that failed was a DANE-verified one
        recipient_domain = domain_of_address(rest[3:].split(" ", 1)[0].strip("<>"))
        trace = blocked_record("exim", self.host, msg_id, stamp, reason,
                               recipient_domain=recipient_domain, remote_host=remote_host,
                               remote_ip=remote_ip, policy=policy)  # fmt: skip
        self._emit_outbound(trace, rest, ip, name, sender_domain, recipient_domain)
        return True

    def _dane_failed(self, rest: str) -> bool:
        """`<id> DANE attempt failed; TLS connection to name [ip]: ...`: the deferral that
        follows for that host was for DANE."""
        d = _DANE_FAILED_RE.match(rest)
        if d is None:
            return False
        msg_id, ip = d.groups()
        hosts = self.dane_failed.pop(msg_id, None) or set()
        hosts.add(ip)
        self.dane_failed[msg_id] = hosts  # re-inserted: the dict stays oldest-first
        while len(self.dane_failed) > _MAX_DANE_FAILED:
            del self.dane_failed[next(iter(self.dane_failed))]
            self.evicted += 1
        return True

    def _message(self, msg_id: str) -> _Message:
        """What the arrival line said about a message (nothing, if the log began later)."""
        known = self.messages.get(msg_id)
        if known is None:
            known = self.messages[msg_id] = (None, None, None, set(), None)
            self._cap_messages()
        return known

    def _cap_messages(self) -> None:
        while len(self.messages) > self.max_messages:
            del self.messages[next(iter(self.messages))]
            self.evicted += 1

    def _emit_outbound(
        self,
        trace: Trace,
        rest: str,
        ip: str,
        name: str | None,
        sender_domain: str | None,
        recipient_domain: str | None,
    ) -> None:
        """Name the connector of an outbound trace (delivered or blocked) and emit it."""
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

    # -- helpers ----------------------------------------------------------------------------------

    def _verification(self, trace: Trace, rest: str) -> None:
        """tls_auth (and tls_policy for DANE) from `CV=`, written only on TLS connections."""
        if trace["tls_version"] == "none" or " CV=" not in rest:
            return
        cv = _field(rest, "CV") or ""
        found = EXIM_CV.get(cv)
        if found is None:
            self.unrecognised["exim_cv"] = self.unrecognised.get("exim_cv", 0) + 1
            return
        trace["tls_auth"] = found[0]
        if found[1] is not None:
            trace["tls_policy"] = found[1]

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
