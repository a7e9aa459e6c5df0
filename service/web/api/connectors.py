"""The connector report: GET /api/v1/connectors (JSON pages or CSV), one connector's report,
and connector definitions (PUT / DELETE, scope admin)."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response, request, stream_with_context
from flask.views import MethodView

from service.core.connectors import (
    is_direction,
    lookup_name,
)
from service.core.paging import CursorError
from service.core.text import TextError
from service.core.traces import DIRECTIONS, MAX_CONNECTOR
from service.reports import connector_csv_report, connector_detail, connector_pages, precompute
from service.reports.connector_definitions import define_connector
from service.store import connectors_store, worker_signals
from service.web import context
from service.web.api.blueprint import Blueprint
from service.web.api.schemas import (
    CONNECTOR_NAME_PATTERN,
    ConnectorDefinitionOutSchema,
    ConnectorDefinitionSchema,
    ConnectorDetailSchema,
    ConnectorReportArgsSchema,
    ConnectorReportSchema,
    WindowArgsSchema,
)
from service.web.api.windows import window_from_args
from service.web.errors import Problem
from service.web.media_types import prefers_csv
from service.web.responses import cached_json, etag_matches

blp = Blueprint("connectors", __name__, url_prefix="/api/v1/connectors",
                description="The connector report and connector definitions")  # fmt: skip


def _wants_csv(args: dict[str, Any]) -> bool:
    if args.get("format") is not None:
        return args["format"] == "csv"
    return prefers_csv(request.headers.get("Accept"))


def _query(args: dict[str, Any]) -> connector_pages.ReportQuery:
    return connector_pages.report_query(args, window_from_args(args))


@blp.route("")
class ConnectorReport(MethodView):
    @blp.arguments(ConnectorReportArgsSchema, location="query", as_kwargs=True)
    @blp.response(200, ConnectorReportSchema, content_type="application/json")
    @blp.alt_response(
        200, schema={"type": "string"}, content_type="text/csv",
        description="A page as JSON; with `format=csv` or `Accept: text/csv` every row as CSV",
    )  # fmt: skip
    @blp.alt_response(304, description="Not modified (If-None-Match)")
    @blp.problem(400, "The cursor is not valid for this query")
    @blp.problem(410, "The cursor has expired; request the first page again")
    @blp.problem(422, "Bad parameters")
    def get(self, **args: Any) -> Response:
        """Connector report

        One row per connector (direction and name; mail without a connector is one row per
        direction, `name` null), or per connector per day with `group_by=day`: messages and
        the count and percent of each TLS version. Pages follow `next_cursor`; a cursor pins
        the data of the first page, so every row comes exactly once while mail keeps flowing.
        """
        query = _query(args)
        client, tenant, now = context.client(), context.tenant(), context.tenant_now()
        cache_seconds = context.settings().view_cache_seconds
        if _wants_csv(args):
            if query.cursor is not None:  # never ignored: a cursor sent is checked or refused
                raise _invalid("cursor", "a CSV export has every row and no pages; leave out "
                               "cursor", 400, slug="invalid-cursor")  # fmt: skip
            etag, chunks = connector_csv_report.report_csv(
                client, tenant, query, now, cache_seconds
            )
            return _csv_response(etag, chunks, query)
        try:
            view = connector_pages.report_page(client, tenant, query, now, cache_seconds,
                                               context.cursor_secret())  # fmt: skip
        except CursorError as error:
            raise _invalid("cursor", str(error), 400, slug="invalid-cursor") from None
        except connector_pages.CursorExpired as error:
            raise Problem(410, str(error), slug="cursor-expired", title="Cursor expired") from None
        return cached_json(view)


def _csv_response(etag: str, chunks: Any, query: connector_pages.ReportQuery) -> Response:
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if etag_matches(request.headers.get("If-None-Match"), etag):
        return Response(status=304, headers=headers)
    name = f"connector-report-{query.window.start}-{query.window.end}.csv"
    headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return Response(stream_with_context(chunks), mimetype="text/csv", headers=headers)


def _invalid(field: str, message: str, status: int = 422, slug: str | None = None) -> Problem:
    return Problem(status, f"{field}: {message}", slug=slug,
                   errors=[{"field": field, "message": message}])  # fmt: skip


def _checked_direction(direction: str) -> str:
    if not is_direction(direction):
        raise Problem(404, f"no direction {direction!r}; use inbound or outbound")
    return direction


_CONNECTOR_PATH = [
    {"in": "path", "name": "direction", "required": True,
     "schema": {"type": "string", "enum": list(DIRECTIONS)}},
    {"in": "path", "name": "name", "required": True,
     "description": "The connector's name; `-`: mail without a connector (it has a report but "
     "cannot be defined)",
     "schema": {"type": "string", "minLength": 1, "maxLength": MAX_CONNECTOR,
                "pattern": CONNECTOR_NAME_PATTERN}},
]  # fmt: skip


@blp.route("/<direction>/<path:name>", parameters=_CONNECTOR_PATH)
class Connector(MethodView):
    @blp.arguments(WindowArgsSchema, location="query", as_kwargs=True)
    @blp.response(200, ConnectorDetailSchema)
    @blp.alt_response(304, description="Not modified (If-None-Match)")
    @blp.problem(404, "No traffic in the window and not defined")
    @blp.problem(422, "Bad window parameters")
    def get(self, direction: str, name: str, **args: Any) -> Response:
        """One connector's report

        Totals, TLS split and daily series of one connector over the window. The name `-`
        stands for mail to or from the internet without a connector.
        """
        name = lookup_name(name)
        view = connector_detail.connector_detail_view(
            context.client(), context.tenant(), _checked_direction(direction), name,
            window_from_args(args), context.tenant_now(), context.settings().view_cache_seconds,
        )  # fmt: skip
        if view is None:
            raise Problem(404, f"no {direction} connector {name!r} with traffic in the window "
                          "and no definition of it")  # fmt: skip
        return cached_json(view)

    @blp.arguments(
        ConnectorDefinitionSchema,
        example={"type": "partner", "forced_tls": True, "description": "Contoso"},
    )
    @blp.response(200, ConnectorDefinitionOutSchema)
    @blp.problem(400, "The body cannot be read: not JSON, nested too deeply, a field twice")
    @blp.problem(413, "The body is over 64 KiB")
    @blp.problem(415, "The body is not application/json")
    @blp.problem(422, "Bad definition")
    def put(self, definition: dict[str, Any], direction: str, name: str) -> Response:
        """Define a connector

        Its type and whether it forces TLS. Defined connectors appear in reports without
        traffic; traces naming one take its type (a contradicting `connector_type` is
        rejected). Reports are rebuilt with the definition at once.
        """
        _checked_direction(direction)
        try:
            name, stored = define_connector(context.client(), context.tenant(),
                                            context.tenant_now().date(), direction, name,
                                            definition, context.settings().max_connectors)  # fmt: skip
        except TextError as error:
            raise _invalid("name", str(error)) from None
        except connectors_store.DefinitionLimit as error:
            raise Problem(
                422, str(error), slug="too-many-definitions", title="Too many connector definitions"
            ) from None
        body = {"direction": direction, "name": name, **stored.as_dict()}
        return Response(orjson.dumps(body), status=200, mimetype="application/json")

    @blp.response(204)
    @blp.problem(404, "No such definition")
    def delete(self, direction: str, name: str) -> Response:
        """Delete a connector definition

        Its traffic stays in the reports, typed by the traces again.
        """
        _checked_direction(direction)
        name = lookup_name(name)
        client, tenant = context.client(), context.tenant()
        stale = precompute.precomputed_keys(tenant, context.tenant_now().date(), "connectors")
        if not connectors_store.put_definition(client, tenant, direction, name, None, stale):
            raise Problem(404, f"no definition of the {direction} connector {name!r}")
        worker_signals.request_evaluation(client, tenant)
        return Response(status=204)
