"""How a mail server logs the peer's authentication and the TLS policy that applied.

One vocabulary for every log reader (the trace fields ``tls_auth``, ``tls_policy``,
``tls_downgraded``, ``outcome``/``blocked_reason``); docs/ingest-transport-security.md has the
table from each log form to the fields. Sources:
- the trust word that starts Postfix's TLS summary line (`Verified TLS connection ...`);
- Postfix 3.11's `tls=` feature status on delivery lines (postconf(5),
  smtp_log_tls_feature_status): `[!]level[:downgrade][?]` then `/[!]requiretls[:...][?]`;
- the reason Postfix gives when it defers or returns mail for its TLS policy;
- Exim's `CV=` item, and the reason Exim gives when it defers (`==`) or fails (`**`) a delivery
  for its TLS policy (src/transports/smtp.c, tls-openssl.c, tls-gnu.c).
A spelling none of these documents gives None: the caller counts it and omits the field.
"""

from __future__ import annotations

import re
from functools import lru_cache

from service.ingest.traces import MAX_STRING, Trace, clean, put_optionals, trace_id

# Postfix's trust words (src/tls/tls_misc.c) -> tls_auth.
TRUST_WORDS = {
    "Verified": "verified",
    "Trusted": "trusted",
    "Untrusted": "untrusted",
    "Anonymous": "anonymous",
}

# Postfix's security level names (src/tls/tls_level.c) -> tls_policy. `fingerprint` pins the
# certificate: a verification, so "verify". `halfdane` is DANE whose MX records were not
# DNSSEC-signed; Postfix only logs it as the level a `dane` policy was downgraded to.
_LEVELS = {
    "none": "none",
    "may": "may",
    "encrypt": "encrypt",
    "fingerprint": "verify",
    "halfdane": "dane",
    "dane": "dane",
    "dane-only": "dane",
    "verify": "verify",
    "secure": "secure",
}
_UNDETERMINED_LEVEL = "unknown"  # Postfix could not look the policy up: no level to report
_REQUIRETLS = "requiretls"
_REQUIRETLS_OUTCOMES = frozenset({"nocertmatch", "nostarttls", "noencryption", "none", "nomatch"})
# Levels at which Postfix does not deliver without TLS (TLS_REQUIRED_BY_SECURITY_LEVEL).
MANDATORY = frozenset({"encrypt", "verify", "dane", "secure"})


class TlsFeatures:
    """One `tls=` value. Policies are tls_policy spellings, None when Postfix had none.

    A value: equal to another of the same fields. A plain class, not a dataclass: a dry run
    does not import dataclasses (service.ingest.postfix says why)."""

    __slots__ = ("required", "applied", "downgraded", "violated")

    def __init__(
        self,
        required: str | None,  # the level the policy asked for
        applied: str | None,  # the level the connection got (the downgrade level, if any)
        downgraded: bool,  # the security level was downgraded
        violated: bool,  # a feature's policy was violated: the connection was not used
    ) -> None:
        self.required = required
        self.applied = applied
        self.downgraded = downgraded
        self.violated = violated

    def _fields(self) -> tuple[str | None, str | None, bool, bool]:
        return self.required, self.applied, self.downgraded, self.violated

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TlsFeatures):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        required, applied, downgraded, violated = self._fields()
        return (f"TlsFeatures(required={required!r}, applied={applied!r}, "
                f"downgraded={downgraded!r}, violated={violated!r})")  # fmt: skip


@lru_cache(maxsize=512)  # a server logs a handful of distinct values
def tls_features(value: str) -> TlsFeatures | None:
    """Parse a `tls=` value; None for a form postconf(5) does not define."""
    parts = value.split("/")
    level = _feature(parts[0])
    if level is None:
        return None
    violated, name, final = level
    if name == _UNDETERMINED_LEVEL and not final:
        required = applied = None
    elif name in _LEVELS and (not final or final in _LEVELS):
        required = _LEVELS[name]
        applied = _LEVELS[final] if final else required
    else:
        return None
    for part in parts[1:]:
        feature = _feature(part)
        if feature is None or feature[1] != _REQUIRETLS:
            return None
        if feature[2] and feature[2] not in _REQUIRETLS_OUTCOMES:
            return None
        violated = violated or feature[0]
    return TlsFeatures(required, applied, bool(final) and final != name, violated)


def _feature(text: str) -> tuple[bool, str, str] | None:
    """`!name:final?` -> (violated, name, final). `!` and `?` never come together."""
    violated = text.startswith("!")
    undecided = text.endswith("?")
    if violated and undecided:
        return None
    name, _, final = text[violated : len(text) - undecided].partition(":")
    if not name or ":" in final:
        return None
    return violated, name, final


# Postfix's own reasons for deferring or returning mail because of its TLS policy (smtp(8):
# smtp_proto.c, smtp_connect.c, smtp_tls_policy.c), with the tls_policy each one implies
# (None: the reason does not say which level).
_POLICY_REASONS: tuple[tuple[str, str | None], ...] = (
    ("TLS is required, but", None),  # not offered / refused / engine unavailable
    ("Server certificate not verified", None),
    ("Server certificate not trusted", None),  # Postfix before 3.6
    ("TLSA lookup error", "dane"),
    ("no TLSA records found", "dane"),  # dane-only
    ("TLSA records unusable", "dane"),
    ("non DNSSEC destination", "dane"),
    ("MX RRset is insecure", "dane"),
    ("Sender requested REQUIRETLS", None),
    ("REQUIRETLS policy configuration error", None),
    ("client TLS configuration problem", None),
)
# A failed handshake is a policy block only where the level forbids falling back to plaintext.
_HANDSHAKE_FAILURE = "Cannot start TLS: handshake failure"
# A remote server's reply is quoted after `said:`: its words are not our TLS policy.
_REMOTE_REPLY = " said: "


