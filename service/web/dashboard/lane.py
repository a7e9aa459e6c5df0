"""The widget's lean lane: ``GET /`` answered without Flask when its page is already rendered.

The widget is what a signed-in browser refreshes every 30 s. When nothing changed, its page
exists already, rendered, under an ETag made of the snapshot view's ETag and the session
(``pages.RENDERED``). For that request this WSGI middleware does only what the full path does
with the same functions — the session (``store.dashboard_sessions``), the key admitted again
(``auth.admit_key``), the snapshot view, the page's ETag — and answers 200 or 304 with the
headers the full path sends, logging the request alike. Anything else (no session, a key
problem, a page not rendered yet, Redis failing) goes the full path, which answers as always;
an admission made here travels with it (``session.LANE_GRANT``): the grant, or the error it
ended in (over the rate limit, revoked, Redis failing), so no request is counted twice. A test
holds the two paths to identical answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from http.cookies import SimpleCookie
from typing import Any

from flask import Flask

from service.core.local_days import tenant_now, zone_name
from service.core.windows import resolve_window
from service.reports import views
from service.store import dashboard_sessions, tenant_zone
from service.store.dashboard_sessions import DashboardSession, Limits
from service.web import auth, request_log
from service.web.context import state_of
from service.web.dashboard import pages, session
from service.web.headers import EVERY_RESPONSE
from service.web.responses import etag_matches

StartResponse = Callable[..., Any]


class WidgetLane:
    """WSGI middleware in front of the Flask app (``app.wsgi_app``)."""

    def __init__(self, app: Flask, full_path: Callable[[dict[str, Any], StartResponse], Any]):
        self.state = state_of(app)
        self.full_path = full_path

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if (environ.get("PATH_INFO") != "/" or environ.get("REQUEST_METHOD") != "GET"
                or environ.get("QUERY_STRING")):  # fmt: skip
            return self.full_path(environ, start_response)  # type: ignore[no-any-return]
        started = time.perf_counter()
        try:
            answer = self._rendered(environ)
        except Exception:  # noqa: BLE001 - the full path answers, as it always does
            answer = None
        if answer is None:
            return self.full_path(environ, start_response)  # type: ignore[no-any-return]
        grant, etag, html = answer
        request_id = request_log.request_id_from(environ.get("HTTP_X_REQUEST_ID", ""))
        not_modified = etag_matches(environ.get("HTTP_IF_NONE_MATCH"), etag)
        body = b"" if not_modified else html
        headers = [] if not_modified else [("Content-Type", "text/html; charset=utf-8"),
                                           ("Content-Length", str(len(body)))]  # fmt: skip
        headers += [
            ("ETag", etag),
            ("Cache-Control", pages.PAGE_CACHE_CONTROL),
            *EVERY_RESPONSE.items(),
            ("Content-Security-Policy", pages.CONTENT_SECURITY_POLICY),
            ("Vary", "Cookie"),
            ("X-Request-Id", request_id),
        ]  # fmt: skip
        status = 304 if not_modified else 200
        start_response("304 NOT MODIFIED" if not_modified else "200 OK", headers)
        request_log.record_request("GET", "/", "/", status, time.perf_counter() - started,
                                   grant.tenant, self.state.settings.access_log,
                                   request_id)  # fmt: skip
        return [body]

    def _rendered(self, environ: dict[str, Any]) -> tuple[auth.Grant, str, bytes] | None:
        """The admitted grant, ETag and HTML of this session's widget page if it is rendered
        already; None (nothing counted, or the admission's grant or error handed on) for the
        full path."""
        cookies = SimpleCookie(environ.get("HTTP_COOKIE", ""))
        morsel = cookies.get(session.SESSION_COOKIE)
        state = self.state
        client, now, settings = state.client, state.clock(), state.settings
        secret = state.cursor_secret.get(client)
        session_id = session.session_id_signed_with(secret, morsel.value if morsel else None)
        if session_id is None:
            return None
        limits = Limits(idle=session.idle_limit(settings), absolute=session.max_age(settings))
        found: DashboardSession | None = dashboard_sessions.use(client, session_id, now, limits)
        if found is None:
            return None
        try:
            grant = auth.admit_key(state, found.key_id, found.secret_hash, "read", "GET", "/", now)
        except Exception as error:  # noqa: BLE001 - revoked, over the limit: the full path answers it
            # with this very error: admitting again would count a refused request twice.
            environ[session.LANE_GRANT] = (session_id, error)
            return None
        environ[session.LANE_GRANT] = (session_id, grant)
        zone = tenant_zone.zone_of(client, grant.tenant)
        local_now = tenant_now(now, zone)
        window = resolve_window(local_now.date(), settings.retention_days, default_days=7)
        view = views.snapshot_view(client, grant.tenant, window, local_now,
                                   settings.view_cache_seconds)  # fmt: skip
        etag = pages.page_etag(["/?", found.csrf, str("admin" in grant.scopes), zone_name(zone),
                                view.etag])  # fmt: skip
        html = pages.RENDERED.get(etag)
        return None if html is None else (grant, etag, html)
