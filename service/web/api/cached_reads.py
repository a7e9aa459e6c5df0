"""The cached-read lane: the default GETs of the reports, answered without Flask's machinery.

Dashboards and SIEMs ask the same few questions over and over: the snapshot, the TLS flyout,
the first page of the connector report and of the insight feed, with default parameters.
Their answers are bytes already built, held in each process's near cache, so what a request
costs is the machinery around them: routing, argument parsing, request context and hooks.
For exactly these requests this WSGI middleware does only what they need, with the same
functions the full path uses — admit the key (``auth.admit``: scopes, rate limit), get the view,
answer 200 or 304 with the headers the full path sends, count and log the request — and hands
every other request to Flask untouched. Anything unusual (another parameter, a key problem, a
CSV request, Redis failing) also goes the full path, which answers it as it always does; an
admission already made travels with it (``auth.HANDOFF``), so nothing is counted twice. A
test holds the two paths to identical answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any

import redis
from flask import Flask

from service.core.local_days import tenant_now
from service.core.who import AUTH_USERS, DOMAINS, WhoKind
from service.core.windows import Window, resolve_window
from service.reports import connector_pages, views, who_reports
from service.reports.insight_feed import DEFAULT_LIMIT, DEFAULT_STATE, feed_page
from service.store import tenant_zone
from service.store.views import CachedView
from service.web import auth, request_log
from service.web.api.schemas import ConnectorReportArgsSchema, DomainReportArgsSchema
from service.web.context import AppState, state_of
from service.web.headers import EVERY_RESPONSE, EXPOSE_HEADERS, allowed_origin
from service.web.media_types import prefers_csv
from service.web.responses import CACHE_CONTROL, etag_matches

StartResponse = Callable[..., Any]
ViewOf = Callable[[AppState, str, "int | None"], CachedView]

# The query strings a route answers here: its defaults, or one of the precomputed windows.
_WINDOW_QUERIES: dict[str, int | None] = {"": None, "days=7": 7, "days=30": 30}
_DEFAULT_QUERY: dict[str, int | None] = {"": None}


def _window(state: AppState, days: int | None, now: datetime) -> Window:
    return resolve_window(now.date(), state.settings.retention_days, days=days, default_days=7)


def _tenant_now(state: AppState, tenant: str) -> datetime:
    """The clock as ``tenant`` sees it (its local days: service.core.local_days)."""
    return tenant_now(state.clock(), tenant_zone.zone_of(state.client, tenant))


def _snapshot(state: AppState, tenant: str, days: int | None) -> CachedView:
    now = _tenant_now(state, tenant)
    return views.snapshot_view(state.client, tenant, _window(state, days, now), now,
                               state.settings.view_cache_seconds)  # fmt: skip


def _tls(state: AppState, tenant: str, days: int | None) -> CachedView:
    now = _tenant_now(state, tenant)
    return views.tls_view(state.client, tenant, _window(state, days, now), None, now,
                          state.settings.view_cache_seconds)  # fmt: skip


_CONNECTOR_DEFAULTS = ConnectorReportArgsSchema().load({})


@lru_cache(maxsize=64)
def _default_connector_query(days: int | None, window: Window) -> connector_pages.ReportQuery:
    return connector_pages.report_query({**_CONNECTOR_DEFAULTS, "days": days}, window)


def _connectors(state: AppState, tenant: str, days: int | None) -> CachedView:
    now = _tenant_now(state, tenant)
    query = _default_connector_query(days, _window(state, days, now))
    return connector_pages.report_page(state.client, tenant, query, now,
                                       state.settings.view_cache_seconds,
                                       state.cursor_secret)  # fmt: skip


def _insights(state: AppState, tenant: str, days: int | None) -> CachedView:
    return feed_page(state.client, tenant, state.cursor_secret, DEFAULT_STATE,
                     DEFAULT_LIMIT)  # fmt: skip


_WHO_DEFAULTS = DomainReportArgsSchema().load({})


def _who(kind: WhoKind) -> ViewOf:
    """The first page of a per-domain / SMTP AUTH client report (docs/domains.md)."""

    def view(state: AppState, tenant: str, days: int | None) -> CachedView:
        now = _tenant_now(state, tenant)
        window = resolve_window(now.date(), state.settings.domain_retention_days, days=days,
                                default_days=7)  # fmt: skip
        query = who_reports.who_query(kind, {**_WHO_DEFAULTS, "days": days}, window)
        return who_reports.report_page(state.client, tenant, query, now,
                                       state.settings.view_cache_seconds,
                                       state.cursor_secret)  # fmt: skip

    return view


# path -> (the query strings answered here, the view)
ROUTES: dict[str, tuple[dict[str, int | None], ViewOf]] = {
    "/api/v1/mailflow/snapshot": (_WINDOW_QUERIES, _snapshot),
    "/api/v1/mailflow/tls": (_WINDOW_QUERIES, _tls),
    "/api/v1/connectors": (_WINDOW_QUERIES, _connectors),
    "/api/v1/insights": (_DEFAULT_QUERY, _insights),
    "/api/v1/domains": (_WINDOW_QUERIES, _who(DOMAINS)),
    "/api/v1/auth-clients": (_WINDOW_QUERIES, _who(AUTH_USERS)),
}


def _handoff(error: Exception, grant: auth.Grant | None) -> auth.Grant | Exception:
    """What the full path takes over: the error itself when it is the answer (a key problem,
    Redis failing: asking Redis again would double the wait), else the admission made, so
    the full path runs the view again itself (and answers e.g. a window past retention)."""
    if grant is None or isinstance(error, redis.RedisError):
        return error
    return grant


class CachedReads:
    """WSGI middleware in front of the Flask app (``app.wsgi_app``)."""

    def __init__(self, app: Flask, full_path: Callable[[dict[str, Any], StartResponse], Any]):
        self.state = state_of(app)
        self.full_path = full_path
        self.origins = self.state.settings.cors_origin_list
        self.vary = "Authorization, Origin" if self.origins else "Authorization"

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        route = ROUTES.get(path)
        if route is None or environ.get("REQUEST_METHOD") != "GET":
            return self.full_path(environ, start_response)  # type: ignore[no-any-return]
        queries, view_of = route
        query = environ.get("QUERY_STRING", "")
        if query not in queries or prefers_csv(environ.get("HTTP_ACCEPT")):
            return self.full_path(environ, start_response)  # type: ignore[no-any-return]
        started = time.perf_counter()
        grant = None
        try:
            grant = auth.admit(self.state, environ.get("HTTP_AUTHORIZATION", ""), "GET", path,
                               self.state.clock())  # fmt: skip
            view = view_of(self.state, grant.tenant, queries[query])
        except Exception as error:  # noqa: BLE001 - the full path answers, as it always does
            environ[auth.HANDOFF] = _handoff(error, grant)
            return self.full_path(environ, start_response)  # type: ignore[no-any-return]
        return self._answer(environ, start_response, path, grant, view, started)

    def _answer(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        path: str,
        grant: auth.Grant,
        view: CachedView,
        started: float,
    ) -> Iterable[bytes]:
        request_id = request_log.request_id_from(environ.get("HTTP_X_REQUEST_ID", ""))
        not_modified = etag_matches(environ.get("HTTP_IF_NONE_MATCH"), view.etag)
        body = b"" if not_modified else view.body
        headers = [] if not_modified else [("Content-Type", "application/json"),
                                           ("Content-Length", str(len(body)))]  # fmt: skip
        headers += [
            ("ETag", view.etag),
            ("Cache-Control", CACHE_CONTROL),
            *EVERY_RESPONSE.items(),
            *grant.rate_headers.items(),
            ("Vary", self.vary),
        ]  # fmt: skip
        origin = allowed_origin(environ.get("HTTP_ORIGIN"), self.origins)
        if origin is not None:
            headers += [("Access-Control-Allow-Origin", origin),
                        ("Access-Control-Expose-Headers", EXPOSE_HEADERS)]  # fmt: skip
        headers.append(("X-Request-Id", request_id))
        status = 304 if not_modified else 200
        start_response("304 NOT MODIFIED" if not_modified else "200 OK", headers)
        request_log.record_request("GET", path, path, status, time.perf_counter() - started,
                            grant.tenant, self.state.settings.access_log,
                            request_id)  # fmt: skip
        return [body]
