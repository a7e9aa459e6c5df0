"""API keys, scopes and the tenant of a request.

A key looks like ``mf_<id>_<secret>``: ``id`` (16 hex digits) is public and finds the record,
``secret`` (32 random bytes, base64url) is stored only as its sha256. Every ``/api/v1`` request
is checked here, before routing, so a new endpoint is covered without doing anything:

- GET and HEAD need ``read``; ``POST /api/v1/traces`` needs ``ingest``; every other write
  (POST, PUT, PATCH, DELETE) needs ``admin``. Scopes do not imply each other: give a key every
  scope it needs.
- The tenant is the key's tenant, and nothing in the request can change it.
- The same Redis call counts the request against the key's rate limit (``ratelimit``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from flask import Flask, g, request

from service.store import api_keys
from service.web import ratelimit
from service.web.api import context
from service.web.errors import Problem

SCOPES = ("ingest", "read", "admin")
API_PREFIX = "/api/v1"
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_TOKEN = re.compile(r"^mf_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
_READ_METHODS = frozenset({"GET", "HEAD"})
_INGEST_PATHS = frozenset({f"{API_PREFIX}/traces"})
_REALM = 'Bearer realm="mailflow"'


def validate_tenant(tenant: str) -> str:
    if not TENANT_PATTERN.fullmatch(tenant):
        raise ValueError(
            f"tenant {tenant!r} is not valid: 1-63 of a-z 0-9 _ -, starting with a letter or digit"
        )
    return tenant


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    client: redis.Redis, tenant: str, scopes: Iterable[str], name: str, now: datetime
) -> str:
    """Store a new key for ``tenant`` and return it; this is the only time it exists in full."""
    validate_tenant(tenant)
    scopes = sorted(set(scopes))
    unknown = set(scopes) - set(SCOPES)
    if not scopes or unknown:
        raise ValueError(f"scopes must be among {', '.join(SCOPES)}; got {', '.join(scopes)}")
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    api_keys.save(client, key_id, hash_secret(secret), tenant, scopes, name,
                  now.isoformat(timespec="seconds"))  # fmt: skip
    return f"mf_{key_id}_{secret}"


def parse_key(key: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed key, else None."""
    match = _TOKEN.fullmatch(key)
    return (match.group(1), match.group(2)) if match else None


# The hash an unknown key id's secret is compared with: an id that does not exist costs the
# same hashing and comparison as one that does, so timing tells nothing about which ids exist.
_NO_SUCH_KEY_HASH = hash_secret(secrets.token_urlsafe(32))


def secret_matches(record: api_keys.KeyRecord | None, presented_hash: str) -> bool:
    """Whether a live (not revoked) ``record`` has this secret; constant time, found or not."""
    expected = record.secret_hash if record is not None else _NO_SUCH_KEY_HASH
    matches = hmac.compare_digest(expected, presented_hash)
    return matches and record is not None and record.revoked_at is None


def key_is_valid(client: redis.Redis, key: str, tenant: str, scope: str) -> bool:
    """Whether ``key`` exists, is not revoked, and belongs to ``tenant`` with ``scope``."""
    parsed = parse_key(key)
    if parsed is None:
        return False
    record = api_keys.load(client, parsed[0])
    if record is None or not secret_matches(record, hash_secret(parsed[1])):
        return False
    return record.tenant == tenant and scope in record.scopes


def required_scope(method: str, path: str) -> str:
    if method in _READ_METHODS:
        return "read"
    if method == "POST" and path.rstrip("/") in _INGEST_PATHS:
        return "ingest"
    return "admin"


