"""The TLS-RPT reports: GET /api/v1/tls-reports (per policy domain; JSON pages or CSV), one
domain's days and failure details, and the download of a report as received."""

from __future__ import annotations

import csv
import hashlib
import io
from typing import Any

import orjson
from flask import Response, request
from flask.views import MethodView

from service.core.paging import CursorError, decode_cursor, encode_cursor, query_digest, state_int
from service.core.tlsrpt import ReportError, domain_value
from service.core.tlsrpt_our_logs import DIRECTION, blocked_to_domain, our_inbound_logs
from service.core.tlsrpt_views import CSV_COLUMNS, csv_row, domain_detail, domain_rows
from service.core.windows import Window
from service.reports import views
from service.store import blocked, tlsrpt_store
from service.web import context
from service.web.api.blueprint import Blueprint
from service.web.api.schemas import WindowArgsSchema
from service.web.api.tlsrpt_schemas import (
    TlsReportArgsSchema,
    TlsRptDomainDetailSchema,
    TlsRptReportSchema,
)
from service.web.api.windows import window_from_args
from service.web.errors import Problem
from service.web.media_types import prefers_csv
from service.web.responses import CACHE_CONTROL, etag_matches

blp = Blueprint("tls_reports", __name__, url_prefix="/api/v1/tls-reports",
                description="What senders report about TLS to our domains (RFC 8460)")  # fmt: skip
ORIGINAL_PATH = "/api/v1/tls-reports/originals/"


def _tagged(body: bytes, mimetype: str, headers: dict[str, str] | None = None) -> Response:
    """The body with its ETag (a digest of the bytes), or 304 when the client has it."""
    etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
    out = {"ETag": etag, "Cache-Control": CACHE_CONTROL, **(headers or {})}
    if etag_matches(request.headers.get("If-None-Match"), etag):
        return Response(status=304, headers=out)
    return Response(body, status=200, mimetype=mimetype, headers=out)


def rows_of(window: Window) -> list[dict[str, Any]]:
    """Every policy domain's row over the window, cached until a report is counted."""
    client, tenant = context.client(), context.tenant()

    def build() -> bytes:
        return orjson.dumps(domain_rows(tlsrpt_store.read_days(client, tenant, window.days)))

    parts = ("rows", window.start.isoformat(), window.end.isoformat())
    body = tlsrpt_store.cached(client, tenant, parts, build, context.settings().view_cache_seconds)
    rows: list[dict[str, Any]] = orjson.loads(body)
    return rows


def _invalid_cursor(message: str) -> Problem:
    return Problem(400, f"cursor: {message}", slug="invalid-cursor",
                   errors=[{"field": "cursor", "message": message}])  # fmt: skip


