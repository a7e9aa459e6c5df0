"""What ingestion keeps of a trace's SMTP AUTH user: MAILFLOW_AUTH_USER_MODE (docs/domains.md).

User names are personal data, so the mode is applied to the accepted batch before anything is
stored: ``keep`` stores the name, ``drop`` stores nothing of it (the message still counts, in
its domain and everywhere else), ``hash`` stores a keyed hash (HMAC-SHA-256 with the service's
secret, the same for every process), so the report still groups a user's messages under one
pseudonym. The hash keeps the address's domain (``h:<20 hex>@example.com``): a report by
domain needs it, and it names an organisation, not a person.
"""

from __future__ import annotations

import hashlib
import hmac

from service.core.traces import FIELD_SEP, RECORD_SEP, WHO_PARTS

MODES = ("keep", "hash", "drop")
_USER = WHO_PARTS.index("auth_user") - 1  # position among the parts after the day


def hashed_user(user: str, secret: bytes) -> str:
    """The pseudonym of ``user``: stable for one secret, not reversible without it."""
    _, at, domain = user.rpartition("@")
    digest = hmac.new(secret, user.encode(), hashlib.sha256).hexdigest()[:20]
    return f"h:{digest}@{domain}" if at and domain else f"h:{digest}"


def protected_who_keys(who_keys: list[str], mode: str, secret: bytes) -> list[str]:
    """``who_keys`` with their user names kept, hashed or dropped as ``mode`` says."""
    if mode == "keep":
        return who_keys
    done: dict[str, str] = {}
    protected = []
    for key in who_keys:
        new = done.get(key)
        if new is None:
            day, rest = key.split(RECORD_SEP, 1)
            parts = rest.split(FIELD_SEP)
            if parts[_USER]:
                parts[_USER] = hashed_user(parts[_USER], secret) if mode == "hash" else ""
            new = done[key] = f"{day}{RECORD_SEP}{FIELD_SEP.join(parts)}"
        protected.append(new)
    return protected
