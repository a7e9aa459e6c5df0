"""The per-domain and SMTP AUTH client reports (docs/domains.md): GET /api/v1/domains and
GET /api/v1/auth-clients (JSON pages or CSV), and one name's daily series. One blueprint
factory for both: they are one report over two kinds of name."""

from __future__ import annotations

from typing import Any

from flask import Response, request, stream_with_context
from flask.views import MethodView
from marshmallow import Schema

from service.core.connectors import is_direction
from service.core.paging import CursorError
from service.core.traces import DIRECTIONS
from service.core.who import AUTH_USERS, DOMAINS, WhoKind
from service.core.who_report import stored_name
from service.reports import who_reports
from service.reports.connector_pages import CursorExpired
from service.web import context
from service.web.api.blueprint import Blueprint
from service.web.api.schemas import (
    AuthClientReportArgsSchema,
    AuthClientReportSchema,
    AuthClientSeriesSchema,
    DomainReportArgsSchema,
    DomainReportSchema,
    DomainSeriesSchema,
    WindowArgsSchema,
)
from service.web.api.windows import window_from_args
from service.web.errors import Problem
from service.web.media_types import prefers_csv
from service.web.responses import cached_json, etag_matches


def _window(args: dict[str, Any]) -> Any:
    return window_from_args(args, retention_days=context.settings().domain_retention_days)


def _invalid(field: str, message: str, status: int = 422, slug: str | None = None) -> Problem:
    return Problem(status, f"{field}: {message}", slug=slug,
                   errors=[{"field": field, "message": message}])  # fmt: skip


def report_blueprint(
    kind: WhoKind,
    name: str,
    prefix: str,
    args_schema: type[Schema],
    page_schema: type[Schema],
    series_schema: type[Schema],
    what: str,
) -> Blueprint:
    """The blueprint of one kind's report: its rows, and one name's series."""
    blp = Blueprint(name, __name__, url_prefix=prefix, description=f"The {what} report")
    subject = "SMTP AUTH user" if kind is AUTH_USERS else "remote domain"
    report_doc = {
        "summary": f"{what[0].upper()}{what[1:]} report",
        "description": f"One row per {subject} and direction: messages, the TLS version split, "
        "the transport security split (`unauthenticated_percent`: encrypted only + no TLS), "
        f"the connectors its mail used and the {kind.extras.replace('_', ' ')} seen. Names "
        f"past the daily limit are one `{kind.other_label}` row, so totals equal the "
        "snapshot's. Pages follow `next_cursor`; a cursor pins the data of the first page.",
    }
    special = f"`{kind.other_label}`" + (f" and `{kind.unknown_label}`" if kind.unknown_label
                                         else "")  # fmt: skip
    series_doc = {
        "summary": f"One {subject}'s daily series",
        "description": "Messages, TLS and transport security split per day of the window; "
        f"{special} name the special rows.",
    }

    @blp.route("")
    class Report(MethodView):
        @blp.arguments(args_schema, location="query", as_kwargs=True)
        @blp.response(200, page_schema, content_type="application/json")
        @blp.alt_response(
            200, schema={"type": "string"}, content_type="text/csv",
            description="A page as JSON; with `format=csv` or `Accept: text/csv` every row as CSV",
        )  # fmt: skip
        @blp.alt_response(304, description="Not modified (If-None-Match)")
        @blp.problem(400, "The cursor is not valid for this query")
        @blp.problem(410, "The cursor has expired; request the first page again")
        @blp.problem(422, "Bad parameters")
        @blp.doc(**report_doc)
        def get(self, **args: Any) -> Response:
            query = who_reports.who_query(kind, args, _window(args))
            client, tenant, now = context.client(), context.tenant(), context.tenant_now()
            cache_seconds = context.settings().view_cache_seconds
            wants_csv = (args["format"] == "csv" if args.get("format") is not None
                         else prefers_csv(request.headers.get("Accept")))  # fmt: skip
            if wants_csv:
                if query.cursor is not None:
                    raise _invalid("cursor", "a CSV export has every row and no pages; leave "
                                   "out cursor", 400, slug="invalid-cursor")  # fmt: skip
                etag, chunks = who_reports.report_csv(client, tenant, query, now, cache_seconds)
                return _csv_response(etag, chunks, f"{name}-{query.window.start}-"
                                     f"{query.window.end}.csv")  # fmt: skip
            try:
                view = who_reports.report_page(client, tenant, query, now, cache_seconds,
                                               context.cursor_secret())  # fmt: skip
            except CursorError as error:
                raise _invalid("cursor", str(error), 400, slug="invalid-cursor") from None
            except CursorExpired as error:
                raise Problem(410, str(error), slug="cursor-expired",
                              title="Cursor expired") from None  # fmt: skip
            return cached_json(view)

    path = [
        {"in": "path", "name": "direction", "required": True,
         "schema": {"type": "string", "enum": list(DIRECTIONS)}},
        {"in": "path", "name": "name", "required": True,
         "schema": {"type": "string", "minLength": 1, "maxLength": 256}},
    ]  # fmt: skip

    @blp.route("/<direction>/<path:name>", parameters=path)
    class Series(MethodView):
        @blp.arguments(WindowArgsSchema, location="query", as_kwargs=True)
        @blp.response(200, series_schema)
        @blp.alt_response(304, description="Not modified (If-None-Match)")
        @blp.problem(404, "No messages in the window")
        @blp.problem(422, "Bad window parameters")
        @blp.doc(**series_doc)
        def get(self, direction: str, name: str, **args: Any) -> Response:
            if not is_direction(direction):
                raise Problem(404, f"no direction {direction!r}; use inbound or outbound")
            view = who_reports.series_view(
                context.client(), context.tenant(), kind, direction, stored_name(kind, name),
                _window(args), context.tenant_now(), context.settings().view_cache_seconds,
            )  # fmt: skip
            if view is None:
                raise Problem(404, f"no {direction} messages of {name!r} in the window")
            return cached_json(view)

    return blp


def _csv_response(etag: str, chunks: Any, filename: str) -> Response:
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if etag_matches(request.headers.get("If-None-Match"), etag):
        return Response(status=304, headers=headers)
    headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return Response(stream_with_context(chunks), mimetype="text/csv", headers=headers)


domains_blp = report_blueprint(DOMAINS, "domains", "/api/v1/domains", DomainReportArgsSchema,
                               DomainReportSchema, DomainSeriesSchema, "per-domain")  # fmt: skip
auth_clients_blp = report_blueprint(AUTH_USERS, "auth-clients", "/api/v1/auth-clients",
                                    AuthClientReportArgsSchema, AuthClientReportSchema,
                                    AuthClientSeriesSchema, "SMTP AUTH clients")  # fmt: skip
