"""Signing in to the dashboard, the session cookie, and CSRF tokens.

- Signing in presents a key with the ``read`` scope in a form (a POST body: never a URL). The
  key is admitted exactly as an API request is (``auth.admit_key``); the session stored in
  Redis (``store.dashboard_sessions``) keeps its id and the sha256 of its secret, never the
  secret, and the browser gets only a signed reference to that session.
- The cookie is HttpOnly and SameSite=Strict (Secure when the request came over HTTPS). It is
  signed with the cursor secret (``MAILFLOW_SECRET_KEY``, or the one kept in Redis), which
  every process and host shares.
- Every request re-admits the key with the same rules as the API (revoked: signed out now;
  over the rate limit: 429) and checks the session's idle and absolute limits on the app's clock.
- CSRF: forms of a session carry the session's token. The sign-in form, before any session,
  carries a random token also set in a short-lived signed cookie (double submit).
"""

from __future__ import annotations

import functools
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import g, request
from itsdangerous import BadSignature, TimestampSigner, URLSafeSerializer, URLSafeTimedSerializer
from werkzeug.wrappers import Response

from service.config import Settings
from service.core.api_keys import hash_secret, parse_key
from service.store import dashboard_sessions
from service.store.dashboard_sessions import DashboardSession, Limits
from service.web import auth, context
from service.web.errors import Problem

SESSION_COOKIE = "mailflow_session"
SIGN_IN_COOKIE = "mailflow_sign_in"
SIGN_IN_SECONDS = 3600  # a sign-in form older than this asks to be loaded again
_SESSION_SALT = "mailflow.dashboard.session"
_SIGN_IN_SALT = "mailflow.dashboard.sign-in"


@dataclass(frozen=True)
class SignedIn:
    """This request's session and what its key may do."""

    session: DashboardSession
    admin: bool


# environ: (session id, Grant or the error the admission raised) when the widget's lane
# (``lane``) admitted the key already: the full path answers with it instead of counting the
# request a second time (as ``auth.HANDOFF`` does for the API's cached-read lane).
LANE_GRANT = "mailflow.dashboard.grant"


def idle_limit(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.session_idle_minutes)


def max_age(settings: Settings) -> timedelta:
    return timedelta(hours=settings.session_max_hours)


def limits() -> Limits:
    settings = context.settings()
    return Limits(idle=idle_limit(settings), absolute=max_age(settings))


@functools.lru_cache(maxsize=8)
def _serializer_for(secret: bytes, salt: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=salt)


def _serializer(salt: str) -> URLSafeSerializer:
    return _serializer_for(context.cursor_secret().get(context.client()), salt)


class _ClockSigner(TimestampSigner):
    """Stamps and checks with the app's clock (the injected one in tests), not time.time()."""

    def get_timestamp(self) -> int:
        return int(context.now().timestamp())


def _sign_in_serializer() -> URLSafeTimedSerializer:
    """The sign-in token is timed: a captured cookie and token pair is void after
    SIGN_IN_SECONDS, whatever the browser does with the cookie's max-age."""
    return URLSafeTimedSerializer(context.cursor_secret().get(context.client()),
                                  salt=_SIGN_IN_SALT, signer=_ClockSigner)  # fmt: skip


def _set_cookie(response: Response, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True,
                        samesite="Strict", secure=request.is_secure)  # fmt: skip


def _admit(session: DashboardSession, scope: str) -> auth.Grant:
    method = "GET" if scope == "read" else request.method
    return auth.admit_key(context.app_state(), session.key_id, session.secret_hash, scope,
                          method, request.path, context.now())  # fmt: skip


def session_id_signed_with(secret: bytes, cookie: str | None) -> str | None:
    """The session id a cookie signed with ``secret`` refers to; None for anything else."""
    if not cookie:
        return None
    try:
        session_id = _serializer_for(secret, _SESSION_SALT).loads(cookie)
    except BadSignature:
        return None
    return session_id if isinstance(session_id, str) else None


def _session_id_of(cookie: str | None) -> str | None:
    return session_id_signed_with(context.cursor_secret().get(context.client()), cookie)


