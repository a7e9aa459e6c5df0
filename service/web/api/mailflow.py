"""GET /api/v1/mailflow/snapshot: the mail-flow widget."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView

from service.reports import views
from service.web import context
from service.web.api.blueprint import Blueprint
from service.web.api.schemas import (
    BlockedArgsSchema,
    BlockedReportSchema,
    SnapshotSchema,
    TlsArgsSchema,
    TlsReportSchema,
    TransitReportSchema,
    WindowArgsSchema,
)
from service.web.api.windows import window_from_args
from service.web.responses import cached_json

blp = Blueprint("mailflow", __name__, url_prefix="/api/v1/mailflow",
                description="Mail flow: how much mail used which TLS version")  # fmt: skip


@blp.route("/snapshot")
class Snapshot(MethodView):
    @blp.arguments(WindowArgsSchema, location="query", as_kwargs=True)
    @blp.response(200, SnapshotSchema)
    @blp.alt_response(304, description="Not modified (If-None-Match)")
    @blp.problem(422, "Bad window parameters")
    @blp.problem(503, "The data store does not answer; retry")
    def get(self, **args: Any) -> Response:
        """Mail flow widget

        Per direction: messages, encrypted share and the split by TLS version over the window
        (default: the 7 days ending today; the tenant's days, UTC unless it set a time zone).
        Served from a cache the worker keeps fresh.
        """
        window = window_from_args(args)
        view = views.snapshot_view(
            context.client(), context.tenant(), window, context.tenant_now(),
            context.settings().view_cache_seconds,
        )  # fmt: skip
        return cached_json(view)


@blp.route("/tls")
class TlsFlyout(MethodView):
    @blp.arguments(TlsArgsSchema, location="query", as_kwargs=True)
    @blp.response(200, TlsReportSchema)
    @blp.alt_response(304, description="Not modified (If-None-Match)")
    @blp.problem(422, "Bad window parameters")
    @blp.problem(503, "The data store does not answer; retry")
    def get(self, **args: Any) -> Response:
        """Message protected in transit (by TLS)

        Per direction and TLS version: messages and percent over the window, and the same
        per day for a chart (`series`). `direction` keeps one direction only.
        """
        view = views.tls_view(
            context.client(), context.tenant(), window_from_args(args), args.get("direction"),
            context.tenant_now(), context.settings().view_cache_seconds,
        )  # fmt: skip
        return cached_json(view)


@blp.route("/transit-security")
class TransitSecurity(MethodView):
    @blp.arguments(TlsArgsSchema, location="query", as_kwargs=True)
    @blp.response(200, TransitReportSchema)
    @blp.alt_response(304, description="Not modified (If-None-Match)")
    @blp.problem(422, "Bad window parameters")
    @blp.problem(503, "The data store does not answer; retry")
    def get(self, **args: Any) -> Response:
        """Transit security

        Per direction: messages per transport security class per day (`sent`), mail
        blocked by a TLS policy per recipient domain and policy with its distinct errors
        (`blocked`), and per recipient domain the mail delivered without TLS and blocked because
        its server did not offer TLS (`no_tls_offered`, over the days
        `no_tls_offered_coverage` names).
        `direction` keeps one direction only. See docs/transit-security.md.
        """
        view = views.transit_view(
            context.client(), context.tenant(), window_from_args(args), args.get("direction"),
            context.tenant_now(), context.settings().view_cache_seconds,
            context.settings().domain_retention_days,
        )  # fmt: skip
        return cached_json(view)


@blp.route("/blocked")
class Blocked(MethodView):
    @blp.arguments(BlockedArgsSchema, location="query", as_kwargs=True)
    @blp.response(200, BlockedReportSchema)
    @blp.alt_response(304, description="Not modified (If-None-Match)")
    @blp.problem(422, "Bad window parameters")
    @blp.problem(503, "The data store does not answer; retry")
    def get(self, **args: Any) -> Response:
        """Mail blocked by a TLS policy

        The blocked counters of the window, one record per day, direction, connector,
        policy, recipient domain and reason, each day's with the most messages first; at most
        `limit` records (`truncated` says when there are more). See docs/transit-security.md.
        """
        view = views.blocked_view(
            context.client(), context.tenant(), window_from_args(args), args.get("direction"),
            args["limit"], context.tenant_now(), context.settings().view_cache_seconds,
        )  # fmt: skip
        return cached_json(view)
