"""The dashboard's Domains and SMTP AUTH clients pages (docs/domains.md): the API's reports,
rendered: the insights about the kind at the top, the table with its filters, sort and pages,
and the export (the API's CSV of the same selection)."""

from __future__ import annotations

from typing import Any

from flask import Response, redirect, stream_with_context
from werkzeug.wrappers import Response as BaseResponse

from service.core.paging import CursorError
from service.core.who import AUTH_USERS, DOMAINS, WhoKind
from service.reports import who_reports
from service.reports.connector_pages import CursorExpired
from service.web import context
from service.web.api.schemas import AuthClientReportArgsSchema, DomainReportArgsSchema
from service.web.api.windows import window_from_args
from service.web.dashboard.pages import (
    TLS_COLUMNS,
    Page,
    _active_insights,
    _query_args,
    _signed_in_or_redirect,
    blp,
    url_with,
)
from service.web.dashboard.session import SignedIn

_PAGES = {
    DOMAINS.name: ("/domains", "Domains", DomainReportArgsSchema(), "domain"),
    AUTH_USERS.name: ("/auth-clients", "SMTP AUTH clients", AuthClientReportArgsSchema(),
                      "auth_user"),
}  # fmt: skip
WINDOW_CHOICES = (7, 30)


def _query(kind: WhoKind) -> who_reports.WhoQuery:
    args = _query_args(_PAGES[kind.name][2], drop=("format",))
    window = window_from_args(args, retention_days=context.settings().domain_retention_days)
    return who_reports.who_query(kind, args, window)


def _report_page(kind: WhoKind) -> BaseResponse:
    signed_in = _signed_in_or_redirect()
    if not isinstance(signed_in, SignedIn):
        return signed_in
    query = _query(kind)
    page = Page(signed_in)
    try:
        report = page.read(who_reports.report_page(
            context.client(), context.tenant(), query, context.tenant_now(),
            context.settings().view_cache_seconds, context.cursor_secret(),
        ))  # fmt: skip
    except (CursorExpired, CursorError):  # old or not ours: the first page
        return redirect(url_with(cursor=None), code=303)
    path, title, _, subject = _PAGES[kind.name]
    insights = [
        i for i in _active_insights(page) if (i.get("subject") or {}).get("kind") == subject
    ]
    return page.answer("who.html", page_class=f"page-{kind.name}-report", report=report,
                       query=query, kind=kind, path=path, title=title, insights=insights,
                       window_choices=WINDOW_CHOICES, tls_columns=TLS_COLUMNS,
                       security_columns=who_reports.SECURITY_HEADERS.items())  # fmt: skip


def _export(kind: WhoKind) -> BaseResponse:
    signed_in = _signed_in_or_redirect()
    if not isinstance(signed_in, SignedIn):
        return signed_in
    query = _query(kind)
    etag, chunks = who_reports.report_csv(context.client(), context.tenant(), query,
                                          context.tenant_now(), context.settings().view_cache_seconds)  # fmt: skip
    name = f"{_PAGES[kind.name][0].strip('/')}-{query.window.start}-{query.window.end}.csv"
    headers = {"ETag": etag, "Content-Disposition": f'attachment; filename="{name}"'}
    return Response(stream_with_context(chunks), mimetype="text/csv", headers=headers)


@blp.get("/domains")
def domains_report() -> Any:
    return _report_page(DOMAINS)


@blp.get("/domains/export")
def domains_export() -> Any:
    return _export(DOMAINS)


@blp.get("/auth-clients")
def auth_clients_report() -> Any:
    return _report_page(AUTH_USERS)


@blp.get("/auth-clients/export")
def auth_clients_export() -> Any:
    return _export(AUTH_USERS)