@blp.route("")
class TlsReports(MethodView):
    @blp.arguments(TlsReportArgsSchema, location="query", as_kwargs=True)
    @blp.response(200, TlsRptReportSchema, content_type="application/json")
    @blp.alt_response(200, schema={"type": "string"}, content_type="text/csv",
                      description="With `format=csv` or `Accept: text/csv`: every row as CSV")  # fmt: skip
    @blp.alt_response(304, description="Not modified (If-None-Match)")
    @blp.problem(400, "The cursor is not valid for this query")
    @blp.problem(410, "The data changed since the cursor was issued; request the first page")
    @blp.problem(422, "Bad parameters")
    def get(self, **args: Any) -> Response:
        """TLS-RPT report per policy domain

        For each policy domain senders reported on in the window: sessions, the success
        percent, failures by result type and by receiving MX, the reporters and the MX hosts.
        """
        window = window_from_args(args)
        rows = rows_of(window)
        wants_csv = args.get("format") == "csv" or (args.get("format") is None and
                                                   prefers_csv(request.headers.get("Accept")))  # fmt: skip
        if wants_csv:
            if args.get("cursor") is not None:
                raise _invalid_cursor("a CSV export has every row and no pages; leave it out")
            out = io.StringIO()
            writer = csv.writer(out)
            writer.writerow(CSV_COLUMNS)
            writer.writerows(csv_row(row) for row in rows)
            name = f"tls-reports-{window.start}-{window.end}.csv"
            return _tagged(out.getvalue().encode(), "text/csv",
                           {"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip
        rows_tag = hashlib.blake2b(orjson.dumps(rows), digest_size=8).hexdigest()
        digest = query_digest({"start": window.start, "end": window.end, "limit": args["limit"]})
        secret = context.cursor_secret()
        client, tenant = context.client(), context.tenant()
        offset = 0
        if args.get("cursor") is not None:
            cursor = args["cursor"]
            try:
                state = secret.verified(client, lambda s: decode_cursor(s, tenant, cursor, digest))
                offset = state_int(state, "o", 1)
            except CursorError as error:
                raise _invalid_cursor(str(error)) from None
            if state.get("t") != rows_tag:
                raise Problem(410, "reports arrived since the cursor was issued; request the "
                              "first page again", slug="cursor-expired",
                              title="Cursor expired")  # fmt: skip
        end = offset + args["limit"]
        next_cursor = None
        if end < len(rows):
            next_cursor = encode_cursor(
                secret.get(client), tenant, digest, {"o": end, "t": rows_tag}
            )
        page = {"window": window.as_dict(), "total_rows": len(rows), "rows": rows[offset:end],
                "next_cursor": next_cursor}  # fmt: skip
        return _tagged(orjson.dumps(page), "application/json")


@blp.route("/<domain>")
class TlsReportDomain(MethodView):
    @blp.arguments(WindowArgsSchema, location="query", as_kwargs=True)
    @blp.response(200, TlsRptDomainDetailSchema)
    @blp.alt_response(304, description="Not modified (If-None-Match)")
    @blp.problem(422, "Bad parameters, or not a domain name")
    def get(self, domain: str, **args: Any) -> Response:
        """One policy domain: daily series, failure details, reports received, our own logs

        An empty window gives zeros. Each report counted for the domain in the window is
        listed with the link to download it as it was received. `our_logs` sets our own
        logs beside the reports: the tenant's inbound mail per day by TLS version and transport
        security class (our logs do not count inbound mail per recipient domain).
        """
        try:
            name = domain_value(domain, "domain")
        except ReportError as error:
            raise Problem(422, f"domain: {error.message}",
                          errors=[{"field": "domain", "message": error.message}]) from None  # fmt: skip
        window = window_from_args(args)
        detail = detail_of(name, window)
        detail["window"] = window.as_dict()
        detail["reports"] = reports_of(name, window, ORIGINAL_PATH)
        detail["our_logs"] = our_logs_of(name, window)
        return _tagged(orjson.dumps(detail), "application/json")


def detail_of(domain: str, window: Window) -> dict[str, Any]:
    """One domain over the window (``domain_detail``), cached until a report is counted."""
    client, tenant = context.client(), context.tenant()

    def build() -> bytes:
        days = tlsrpt_store.read_days(client, tenant, window.days)
        return orjson.dumps(domain_detail(domain, window.days, days))

    parts = ("domain", domain, window.start.isoformat(), window.end.isoformat())
    body = tlsrpt_store.cached(client, tenant, parts, build, context.settings().view_cache_seconds)
    detail: dict[str, Any] = orjson.loads(body)
    return detail


def reports_of(domain: str, window: Window, download_path: str) -> list[dict[str, Any]]:
    """Each report counted for the domain in the window, with its download link."""
    return [
        {"id": r.identity, "day": r.day, "organization": r.organization,
         "report_id": r.report_id, "download": download_path + r.identity}
        for r in tlsrpt_store.list_reports(context.client(), context.tenant(), window.days)
        if domain in r.domains
    ]  # fmt: skip


def our_logs_of(domain: str, window: Window) -> dict[str, Any]:
    """Our own logs beside a policy domain's reports (``our_inbound_logs``): the tenant's
    inbound mail per day, from the cached view GET /api/v1/mailflow/tls serves, and the
    domain's blocked inbound messages, from the blocked counters (one HGETALL a day)."""
    client, tenant = context.client(), context.tenant()
    view = views.tls_view(client, tenant, window, DIRECTION, context.tenant_now(),
                          context.settings().view_cache_seconds)  # fmt: skip
    refused = blocked.read_blocked(client, tenant, window.days).days
    return our_inbound_logs(orjson.loads(view.body),
                            blocked_to_domain(refused, window.days, domain))  # fmt: skip


@blp.route("/originals/<report>")
class TlsReportOriginal(MethodView):
    @blp.response(200, {"type": "string", "format": "binary"},
                  content_type="application/tlsrpt+gzip")  # fmt: skip
    @blp.problem(404, "No such report (or no longer kept)")
    def get(self, report: str) -> Response:
        """Download a TLS-RPT report as received (its JSON, gzip'd)"""
        return original_download(report)


def original_download(report: str) -> Response:
    """The tenant's kept original of ``report`` as a gzip'd attachment; 404 when this tenant
    keeps none under that id (another tenant's id included)."""
    kept = tlsrpt_store.original(context.client(), context.tenant(), report)
    if kept is None:
        raise Problem(404, f"no TLS-RPT report {report!r} is kept for this tenant")
    name = f"tlsrpt-{report}.json.gz"
    return _tagged(kept, "application/tlsrpt+gzip",
                   {"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip
