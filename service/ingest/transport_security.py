"""How a mail server logs the peer's authentication and the TLS policy that applied.

One vocabulary for every log reader (the trace fields ``tls_auth``, ``tls_policy``,
``tls_downgraded``, ``outcome``/``blocked_reason``); docs/ingest-transport-security.md has the
table from each log form to the fields. Sources:
- the trust word that starts Postfix's TLS summary line (`Verified TLS connection ...`);
- Postfix 3.11's `tls=` feature status on delivery lines (postconf(5),
  smtp_log_tls_feature_status): `[!]level[:downgrade][?]` then `/[!]requiretls[:...][?]`;
- the reason Postfix gives when it defers or returns mail for its TLS policy;
- Exim's `CV=` item.
A spelling none of these documents gives None: the caller counts it and omits the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from service.ingest.traces import MAX_STRING, clean

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


@dataclass(frozen=True, slots=True)
class TlsFeatures:
    """One `tls=` value. Policies are tls_policy spellings, None when Postfix had none."""

    required: str | None  # the level the policy asked for
    applied: str | None  # the level the connection got (the downgrade level, if any)
    downgraded: bool  # the security level was downgraded
    violated: bool  # a feature's policy was violated: the connection was not used


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


def clean_reason(reason: str) -> str:
    """The reason as logged, control characters removed, at most MAX_REASON characters."""
    return clean(reason).strip()[:MAX_REASON]
