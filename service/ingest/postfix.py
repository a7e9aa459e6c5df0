"""Postfix log correlation: which messages came in and went out, and over which TLS version.

Postfix never logs the TLS version on a message line. The receiving side logs it per SMTP
session (`TLS connection established from`), the queue id appears later in the same process
(`QID: client=`), and the sender only after that (`qmgr QID: from=`). The sending side logs the
TLS line per connection and each delivery separately. This module follows those threads with
small, bounded state and turns them into traces (docs/ingestion.md states the rules).

Hot path: most lines of a busy log are postscreen, dnsblog or other programs. They are
rejected after one regex match and a dictionary lookup on the daemon name; timestamps are
only parsed for lines that change state.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence

from service.ingest.syslog import MONTHS as _MONTHS
from service.ingest.syslog import TimestampParser, day_of
from service.ingest.traces import (
    CANONICAL_TLS,
    Trace,
    canonical_tls,
    clean_host,
    clean_ip,
    domain_of_address,
    is_loopback,
    postfix_auth_user,
    put_connector,
    put_optional,
    put_optionals,
    trace_id,
)
from service.ingest.transport_security import (
    TRUST_WORDS,
    TlsFeatures,
    blocked_record,
    blocked_relay_key,
    host_in_reason,
    tls_features,
    tls_policy_block,
)

# Not typing's: a dry run imports neither typing nor dataclasses (inspect, ast, dis, tokenize:
# ~8 ms of its start-up), so the records below are plain slotted classes.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from service.ingest.connector_map import ConnectorMap

# The first word is the peer's authentication (very old Postfix versions log none).
_TLS_FROM_RE = re.compile(
    r"(?:(\w+) )?TLS connection established from ([^\s\[]*)\[([^\]]*)\](?::\d+)?: "
    r"(\S+) with cipher (\S+)"
)
_TLS_TO_RE = re.compile(
    r"(?:(\w+) )?TLS connection established to ([^\s\[]*\[[^\]]*\]:\d+): (\S+) with cipher "
    r"(\S+)"
)
_PEER_RE = re.compile(r"([^\s\[]*)\[([^\]]*)\]")
_CLIENT_RE = re.compile(r"([0-9A-Za-z]+): client=([^\s\[]*)\[([^\]]*)\]")
_DELIVERY_RE = re.compile(
    r"([0-9A-Za-z]+): to=<([^>]*)>,(?: orig_to=<[^>]*>,)? relay=([^,\s]+),.*? status=(\w+)"
)
_RELAY_RE = re.compile(r"([^\s\[]*)\[([^\]]*)\](?::(\d+))?")
_FROM_RE = re.compile(r"([0-9A-Za-z]+): from=<([^>]*)>, size=(\d+)")
_MESSAGE_ID_RE = re.compile(r"([0-9A-Za-z]+): message-id=<?([^>\s]*)>?")

# Daemons whose lines are about screening connections before any SMTP session: no messages.
_POSTSCREEN = frozenset({"postscreen", "dnsblog", "tlsproxy"})
# Delivery agents other than smtp: local or LMTP deliveries are not outbound mail flow, but
# their `to=` gives an inbound message its recipient domain.
_LOCAL_DELIVERY = frozenset({"pipe", "local", "virtual", "lmtp", "error", "discard", "retry"})
# Delivery statuses that may carry a TLS policy reason (a message blocked, not delivered).
_NOT_DELIVERED = frozenset({"deferred", "bounced"})


# A per-daemon handler gets (timestamp ts, host, program, pid, message) and returns True when
# the line changed correlation state, else the kind to count it under.
_Handler = Callable[[str, str, str, str, str], "bool | str"]
# A `program[pid]:` tag's handler (None: count the line under `kind`), program and pid.
_Route = tuple[_Handler | None, str, str, str]


class Limits:
    """How long and how much correlation state is kept (seconds of log time, entries)."""

    __slots__ = ("hold", "session_ttl", "tls_ttl", "queue_ttl", "max_sessions", "max_pending",
                 "max_tls", "max_queue", "sweep_every")  # fmt: skip

    def __init__(
        self,
        hold: float = 300.0,  # an inbound trace waits at most this long for qmgr/cleanup details
        session_ttl: float = 3600.0,  # smtpd sessions are minutes long; an hour covers stragglers
        tls_ttl: float = 3600.0,  # outbound TLS lines: connections are reused for seconds
        queue_ttl: float = 3 * 3600.0,  # sender/message-id of queued mail, refreshed on each retry
        max_sessions: int = 50_000,
        max_pending: int = 50_000,
        max_tls: int = 50_000,
        max_queue: int = 200_000,
        sweep_every: float = 60.0,  # expire at most this often (log time); 5 µs a sweep adds up
    ) -> None:
        self.hold = hold
        self.session_ttl = session_ttl
        self.tls_ttl = tls_ttl
        self.queue_ttl = queue_ttl
        self.max_sessions = max_sessions
        self.max_pending = max_pending
        self.max_tls = max_tls
        self.max_queue = max_queue
        self.sweep_every = sweep_every


class _Session:
    """One smtpd SMTP session: `connect from` until `disconnect from`."""

    __slots__ = ("epoch", "tls", "cipher", "auth")

    def __init__(self, epoch: float) -> None:
        self.epoch = epoch
        self.tls: str | None = None
        self.cipher: str | None = None
        self.auth: str | None = None  # tls_auth from the TLS line's trust word


class _Queued:
    """What is known about one queue id while it is in the queue."""

    __slots__ = ("epoch", "born", "sender_domain", "size", "message_id", "session", "inbound",
                 "service", "relays", "blocked")  # fmt: skip

    def __init__(
        self,
        epoch: float,  # last touched
        born: float = 0.0,  # when its inbound trace started waiting
        session: tuple[str, str, str] | None = None,  # smtpd process that received it
        inbound: Trace | None = None,  # the inbound trace until it is emitted
        service: str | None = None,
    ) -> None:
        self.epoch = epoch
        self.born = born
        self.sender_domain: str | None = None
        self.size: int | None = None
        self.message_id: str | None = None
        self.session = session
        self.inbound = inbound
        self.service = service
        self.relays: set[str] | None = None  # relays already reported for this queue id
        self.blocked: set[str] | None = None  # relays it was already reported blocked at


def service_of(program: str) -> str:
    """`postfix-out/submission/smtpd` -> `submission/smtpd`: drop the syslog name."""
    return program.split("/", 1)[1] if "/" in program else program


class PostfixParser:
    """Feed lines in log order; take finished traces with `take()`; `flush()` at the end."""

    def __init__(
        self,
        timestamps: TimestampParser | None = None,
        connectors: ConnectorMap | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.ts = timestamps or TimestampParser()
        self.connectors = connectors
        self.limits = limits or Limits()
        self.lines = 0
        self.used = 0
        self.kinds: dict[str, int] = {}
        # Spellings of TLS details nobody documents, by kind: the field is omitted, not guessed.
        self.unrecognised: dict[str, int] = {}
        self.ready: list[Trace] = []
        self.sessions: dict[tuple[str, str, str], _Session] = {}
        # (host, program, pid, peer) -> (version, cipher, epoch, tls_auth)
        self.tls_out: dict[tuple[str, str, str, str], tuple[str, str, float, str | None]] = {}
        self.queue: dict[tuple[str, str], _Queued] = {}
        self.pending: dict[tuple[str, str], _Queued] = {}  # inbound traces waiting for details
        self.evicted = 0  # state entries dropped because a cap was reached
        self.now = 0.0  # log time of the newest line that changed state
        self._next_sweep = 0.0
        self._clock_key = ""
        self._tags: dict[str, _Route] = {}
        self._programs: dict[str, tuple[_Handler | None, str]] = {}
        self._handlers: dict[str, _Handler] = {
            "smtpd": self._smtpd,
            "smtp": self._smtp,
            "qmgr": self._qmgr,
            "cleanup": self._cleanup,
            "pickup": self._pickup,
        }

    # -- public API ---------------------------------------------------------------------------

    def feed(self, line: str) -> None:
        self.feed_lines((line,))

    def feed_lines(self, lines: Sequence[str]) -> None:
        """Feed lines in log order. The per-line hot loop: locals only, no method call per line
        for the lines no handler wants (most of a busy log: postscreen, dnsblog, others).

        The prefix is split by one str.split rather than a regex, and the whole `program[pid]:`
        tag is looked up in a cache that gives its handler, program and pid at once. Lines
        that are not used only have their kind appended to a list, counted once per chunk.
        """
        tags = self._tags
        months = _MONTHS
        not_used: list[str] = []
        skip = not_used.append
        used = 0
        for line in lines:
            # One split() gives timestamp, host, `program[pid]:` and the message: fewer
            # interpreter steps than finding each space, which is what costs in CPython.
            if line[:1].isdigit():
                try:
                    ts, host, tag, msg = line.split(" ", 3)
                except ValueError:  # fewer than four fields (a try costs nothing in 3.11)
                    skip("not_syslog")
                    continue
                # `"T" < ts[10:19:8] < "U"`: the 11th character is T and there are 19 or more
                if not "T" < ts[10:19:8] < "U":
                    skip("not_syslog")
                    continue
            elif line[:3] in months and line[9:10] == ":" and line[15:16] == " ":
                parts = line[16:].split(" ", 2)
                if len(parts) < 3:
                    skip("not_syslog")
                    continue
                ts = line[:15]
                host, tag, msg = parts
            else:
                skip("not_syslog" if line.strip() else "blank")
                continue
            route = tags.get(tag)
            if route is None:
                route = self._route_tag(tag)
            handler, kind, program, pid = route
            if handler is None:
                skip(kind)
                continue
            outcome = handler(ts, host, program, pid, msg.rstrip("\r\n"))
            if outcome is True:
                used += 1
            else:
                skip(outcome or "postfix_other")
        kinds = self.kinds
        for kind, n in Counter(not_used).items():
            kinds[kind] = kinds.get(kind, 0) + n
        self.lines += len(lines)
        self.used += used

    def _route_tag(self, tag: str) -> _Route:
        """What to do with the lines of one `program[pid]:` tag; remembered for the next."""
        if tag[-1:] != ":":
            return None, "not_syslog", "", ""
        b = tag.find("[")
        program = tag[:b] if b > 0 else tag[:-1]
        decided = self._programs.get(program)
        if decided is None:
            decided = self._route(program)
            if len(self._programs) < 1024:  # real logs have dozens of programs
                self._programs[program] = decided
        route = (*decided, program, tag[b + 1 : -2] if b > 0 else "")
        # Real logs have a few thousand tags (pids recur); garbage must not grow the cache.
        if len(self._tags) < 8192:
            self._tags[tag] = route
        return route

    def _route(self, program: str) -> tuple[_Handler | None, str]:
        """Decide once per distinct program name what to do with its lines."""
        slash = program.rfind("/")
        daemon = program[slash + 1 :]
        if slash < 0 or not program.startswith("postfix"):
            return None, "unrelated_program"
        handler = self._handlers.get(daemon)
        if handler is not None:
            return handler, ""
        if daemon in _POSTSCREEN:
            return None, "postscreen"
        if daemon in _LOCAL_DELIVERY:
            return self._local_delivery, ""
        return None, "postfix_other"

    def take(self) -> list[Trace]:
        """Traces finished so far (the caller owns the list)."""
        ready, self.ready = self.ready, []
        return ready

    def advance(self, now: float) -> None:
        """Move the expiry clock (follow mode uses this when the log is idle)."""
        if now > self.now:
            self.now = now
        self._sweep(force=True)

    def flush(self) -> list[Trace]:
        """End of input: emit every inbound trace still waiting for details."""
        for entry in list(self.pending.values()):
            self._emit_inbound(entry)
        self.pending.clear()
        return self.take()

    def state_size(self) -> int:
        """Entries held for correlation (tests and the benchmark check this stays bounded)."""
        return len(self.sessions) + len(self.tls_out) + len(self.queue) + len(self.pending)

    # -- per daemon -----------------------------------------------------------------------------

    def _smtpd(self, ts: str, host: str, program: str, pid: str, msg: str) -> bool | str:
        # The three most frequent lines of a busy log are handled here, and `_clock` is only
        # called when the second changed: this method runs for a quarter of all lines.
        key = (host, program, pid)
        sessions = self.sessions
        if msg.startswith("connect from "):
            if ts[:19] != self._clock_key:
                self._clock(ts)
            sessions.pop(key, None)  # re-insert so dict order stays oldest-first
            sessions[key] = _Session(self.now)
            if len(sessions) > self.limits.max_sessions:
                self._cap(sessions, self.limits.max_sessions)
            return True
        if msg.startswith("disconnect from "):
            return True if sessions.pop(key, None) is not None else "smtpd_other"
        if ": client=" in msg:
            return self._client(ts, host, key, program, msg)
        if "TLS connection established from " in msg:
            t = _TLS_FROM_RE.match(msg)
            if t is None:
                return "smtpd_other"
            if ts[:19] != self._clock_key:
                self._clock(ts)
            session = sessions.get(key)
            if session is None:
                # The log began mid-session (no `connect from` seen): this line starts what we
                # know of the session, so the message that follows still gets its version.
                session = sessions[key] = _Session(self.now)
            word, _, _, version, cipher = t.groups()
            # An unknown spelling is kept as logged; the message is then counted, not sent.
            session.tls = canonical_tls(version) or version
            session.cipher = cipher
            session.auth = None if word is None else self._auth(word)
            return True
        return "smtpd_other"

    def _client(
        self, ts: str, host: str, key: tuple[str, str, str], program: str, msg: str
    ) -> bool | str:
        c = _CLIENT_RE.match(msg)
        if c is None:
            return "smtpd_other"
        qid, name, ip = c.groups()
        if is_loopback(ip):
            # Content filters (amavis on 10025/smtpd) hand the same message back from
            # localhost: counting it would count every filtered message twice.
            return "loopback_client"
        stamp = self._stamp(ts)
        if stamp is None:
            return "bad_timestamp"
        self._clock(ts)
        qkey = (host, qid)
        entry = self.queue.get(qkey)
        if entry is not None and entry.session == key:
            return "repeat_client"  # the same session naming its queue id again: one message
        if entry is not None and entry.inbound is not None:
            # The queue id came back without its `removed` line: the old message is done.
            self._emit_inbound(entry)
            self.pending.pop(qkey, None)
        session = self.sessions.get(key)
        if session is None:
            session = self.sessions[key] = _Session(self.now)
        if session.tls is not None and session.tls not in CANONICAL_TLS:
            return "unknown_tls_version"  # counted rather than guessed or sent to be refused
        trace: Trace = {
            "id": trace_id("pf", host, qid, "inbound", ts),
            "timestamp": stamp,
            "direction": "inbound",
            "connector": None,
            "tls_version": session.tls or "none",
        }
        put_optional(trace, "cipher", session.cipher)
        if session.auth is not None:  # one of ours (TRUST_WORDS): nothing to clean
            trace["tls_auth"] = session.auth
        put_optional(trace, "remote_host", clean_host(name))
        put_optional(trace, "remote_ip", clean_ip(ip))
        put_optional(trace, "auth_user", postfix_auth_user(msg))  # SASL submission
        entry = _Queued(
            self.now, born=self.now, session=key, inbound=trace, service=service_of(program)
        )
        self.queue.pop(qkey, None)
        self.queue[qkey] = entry
        self.pending[qkey] = entry
        self._cap(self.queue, self.limits.max_queue)
        if len(self.pending) > self.limits.max_pending:
            oldest = next(iter(self.pending))
            self._emit_inbound(self.pending.pop(oldest))
        return True

    def _smtp(self, ts: str, host: str, program: str, pid: str, msg: str) -> bool | str:
        if ": to=<" in msg:
            return self._delivery(ts, host, program, pid, msg)
        if "TLS connection established to " in msg:
            t = _TLS_TO_RE.match(msg)
            if t is None:
                return "smtp_other"
            self._clock(ts)
            key = (host, program, pid, t.group(2))
            self.tls_out.pop(key, None)
            version = canonical_tls(t.group(3)) or t.group(3)
            self.tls_out[key] = (version, t.group(4), self.now, self._auth(t.group(1)))
            self._cap(self.tls_out, self.limits.max_tls)
            return True
        return "smtp_other"

    def _delivery(self, ts: str, host: str, program: str, pid: str, msg: str) -> bool | str:
        d = _DELIVERY_RE.match(msg)
        if d is None:
            return "smtp_other"
        qid, rcpt, relay, status = d.groups()
        fed = self._note_recipient(host, qid, rcpt)
        if status != "sent":
            if status in _NOT_DELIVERED:
                blocked = self._blocked(ts, host, program, d, msg)
                if blocked is not None:
                    return blocked
            return True if fed else "delivery_not_sent"
        r = _RELAY_RE.match(relay)
        if r is None:
            return True if fed else "smtp_other"
        name, ip = r.group(1), r.group(2)
        if is_loopback(ip):
            return True if fed else "loopback_relay"
        stamp = self._stamp(ts)
        if stamp is None:
            return "bad_timestamp"
        self._clock(ts)
        qkey = (host, qid)
        entry = self.queue.get(qkey)
        if entry is None:
            entry = self.queue[qkey] = _Queued(self.now)
            self._cap(self.queue, self.limits.max_queue)
        if entry.relays is None:
            entry.relays = set()
        elif relay in entry.relays:
            return "repeat_delivery"  # another recipient of the same message, same next hop
        entry.relays.add(relay)
        features = self._features(msg, d.end(3), d.start(4))
        tls = self.tls_out.get((host, program, pid, relay))
        if features is not None and features.applied == "none":
            # `tls=may:none`, `tls=none`: this connection was plaintext, whatever TLS line the
            # same process logged for the relay before (a stripped STARTTLS looks like this).
            tls = None
        if tls is not None and tls[0] not in CANONICAL_TLS:
            return "unknown_tls_version"
        version = tls[0] if tls else "none"
        trace: Trace = {
            "id": trace_id("pf", host, qid, "outbound", relay, day_of(ts)),
            "timestamp": stamp,
            "direction": "outbound",
            "connector": None,
            "tls_version": version,
        }
        if tls:
            put_optional(trace, "cipher", tls[1])
            if tls[3] is not None:
                trace["tls_auth"] = tls[3]
        if features is not None and features.applied is not None:
            trace["tls_policy"] = features.applied
            if features.downgraded:
                trace["tls_downgraded"] = True
        recipient_domain = domain_of_address(rcpt)
        put_optionals(trace, sender_domain=entry.sender_domain, recipient_domain=recipient_domain,
                      remote_host=clean_host(name), remote_ip=clean_ip(ip),
                      message_id=entry.message_id, size_bytes=entry.size)  # fmt: skip
        self._emit_outbound(trace, program, ip, name, entry, recipient_domain)
        return True

    def _emit_outbound(
        self,
        trace: Trace,
        program: str,
        ip: str,
        name: str,
        entry: _Queued,
        recipient_domain: str | None,
    ) -> None:
        """Name the connector of an outbound trace (delivered or blocked) and emit it."""
        put_connector(
            trace,
            self.connectors,
            "outbound",
            ip=ip,
            host=name,
            sender_domain=entry.sender_domain,
            recipient_domain=recipient_domain,
            service=service_of(program),
        )
        self.ready.append(trace)

    def _blocked(
        self, ts: str, host: str, program: str, d: re.Match[str], msg: str
    ) -> bool | str | None:
        """A blocked record for mail deferred or returned for a TLS policy reason, once per
        message and relay (retries are counted as `repeat_blocked`); None for other reasons."""
        reason = msg[d.end() :].strip()
        if reason.startswith("(") and reason.endswith(")"):
            reason = reason[1:-1]
        features = self._features(msg, d.end(3), d.start(4))
        blocked, policy = tls_policy_block(reason, features)
        if not blocked:
            return None
        qid, rcpt, relay = d.group(1), d.group(2), d.group(3)
        r = _RELAY_RE.match(relay)
        name, ip = (r.group(1), r.group(2)) if r else ("", "")
        if not ip:
            # `relay=none`: Postfix set the destination aside after a failure; the reason
            # names the host it failed at.
            name, ip = host_in_reason(reason) or ("", "")
        if ip and is_loopback(ip):
            return None
        stamp = self._stamp(ts)
        if stamp is None:
            return "bad_timestamp"
        self._clock(ts)
        remote_host, remote_ip = clean_host(name), clean_ip(ip)
        relay_key = blocked_relay_key(remote_host, remote_ip)
        qkey = (host, qid)
        entry = self.queue.get(qkey)
        if entry is None:
            entry = self.queue[qkey] = _Queued(self.now)
            self._cap(self.queue, self.limits.max_queue)
        if entry.blocked is None:
            entry.blocked = set()
        elif relay_key in entry.blocked:
            return "repeat_blocked"
        entry.blocked.add(relay_key)
        recipient_domain = domain_of_address(rcpt)
        trace = blocked_record("pf", host, qid, stamp, reason, recipient_domain=recipient_domain,
                               remote_host=remote_host, remote_ip=remote_ip, policy=policy)  # fmt: skip
        self._emit_outbound(trace, program, ip, name, entry, recipient_domain)
        return True

    def _features(self, msg: str, start: int, end: int) -> TlsFeatures | None:
        """The `tls=` field of a delivery line (Postfix 3.11+) between relay= and status=."""
        at = msg.find(", tls=", start, end)
        if at < 0:
            return None
        stop = msg.find(",", at + 6, end)
        features = tls_features(msg[at + 6 : stop if stop >= 0 else end].strip())
        if features is None:
            self._unrecognised("tls_feature_status")
        return features

    def _auth(self, word: str | None) -> str | None:
        """tls_auth from a TLS line's trust word (None when it has none)."""
        if word is None:
            return None
        auth = TRUST_WORDS.get(word)
        if auth is None:
            self._unrecognised("tls_trust_word")
        return auth

    def _unrecognised(self, kind: str) -> None:
        self.unrecognised[kind] = self.unrecognised.get(kind, 0) + 1

    def _local_delivery(self, ts: str, host: str, program: str, pid: str, msg: str) -> bool | str:
        d = _DELIVERY_RE.match(msg)
        if d is None:
            return "postfix_other"
        return True if self._note_recipient(host, d.group(1), d.group(2)) else "local_delivery"

    def _note_recipient(self, host: str, qid: str, rcpt: str) -> bool:
        """Give a waiting inbound trace its (first) recipient domain."""
        entry = self.pending.get((host, qid))
        if entry is None or entry.inbound is None or "recipient_domain" in entry.inbound:
            return False
        put_optional(entry.inbound, "recipient_domain", domain_of_address(rcpt))
        return True

    def _qmgr(self, ts: str, host: str, program: str, pid: str, msg: str) -> bool | str:
        if msg.endswith(": removed"):
            qkey = (host, msg[: -len(": removed")])
            entry = self.queue.pop(qkey, None)
            if entry is None:
                return "queue_other"
            if self.pending.pop(qkey, None) is not None:
                self._emit_inbound(entry)
            return True
        f = _FROM_RE.match(msg)
        if f is None:
            return "queue_other"
        self._clock(ts)
        qkey = (host, f.group(1))
        entry = self.queue.pop(qkey, None) or _Queued(self.now)
        entry.epoch = self.now
        self.queue[qkey] = entry  # re-inserted: deferred mail is refreshed on every retry
        self._cap(self.queue, self.limits.max_queue)
        entry.sender_domain = domain_of_address(f.group(2))
        entry.size = int(f.group(3))
        return True

    def _cleanup(self, ts: str, host: str, program: str, pid: str, msg: str) -> bool | str:
        if ": message-id=" not in msg:
            return "queue_other"
        c = _MESSAGE_ID_RE.match(msg)
        if c is None:
            return "queue_other"
        self._clock(ts)
        qkey = (host, c.group(1))
        entry = self.queue.get(qkey)
        if entry is None:
            entry = self.queue[qkey] = _Queued(self.now)
            self._cap(self.queue, self.limits.max_queue)
        entry.message_id = c.group(2) or None
        return True

    def _pickup(self, ts: str, host: str, program: str, pid: str, msg: str) -> bool | str:
        # A locally submitted message starts here; a queue id seen before is a new message.
        qid, sep, rest = msg.partition(": uid=")
        if not sep:
            return "queue_other"
        self._clock(ts)
        qkey = (host, qid)
        old = self.queue.pop(qkey, None)
        if old is not None and self.pending.pop(qkey, None) is not None:
            self._emit_inbound(old)
        self.queue[qkey] = _Queued(self.now)
        self._cap(self.queue, self.limits.max_queue)
        return True

    # -- state upkeep ---------------------------------------------------------------------------

    def _emit_inbound(self, entry: _Queued) -> None:
        trace = entry.inbound
        if trace is None:
            return
        entry.inbound = None
        put_optional(trace, "sender_domain", entry.sender_domain)
        put_optional(trace, "message_id", entry.message_id)
        put_optional(trace, "size_bytes", entry.size)
        put_connector(
            trace,
            self.connectors,
            "inbound",
            ip=trace.get("remote_ip"),
            host=trace.get("remote_host"),
            sender_domain=entry.sender_domain,
            recipient_domain=trace.get("recipient_domain"),
            service=entry.service,
        )
        self.ready.append(trace)

    def _stamp(self, ts: str) -> str | None:
        """The trace timestamp, or None for an impossible date (`Feb 30`, month 13)."""
        try:
            return self.ts.rfc3339(ts)
        except (ValueError, KeyError):
            return None

    def _clock(self, ts: str) -> None:
        if ts[:19] == self._clock_key:
            return  # same second as the last state change: clock and sweep are current
        self._clock_key = ts[:19]
        try:
            now = self.ts.epoch(ts)
        except (ValueError, KeyError):
            return  # an impossible date (Feb 30): keep the previous clock
        if now > self.now:
            self.now = now
        if self.now >= self._next_sweep:
            self._sweep()

    def _sweep(self, force: bool = False) -> None:
        """Expire state older than its time to live. Dicts are oldest-first, so stop early."""
        now, lim = self.now, self.limits
        self._next_sweep = now + lim.sweep_every
        while self.pending:
            qkey, entry = next(iter(self.pending.items()))
            if now - entry.born < lim.hold:
                break
            del self.pending[qkey]
            self._emit_inbound(entry)
        _expire(self.sessions, now - lim.session_ttl, lambda s: s.epoch)
        _expire(self.tls_out, now - lim.tls_ttl, lambda t: t[2])
        _expire(self.queue, now - lim.queue_ttl, lambda q: q.epoch)

    def _cap(self, table: dict, limit: int) -> None:  # type: ignore[type-arg]
        while len(table) > limit:
            del table[next(iter(table))]
            self.evicted += 1


def _expire(table: dict, cutoff: float, epoch_of: Callable) -> None:  # type: ignore[type-arg]
    while table:
        key = next(iter(table))
        if epoch_of(table[key]) >= cutoff:
            return
        del table[key]
