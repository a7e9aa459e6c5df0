"""Request admission: the API key, scope and rate limit of a request, and its tenant.

A key's form is ``service.core.api_keys``; its record ``service.store.api_keys``. Every
``/api/v1`` request is checked here, before routing, so a new endpoint is covered without doing anything:

- GET and HEAD need ``read``; ``POST /api/v1/traces`` needs ``ingest``; every other write
  (POST, PUT, PATCH, DELETE) needs ``admin``, and so does everything under /api/v1/webhooks. Scopes do not imply each other: give a key every
  scope it needs.
- The tenant is the key's tenant, and nothing in the request can change it.
- The same Redis call counts the request against the key's rate limit (``ratelimit``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import Flask, g, request

from service.core.api_keys import hash_secret, parse_key
from service.core.tlsrpt import INTAKE_PATH, INTAKE_SCOPE
from service.store import api_keys
from service.web import context, ratelimit
from service.web.errors import Problem

API_PREFIX = "/api/v1"
_READ_METHODS = frozenset({"GET", "HEAD"})
_INGEST_PATHS = frozenset({f"{API_PREFIX}/traces", f"{API_PREFIX}/tlsrpt"})
_REALM = 'Bearer realm="mailflow"'


# Reads that need ``admin``: webhook subscriptions name their receivers' URLs, which often
# carry a credential of their own (Slack and Teams webhook URLs do).
_ADMIN_READ_PREFIXES = (f"{API_PREFIX}/webhooks",)


def required_scope(method: str, path: str) -> str:
    if path.startswith(_ADMIN_READ_PREFIXES):
        return "admin"
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
    scopes: tuple[str, ...] = ()  # every scope of the key (the dashboard shows admin forms)


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
    state: context.AppState, authorization: str, method: str, path: str, now: datetime
) -> Grant:
    """Check the key of a ``/api/v1`` request and count it against the key's rate limit;
    raise Problem 401 / 403 / 429. ``state`` is the app's shared state (client, settings)."""
    if path.startswith(INTAKE_PATH):
        return admit_intake(state, path[len(INTAKE_PATH) :], method, path, now)
    scheme, _, key = authorization.partition(" ")
    if not authorization:
        raise _unauthorized("send an API key: Authorization: Bearer <key>")
    parsed = parse_key(key.strip()) if scheme.lower() == "bearer" else None
    if parsed is None:
        raise _unauthorized("the Authorization header is not 'Bearer <key>' with a mailflow key",
                            "invalid_request")  # fmt: skip
    key_id, secret = parsed
    return admit_key(state, key_id, hash_secret(secret), required_scope(method, path), method,
                     path, now)  # fmt: skip


def admit_intake(
    state: context.AppState, token: str, method: str, path: str, now: datetime
) -> Grant:
    """A TLS-RPT intake URL: its token, not a header, is the credential (reporters send none),
    and it is good for its tenant's intake only (service.store.tlsrpt_tokens)."""
    parsed = parse_key(token.rstrip("/"))
    if parsed is None:
        raise Problem(404, "no such TLS-RPT intake URL")
    key_id, secret = parsed
    return admit_key(state, key_id, hash_secret(secret), INTAKE_SCOPE, method, path, now)


def admit_key(
    state: context.AppState,
    key_id: str,
    presented: str,
    scope: str,
    method: str,
    path: str,
    now: datetime,
) -> Grant:
    """``admit`` of a key already parsed: its id and the sha256 of its secret. The dashboard
    admits its session's key through here on every request, as the API admits a bearer key."""
    client = state.client
    record = api_keys.load_for_request(client, key_id)
    if record is None or not api_keys.secret_matches(record, presented):
        raise _unauthorized("the API key is unknown or revoked", "invalid_token")
    if scope not in record.scopes:
        challenge = f'{_REALM}, error="insufficient_scope", scope="{scope}"'
        detail = f"this key lacks the {scope!r} scope needed for {method} {path}"
        raise Problem(403, detail, slug="insufficient-scope",
                      headers={"WWW-Authenticate": challenge})  # fmt: skip
    # Counted only now, with the right secret: knowing a key's public id spends none of it.
    settings = state.settings
    window = ratelimit.window_at(now)
    limit = ratelimit.limit_for(scope, settings.rate_limit_per_minute,
                                settings.rate_limit_ingest_per_minute)  # fmt: skip
    decision = state.rate_leases.take(client, key_id, scope, window.index,
                                         window.ttl_seconds, limit)  # fmt: skip
    headers = ratelimit.headers(limit, decision.remaining, window.reset_seconds, decision.allowed)
    if not decision.allowed:
        raise RateLimited(record.tenant, f"over {limit} {scope} requests per minute for this "
                          f"key; retry in {window.reset_seconds} s", headers)  # fmt: skip
    return Grant(record.tenant, headers, record.scopes)


def authenticate() -> None:
    """before_request: 401 / 403 / 429, or set ``g.tenant`` and the rate-limit headers."""
    if request.method == "OPTIONS" or not is_api_path(request.path):
        return
    outcome = request.environ.pop(HANDOFF, None)
    if outcome is None:
        outcome = admit(context.app_state(), request.headers.get("Authorization", ""),
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