def is_api_path(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def _unauthorized(detail: str, error: str | None = None) -> Problem:
    challenge = _REALM if error is None else f'{_REALM}, error="{error}"'
    return Problem(401, detail, headers={"WWW-Authenticate": challenge})


# The environ entry through which the cached-read lane and the body reader (service.web.body_reads)
# hand a request to the full path with what they already found: the Grant (so the request is
# not counted twice), the error to answer with (a Problem, or Redis failing: not waited for a
# second time), or a Refused admitted request.
HANDOFF = "mailflow.handoff"


@dataclass(frozen=True)
class Grant:
    """An admitted request: its tenant and the rate-limit headers to send back."""

    tenant: str
    rate_headers: dict[str, str]


@dataclass(frozen=True)
class Refused:
    """An admitted request answered with a problem all the same (a body too slow, too many
    bodies at once): the answer still names its tenant and carries its rate-limit headers."""

    grant: Grant
    problem: Problem


class RateLimited(Problem):
    """429: the key is valid, its tenant known, and its budget for this minute spent."""

    def __init__(self, tenant: str, detail: str, headers: dict[str, str]) -> None:
        super().__init__(429, detail, headers=headers)
        self.tenant = tenant


def admit(
    state: dict[str, Any], authorization: str, method: str, path: str, now: datetime
) -> Grant:
    """Check the key of a ``/api/v1`` request and count it against the key's rate limit;
    raise Problem 401 / 403 / 429. ``state`` is the app's shared state (client, settings)."""
    scheme, _, key = authorization.partition(" ")
    if not authorization:
        raise _unauthorized("send an API key: Authorization: Bearer <key>")
    parsed = parse_key(key.strip()) if scheme.lower() == "bearer" else None
    if parsed is None:
        raise _unauthorized("the Authorization header is not 'Bearer <key>' with a mailflow key",
                            "invalid_request")  # fmt: skip
    key_id, secret = parsed
    presented = hash_secret(secret)
    scope = required_scope(method, path)
    client = state["redis"]
    record = api_keys.load_for_request(client, key_id)
    if record is None or not secret_matches(record, presented):
        raise _unauthorized("the API key is unknown or revoked", "invalid_token")
    if scope not in record.scopes:
        challenge = f'{_REALM}, error="insufficient_scope", scope="{scope}"'
        detail = f"this key lacks the {scope!r} scope needed for {method} {path}"
        raise Problem(403, detail, slug="insufficient-scope",
                      headers={"WWW-Authenticate": challenge})  # fmt: skip
    # Counted only now, with the right secret: knowing a key's public id spends none of it.
    settings = state["settings"]
    window = ratelimit.window_at(now)
    limit = ratelimit.limit_for(scope, settings.rate_limit_per_minute,
                                settings.rate_limit_ingest_per_minute)  # fmt: skip
    decision = state["rate_leases"].take(client, key_id, scope, window.index,
                                         window.ttl_seconds, limit)  # fmt: skip
    headers = ratelimit.headers(limit, decision.remaining, window.reset_seconds, decision.allowed)
    if not decision.allowed:
        raise RateLimited(record.tenant, f"over {limit} {scope} requests per minute for this "
                          f"key; retry in {window.reset_seconds} s", headers)  # fmt: skip
    return Grant(record.tenant, headers)


def authenticate() -> None:
    """before_request: 401 / 403 / 429, or set ``g.tenant`` and the rate-limit headers."""
    if request.method == "OPTIONS" or not is_api_path(request.path):
        return
    outcome = request.environ.pop(HANDOFF, None)
    if outcome is None:
        outcome = admit(context.extension(), request.headers.get("Authorization", ""),
                        request.method, request.path, context.now())  # fmt: skip
    if isinstance(outcome, Refused):
        g.tenant = outcome.grant.tenant
        g.rate_limit_headers = outcome.grant.rate_headers
        raise outcome.problem
    if isinstance(outcome, RateLimited):
        g.tenant = outcome.tenant
        g.rate_limit_headers = outcome.fields["headers"]
    if isinstance(outcome, Exception):
        raise outcome
    g.tenant = outcome.tenant
    g.rate_limit_headers = outcome.rate_headers


def install(app: Flask) -> None:
    app.before_request(authenticate)


_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
_INT_HEADER = {"schema": {"type": "integer", "minimum": 0}}
_RATE_HEADERS = {
    "RateLimit-Limit": {**_INT_HEADER, "description": "Requests allowed per window"},
    "RateLimit-Remaining": {**_INT_HEADER, "description": "Requests left in this window"},
    "RateLimit-Reset": {**_INT_HEADER, "description": "Seconds until the window resets"},
}
_SECURITY_RESPONSES = {
    "401": ("Unauthorized", "Missing, malformed, unknown or revoked API key",
            {"WWW-Authenticate": {"schema": {"type": "string"}}}),
    "403": ("Forbidden", "The key lacks the scope this operation needs",
            {"WWW-Authenticate": {"schema": {"type": "string"}}}),
    "429": ("TooManyRequests", "Over the key's rate limit, or (requests with a body) the "
            "tenant already sends as many bodies as it may at once; retry after `Retry-After` "
            "seconds",
            {"Retry-After": {**_INT_HEADER, "description": "Seconds to wait"}, **_RATE_HEADERS}),
}  # fmt: skip
# Requests with a body (every write) are read whole before they run (service.web.body_reads).
_BODY_RESPONSES = {
    "408": ("BodyTimeout", "The request body did not arrive within "
            "`MAILFLOW_BODY_READ_TIMEOUT_SECONDS`; the connection is closed", {}),
    "503": ("Unavailable", "The service or its data store cannot take the request now; retry "
            "after `Retry-After` seconds",
            {"Retry-After": {**_INT_HEADER, "description": "Seconds to wait"}}),
}  # fmt: skip
_WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
_METHODS = ("get", "head", "post", "put", "patch", "delete")


def document(spec: Any) -> None:
    """Add the bearer scheme, and security plus 401/403/429 to every /api/v1 operation.

    Called once all blueprints are registered, so a new endpoint is documented like it is
    enforced: without doing anything.
    """
    spec.components.security_scheme("bearerAuth", {
        "type": "http", "scheme": "bearer",
        "description": "An API key from `mailflow keys create`: `Authorization: Bearer mf_...`. "
        "GET/HEAD need scope `read`, POST /api/v1/traces `ingest`, other writes `admin`.",
    })  # fmt: skip
    for name, description, headers in (*_SECURITY_RESPONSES.values(), *_BODY_RESPONSES.values()):
        spec.components.response(name, {"description": description, "content": _PROBLEM,
                                        "headers": headers})  # fmt: skip
    for path, operations in spec._paths.items():  # apispec keeps no public view of the paths
        if not is_api_path(path):
            continue
        for method in _METHODS:
            operation = operations.get(method)
            if operation is None:
                continue
            operation["security"] = [{"bearerAuth": []}]
            responses = operation.setdefault("responses", {})
            extra = _BODY_RESPONSES if method in _WRITE_METHODS else {}
            for status, (name, _, _) in {**_SECURITY_RESPONSES, **extra}.items():
                responses.setdefault(status, {"$ref": f"#/components/responses/{name}"})
