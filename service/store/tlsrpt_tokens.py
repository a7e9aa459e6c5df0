"""TLS-RPT intake tokens: the secret in a tenant's ``rua=https://...`` URL.

Reporters send no Authorization header (RFC 8460 §5.3), so the URL itself is the credential.
A token is an API key record (``service.store.api_keys``: only the sha256 of its secret is
stored, compared in constant time, cached and revoked like any key) whose one scope,
``tlsrpt-intake``, lets it do nothing but post reports to its own tenant. The tenant's set of
token ids lists them; at most ``MAX_TOKENS`` live ones per tenant.
"""

from __future__ import annotations

import secrets
from datetime import datetime

import redis

from service.core.api_keys import hash_secret, validate_tenant
from service.core.tlsrpt import INTAKE_SCOPE
from service.store import api_keys, keys

MAX_TOKENS = 100


class TooManyTokens(Exception):
    pass


def create(client: redis.Redis, tenant: str, name: str, now: datetime) -> tuple[str, str]:
    """A new token for ``tenant``: (its id, the token), the only time the token exists whole."""
    validate_tenant(tenant)
    if len([r for r in list_tokens(client, tenant) if r.revoked_at is None]) >= MAX_TOKENS:
        raise TooManyTokens(f"the tenant already has {MAX_TOKENS} live intake tokens")
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    # Listed first: a crash between leaves a listed id without a record (skipped when
    # listing), never a working token nobody can see or revoke.
    client.sadd(keys.tlsrpt_intake_tokens(tenant), key_id)
    api_keys.save(client, key_id, hash_secret(secret), tenant, (INTAKE_SCOPE,), name,
                  now.isoformat(timespec="seconds"))  # fmt: skip
    return key_id, f"mf_{key_id}_{secret}"


def list_tokens(client: redis.Redis, tenant: str) -> list[api_keys.KeyRecord]:
    ids = sorted(_text(m) for m in client.smembers(keys.tlsrpt_intake_tokens(tenant)))
    records = [api_keys.load(client, key_id) for key_id in ids]
    return [r for r in records if r is not None and r.tenant == tenant]


def revoke(client: redis.Redis, tenant: str, token_id: str, now: datetime) -> bool:
    """Revoke the tenant's token ``token_id``; False when the tenant has no such token."""
    if not token_id.isalnum():
        return False
    record = api_keys.load(client, token_id)
    if record is None or record.tenant != tenant or record.scopes != (INTAKE_SCOPE,):
        return False
    return api_keys.revoke(client, token_id, now.isoformat(timespec="seconds"))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
