"""Transport security: whether a message's peer was authenticated, and how, beside its TLS version.

A TLS version says the channel was encrypted; it does not say that the server at the other end
was the one meant. The trace's ``tls_auth`` (what the MTA logged about the peer's certificate)
and ``tls_policy`` (the security level that applied) decide one class per delivered message,
the column users read (docs/transit-security.md has the table):

- ``dane``: TLS under a DANE policy, the peer verified by its TLSA records;
- ``mta-sts``: TLS under an MTA-STS policy, the peer verified against it;
- ``authenticated``: TLS to a verified peer under any other policy;
- ``encrypted``: TLS, the peer not authenticated (opportunistic, or its check failed);
- ``none``: no TLS.
"""

from __future__ import annotations

from functools import lru_cache

TLS_AUTHS: tuple[str, ...] = ("verified", "trusted", "untrusted", "anonymous")
TLS_POLICIES: tuple[str, ...] = ("dane", "mta-sts", "verify", "secure", "encrypt", "may", "none")
# Strongest first, as the reports list them.
SECURITY_CLASSES: tuple[str, ...] = ("dane", "mta-sts", "authenticated", "encrypted", "none")
AUTHENTICATED_CLASSES = frozenset({"dane", "mta-sts", "authenticated"})
OUTCOMES: tuple[str, ...] = ("delivered", "blocked")
MAX_POLICY_SPELLING = 32

# Postfix's security levels (postconf(5) smtp_tls_security_level, and the ``tls=`` field of
# Postfix 3.11), Exim's and people's spellings, lower-cased. "dane-only" is DANE without the
# opportunistic fallback; "fingerprint" pins the peer's certificate: a verified peer.
_POLICY_SPELLINGS = {
    **{policy: policy for policy in TLS_POLICIES},
    "dane-only": "dane",
    "fingerprint": "verify",
    "sts": "mta-sts",
    "mtasts": "mta-sts",
    "mta_sts": "mta-sts",
    "opportunistic": "may",
    "mandatory": "encrypt",
}
POLICY_SPELLINGS: tuple[str, ...] = tuple(sorted(_POLICY_SPELLINGS))  # for the spec
# Policies under which the MTA delivers only to a peer it verified: a delivered message under
# one of them, with no tls_auth logged, was authenticated.
_ENFORCING = frozenset({"dane", "mta-sts", "verify", "secure"})


@lru_cache(maxsize=256)
def canonical_tls_policy(value: str) -> str | None:
    """The canonical name of a policy spelling (case and outer whitespace ignored); None if
    unknown."""
    return _POLICY_SPELLINGS.get(value.strip().lower())


def default_security_class(tls_version: str) -> str:
    """The class of a message with no ``tls_auth`` and no ``tls_policy``: what a TLS version
    alone says (also the class of every counter kept before classes were counted)."""
    return "none" if tls_version == "none" else "encrypted"


@lru_cache(maxsize=256)
def security_class(tls_version: str, tls_auth: str | None, tls_policy: str | None) -> str:
    """The transport security class of a delivered message (canonical values in; the table of
    docs/transit-security.md):

    ===========  ==============================  ===================  ================
    tls_version  tls_policy                      tls_auth             class
    ===========  ==============================  ===================  ================
    none         any or absent                   (must be absent)     none
    TLS          dane                            verified or absent   dane
    TLS          mta-sts                         verified or absent   mta-sts
    TLS          verify, secure                  verified or absent   authenticated
    TLS          encrypt, may, absent            verified             authenticated
    TLS          any or absent                   trusted, untrusted,  encrypted
                                                 anonymous
    TLS          encrypt, may, absent            absent               encrypted
    ===========  ==============================  ===================  ================

    A policy that delivers only to a verified peer (dane, mta-sts, verify, secure) vouches for
    the peer when no authentication was logged; an authentication logged as anything but
    ``verified`` overrides the policy (a DANE or MTA-STS policy in a testing or fallback mode
    that delivered to a peer it could not verify): encrypted only.
    """
    if tls_version == "none":
        return "none"
    if (tls_auth is None and tls_policy in _ENFORCING) or tls_auth == "verified":
        if tls_policy in ("dane", "mta-sts"):
            return tls_policy
        return "authenticated"
    return "encrypted"