def tls_policy_block(reason: str, features: TlsFeatures | None) -> tuple[bool, str | None]:
    """Whether a deferral or bounce was for a TLS policy, and the policy level if known."""
    required = features.required if features is not None else None
    if features is not None and features.violated:
        return True, required
    ours = reason.split(_REMOTE_REPLY, 1)[0]
    for phrase, implied in _POLICY_REASONS:
        if phrase in ours:
            return True, required or implied
    if _HANDSHAKE_FAILURE in ours and required in MANDATORY:
        return True, required
    return False, None


_HOST_IN_REASON = re.compile(r"\bhost ([^\s\[\]]+)\[([^\]\s]+)\]")


def host_in_reason(reason: str) -> tuple[str, str] | None:
    """`... not offered by host mx.example[192.0.2.1]` -> (name, ip): the relay when the
    delivery line says `relay=none` (a destination Postfix has set aside after a failure)."""
    m = _HOST_IN_REASON.search(reason)
    return (m.group(1), m.group(2)) if m else None


# Exim's `CV=` (log_selector +tls_certificate_verified) -> (tls_auth, tls_policy).
EXIM_CV: dict[str, tuple[str, str | None]] = {
    "yes": ("verified", None),
    "dane": ("verified", "dane"),
    "no": ("untrusted", None),
}

MAX_REASON = MAX_STRING  # the API's limit for strings: longer reasons are cut, not dropped


# A reason with nothing left in it (`status=deferred ()` after a `tls=!dane`): the API needs one.
NO_REASON = "(no reason logged)"


def clean_reason(reason: str) -> str:
    """The reason as logged, the characters the API refuses removed, at most MAX_REASON
    characters (counted in NFC, as the API counts them); never empty."""
    return clean(reason).strip()[:MAX_REASON].rstrip() or NO_REASON


# Exim's own reasons for not delivering because of its TLS policy, as they start the message of a
# `==` or `**` line (src/transports/smtp.c), with the tls_policy each one implies. A failed TLS
# session only ends a delivery where Exim may not fall back to plaintext (hosts_require_tls,
# DANE, tls_tempfail_tryclear = false, TLS on connect): otherwise it logs `delivering
# unencrypted` and tries again in clear, and the line names that attempt's result.
_EXIM_POLICY_REASONS: tuple[tuple[str, str | None], ...] = (
    ("a TLS session is required, but", None),  # not offered, or STARTTLS failed (errno -38)
    ("TLS session: ", None),  # the handshake or the certificate check failed (errno -37)
    ("DANE error: ", "dane"),  # TLSA lookup failed, or the MX lookup was not DNSSEC-signed
    ("bad first read from TLS conn", None),
    ("TLS support not available", None),  # TLS on connect, Exim built without TLS
)
# A verification failure ends a session only where verification is required (tls_verify_hosts;
# tls_try_verify_hosts goes on and logs CV=no): GnuTLS and OpenSSL wording.
_EXIM_VERIFY_FAILURES = ("(certificate verification failed)", "certificate verify failed")


def exim_tls_policy_block(reason: str) -> tuple[bool, str | None]:
    """Whether an Exim deferral or failure was for its TLS policy, and the level if known.

    The remote server's replies start `SMTP error from remote mail server after`: they never
    start with Exim's own wording, whatever they say about TLS."""
    for phrase, implied in _EXIM_POLICY_REASONS:
        if reason.startswith(phrase):
            if implied is None and any(v in reason for v in _EXIM_VERIFY_FAILURES):
                return True, "verify"
            return True, implied
    return False, None


_EXIM_DANE_HOST = re.compile(r"DANE error: (\S+) lookup not DNSSEC")


def exim_host_in_reason(reason: str) -> str | None:
    """`DANE error: mx.example lookup not DNSSEC` names the host; no other Exim reason
    without an `H=` does."""
    m = _EXIM_DANE_HOST.match(reason)
    return m.group(1) if m else None


def blocked_relay_key(remote_host: str | None, remote_ip: str | None) -> str:
    """What a blocked record is kept apart by: the relay's name (retries may reach another
    address of the same relay), its address if it has none, else `none`."""
    return remote_host or remote_ip or "none"


def blocked_record(
    prefix: str,
    server: str,
    queue_id: str,
    timestamp: str,
    reason: str,
    *,
    recipient_domain: str | None,
    remote_host: str | None,
    remote_ip: str | None,
    policy: str | None,
) -> Trace:
    """A blocked record (connector not named yet). Its id has no day: a message retried for
    days is one record per relay, in every run over the same log."""
    trace: Trace = {
        "id": trace_id(prefix, server, queue_id, "blocked",
                       blocked_relay_key(remote_host, remote_ip)),
        "timestamp": timestamp,
        "direction": "outbound",
        "connector": None,
        "tls_version": None,
        "outcome": "blocked",
        "blocked_reason": clean_reason(reason),
    }  # fmt: skip
    # No tls_auth, tls_downgraded or cipher: they describe a delivery, and nothing was delivered.
    put_optionals(trace, recipient_domain=recipient_domain, remote_host=remote_host,
                  remote_ip=remote_ip, tls_policy=policy)  # fmt: skip
    return trace