def _admitted(session_id: str, session: DashboardSession) -> auth.Grant:
    """This request's admission for ``read``: the lane's when it made one (its grant, or the
    error it ended in, raised here), else made now."""
    handed = request.environ.pop(LANE_GRANT, None)
    if handed is None or handed[0] != session_id:
        return _admit(session, "read")
    outcome = handed[1]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome  # type: ignore[no-any-return]


def current(scope: str = "read") -> SignedIn | None:
    """The signed-in session of this request, its key admitted again for ``scope``; None when
    there is none (no cookie, a bad signature, expired, the key revoked). Sets ``g.tenant``."""
    session_id = _session_id_of(request.cookies.get(SESSION_COOKIE))
    if session_id is None:
        return None
    client = context.client()
    session = dashboard_sessions.use(client, session_id, context.now(), limits())
    if session is None:
        return None
    try:
        grant = _admitted(session_id, session)
    except auth.RateLimited:
        raise
    except Problem:  # revoked or gone: this session is over
        dashboard_sessions.end(client, session_id)
        return None
    g.tenant = grant.tenant
    g.rate_limit_headers = grant.rate_headers
    admin = "admin" in grant.scopes
    if scope == "admin":
        _admit(session, "admin")  # 403 without the scope; counted as an admin call
    return SignedIn(session, admin)


def sign_in(key_text: str) -> tuple[DashboardSession, str]:
    """A new session for a key with the ``read`` scope, and its signed cookie value; Problem
    401/403/429 as the API would answer the key."""
    parsed = parse_key(key_text.strip())
    if parsed is None:
        raise Problem(401, "that is not a mailflow API key", slug="invalid-key")
    key_id, secret = parsed
    grant = auth.admit_key(context.app_state(), key_id, hash_secret(secret), "read", "GET",
                           request.path, context.now())  # fmt: skip
    previous = _session_id_of(request.cookies.get(SESSION_COOKIE))
    if previous is not None:  # signing in again (another key, perhaps) ends the old session
        dashboard_sessions.end(context.client(), previous)
    session = dashboard_sessions.create(context.client(), key_id, hash_secret(secret),
                                        grant.tenant, context.now(), limits())  # fmt: skip
    g.tenant = grant.tenant
    return session, _serializer(_SESSION_SALT).dumps(session.session_id)


def set_session_cookie(response: Response, value: str) -> None:
    _set_cookie(response, SESSION_COOKIE, value, None)  # a browser-session cookie


def sign_out(response: Response) -> None:
    """End this request's session (its form must carry the session's CSRF token) and drop the
    cookie. The key is not admitted again: a key over its rate limit, or revoked, can still
    sign out."""
    session_id = _session_id_of(request.cookies.get(SESSION_COOKIE))
    if session_id is not None:
        client = context.client()
        own = dashboard_sessions.use(client, session_id, context.now(), limits())
        if own is not None:
            if not hmac.compare_digest(request.form.get("csrf", ""), own.csrf):
                raise _csrf_refused()
            dashboard_sessions.end(client, session_id)
    drop_cookie(response)


def drop_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="Strict",
                           secure=request.is_secure)  # fmt: skip


def new_sign_in_token(response: Response) -> str:
    """A token for the sign-in form, also set (signed) in a cookie the POST must bring back."""
    token = secrets.token_urlsafe(32)
    _set_cookie(response, SIGN_IN_COOKIE, _sign_in_serializer().dumps(token),
                SIGN_IN_SECONDS)  # fmt: skip
    return token


def check_sign_in_token() -> None:
    """403 unless the form's token is the one in the sign-in cookie."""
    sent = request.form.get("csrf", "")
    try:
        expected = _sign_in_serializer().loads(request.cookies.get(SIGN_IN_COOKIE, ""),
                                               max_age=SIGN_IN_SECONDS)  # fmt: skip
    except BadSignature:  # also SignatureExpired: the cookie's max-age binds only the browser
        expected = None
    if not isinstance(expected, str) or not hmac.compare_digest(sent, expected):
        raise _csrf_refused()


def check_csrf(signed_in: SignedIn) -> None:
    """403 unless the form carries this session's CSRF token."""
    if not hmac.compare_digest(request.form.get("csrf", ""), signed_in.session.csrf):
        raise _csrf_refused()


def _csrf_refused() -> Problem:
    return Problem(403, "the form's CSRF token is missing or does not match: load the page "
                   "again and resubmit", slug="csrf-refused", title="CSRF check failed")  # fmt: skip
