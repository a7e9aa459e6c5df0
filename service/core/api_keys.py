"""An API key's form: ``mf_<id>_<secret>``, its scopes, its tenant's name, its secret's hash.

``id`` (16 hex digits) is public and finds the record, ``secret`` (32 random bytes, base64url)
is stored only as its sha256 (``service.store.api_keys``). Scopes do not imply each other:
``read`` (GET, HEAD), ``ingest`` (POST /api/v1/traces), ``admin`` (every other write).
"""

from __future__ import annotations

import hashlib
import re

SCOPES = ("ingest", "read", "admin")
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_TOKEN = re.compile(r"^mf_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


def validate_tenant(tenant: str) -> str:
    if not TENANT_PATTERN.fullmatch(tenant):
        raise ValueError(
            f"tenant {tenant!r} is not valid: 1-63 of a-z 0-9 _ -, starting with a letter or digit"
        )
    return tenant


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_key(key: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed key, else None."""
    match = _TOKEN.fullmatch(key)
    return (match.group(1), match.group(2)) if match else None
