"""The application factory: configuration, extensions, blueprints — nothing else."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from flask_smorest import Api
from redis.cluster import RedisCluster

from service.config import Settings
from service.store import near_cache
from service.store.connection import connect
from service.store.cursor_secret import CursorSecret
from service.store.near_cache import NearCache
from service.store.rate_counters import RateLeases
from service.web import api_docs, auth, errors, headers, request_log
from service.web.api import (
    connectors,
    health,
    insights,
    mailflow,
    metrics,
    schemas,
    tenant,
    tls_reports,
    tlsrpt,
    traces,
    webhooks,
    who,
)
from service.web.api.cached_reads import CachedReads
from service.web.api.paging_links import PagingLinks
from service.web.body_reads import BodyReads
from service.web.context import EXTENSION, AppState, state_of
from service.web.dashboard import pages as dashboard
from service.web.dashboard import (
    tlsrpt_page,  # noqa: F401 - adds /tls-reports to the dashboard
    transit_page,  # noqa: F401 - adds /transit-security to it
    webhooks_page,  # noqa: F401 - registers /webhooks on it
)
from service.web.dashboard.lane import WidgetLane
from service.web.openapi_problems import ProblemResponses
from service.web.openapi_security import SecurityDocs


class MailflowApi(Api):
    """flask-smorest with problem+json as the documented and the real error body."""

    ERROR_SCHEMA = schemas.ProblemSchema
    DEFAULT_RESPONSE_CONTENT_TYPE: str = "application/json"
    DEFAULT_ERROR_RESPONSE_NAME = "DEFAULT_ERROR"

    def handle_http_exception(self, error: Exception) -> Any:
        return errors._from_http_exception(error)  # type: ignore[arg-type]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _near_cache(client: Any, settings: Settings) -> NearCache | None:
    """Key records and precomputed views kept in this process, invalidated by Redis messages.
    Not on a cluster client: its pub/sub reaches one node, and the cache would go deaf there."""
    if not settings.near_cache or isinstance(client, RedisCluster):
        return None
    cache = NearCache().start(client)
    near_cache.attach(client, cache)
    return cache


def close_app(app: Flask) -> None:
    """Stop what create_app started (the near-cache listener) and close the Redis client."""
    state = state_of(app)
    if state.near_cache is not None:
        state.near_cache.stop()
    state.client.close()


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. ``overrides`` may set any Settings field, ``CLOCK`` and ``REDIS``."""
    overrides = dict(overrides or {})
    settings = Settings.from_env().with_overrides(overrides)
    clock: Callable[[], datetime] = overrides.pop("CLOCK", _utc_now)

    app = Flask(__name__)
    app.config.update(
        API_TITLE="mailflow",
        API_VERSION="1.0.0",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        MAX_CONTENT_LENGTH=None,  # the traces endpoint enforces its own limit, before parsing
        JSON_SORT_KEYS=False,
    )
    client = overrides.get("REDIS") or connect(settings)
    app.extensions[EXTENSION] = AppState(
        settings=settings,
        clock=clock,
        client=client,
        rate_leases=RateLeases(),
        near_cache=_near_cache(client, settings),
        cursor_secret=CursorSecret(settings.secret_key),
    )

    api = MailflowApi(app, spec_kwargs={
        "info": {"description": "TLS mail-flow reports"},
        # Public apispec hooks: the problem+json error components, and on each operation as
        # its blueprint is registered, the API key's security and the paging links.
        "extra_plugins": [ProblemResponses(), SecurityDocs(), PagingLinks()],
    })  # fmt: skip
    api.spec.components.schema("Trace", component=schemas.TRACE_CONNECTOR_RULE,
                               schema=schemas.TraceSchema)  # fmt: skip
    for blueprint in (
        traces.blp,
        mailflow.blp,
        connectors.blp,
        insights.blp,
        health.blp,
        metrics.blp,
        tlsrpt.blp,
        tls_reports.blp,
        webhooks.blp,
        who.domains_blp,
        who.auth_clients_blp,
        tenant.blp,
    ):
        api.register_blueprint(blueprint)
    # Webhook URLs are resolved with this (tests answer DNS themselves; see webhook_targets).
    app.extensions[webhooks.RESOLVER_EXTENSION] = overrides.get("RESOLVER")
    state_of(app).openapi = api.spec
    app.register_blueprint(api_docs.blp)  # /docs: Swagger UI from the app itself, not a CDN
    app.register_blueprint(dashboard.blp)  # on the app, not the Api: pages are not in the spec
    errors.register_error_handlers(app)
    request_log.install(app, settings.access_log)  # first: every request gets its id and its timing
    headers.install(app, settings)  # first: a CORS preflight needs no key
    auth.install(app)
    if settings.cached_reads:
        app.wsgi_app = CachedReads(app, app.wsgi_app)  # type: ignore[method-assign]
        app.wsgi_app = WidgetLane(app, app.wsgi_app)  # type: ignore[method-assign]
    app.wsgi_app = BodyReads(app, app.wsgi_app)  # type: ignore[method-assign]  # outermost
    return app
