"""The dashboard's pages: the widget, the TLS flyout, the connector report, a connector, the
insights, and the sign-in. Registered as a plain Flask blueprint, outside the OpenAPI spec.

Each page reads the very views the API serves (``service.reports``) and parses their JSON, so
it shows the API's numbers for the same window and filters. Query arguments go through the
API's schemas and window rules. A page's ETag is made of the ETags of the views it read (and
who is looking), so an auto-refresh with ``If-None-Match`` is answered 304 before anything is
rendered.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from flask import Blueprint, Response, redirect, render_template, request, stream_with_context
from marshmallow import Schema, ValidationError
from werkzeug.wrappers import Response as BaseResponse

from service.core.connectors import (
    INTERNET,
    ConnectorRow,
    decode_rows,
    is_direction,
    lookup_name,
    row_document,
    select_rows,
)
from service.core.insight_rules import RULES, effective_rules
from service.core.local_days import zone_name
from service.core.paging import CursorError
from service.core.text import TextError
from service.core.traces import CONNECTOR_TYPES
from service.reports import (
    connector_csv_report,
    connector_detail,
    connector_pages,
    connector_pins,
    insight_feed,
    views,
)
from service.reports.connector_definitions import define_connector
from service.reports.insight_rule_settings import change_rule_settings
from service.store import connectors_store, insights_store
from service.store.views import CachedView
from service.web import context
from service.web.api.schemas import (
    ConnectorDefinitionSchema,
    ConnectorReportArgsSchema,
    InsightRuleSettingsSchema,
    TlsArgsSchema,
    WindowArgsSchema,
)
from service.web.api.windows import window_from_args
from service.web.dashboard import charts, error_pages, session
from service.web.dashboard.session import SignedIn
from service.web.errors import Problem
from service.web.responses import etag_matches

blp = Blueprint("dashboard", __name__, template_folder="templates", static_folder="static",
                static_url_path="/assets")  # fmt: skip

# No inline script or style anywhere: every script and stylesheet is a file the app serves.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
PAGE_CACHE_CONTROL = "private, no-cache"


def _code_version() -> str:
    """A digest of the templates and assets: part of every page's ETag (a new release is never
    answered 304 with the old HTML) and of every asset's URL (no stale stylesheet)."""
    digest = hashlib.blake2b(digest_size=6)
    for folder in ("templates", "static"):
        for file in sorted((Path(__file__).parent / folder).glob("*")):
            digest.update(file.name.encode() + file.read_bytes())
    return digest.hexdigest()


CODE_VERSION = _code_version()
WINDOW_CHOICES = (7, 30, 90)
TLS_COLUMNS = ("none", "TLS1.0", "TLS1.1", "TLS1.2", "TLS1.3")


@blp.after_request
def page_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers.setdefault("Cache-Control", PAGE_CACHE_CONTROL)
    response.vary.add("Cookie")
    return response


@blp.after_app_request
def error_page(response: Response) -> Response:
    """Any error on a person's page (routing's 404 included) as HTML for a browser."""
    return error_pages.as_html(response, CONTENT_SECURITY_POLICY)


# -- helpers -----------------------------------------------------------------------------------


def _signed_in_or_redirect(scope: str = "read") -> SignedIn | BaseResponse:
    signed_in = session.current(scope)
    if signed_in is None:
        response = redirect("/sign-in", code=303)
        session.drop_cookie(response)  # a cookie that no longer refers to a session
        return response
    return signed_in


def _args(schema: Schema, source: Mapping[str, Any]) -> dict[str, Any]:
    """Query or form arguments loaded by the API's schema; 422 naming the field, as the API."""
    try:
        return schema.load(source)  # type: ignore[no-any-return]
    except ValidationError as error:
        messages = error.normalized_messages()
        detail = "; ".join(f"{field}: {' '.join(map(str, m)) if isinstance(m, list) else m}"
                           for field, m in messages.items())  # fmt: skip
        raise Problem(422, detail or "bad parameters") from None


def _query_args(schema: Schema, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    source = {k: v for k, v in request.args.items() if v != "" and k not in drop}
    return _args(schema, source)


def _document(view: CachedView) -> Any:
    return orjson.loads(view.body)


def page_etag(parts: list[str]) -> str:
    """A page's ETag: the release, the URL, the session's CSRF token, admin or not, and the
    ETags of the views the page read."""
    digest = hashlib.blake2b("|".join([CODE_VERSION, *parts]).encode(), digest_size=12)
    return f'"page-{digest.hexdigest()}"'


# What the rendered-page cache may hold in one process: pages weigh up to 100 kB and more (a
# connector report of many rows, a long insight list), so a count alone could hold 128 of them
# and more; the total bytes bound it too. A page bigger than PAGE_MAX_BYTES is not kept at all:
# it would push out many ordinary pages for one that is rarely asked for again unchanged.
RENDERED_MAX_PAGES = 128
RENDERED_MAX_BYTES = 8 * 1024 * 1024
PAGE_MAX_BYTES = 1024 * 1024


class RenderedPages:
    """The HTML of recently rendered pages by their ETag, in this process. A page's ETag names
    everything it shows (the views' ETags, the URL, the session's CSRF token, admin or not),
    so a page whose data did not change is sent again without rendering it. The least recently
    used pages go first, past ``size`` pages or ``max_bytes`` bytes in all."""

    def __init__(self, size: int = RENDERED_MAX_PAGES, max_bytes: int = RENDERED_MAX_BYTES,
                 page_max_bytes: int = PAGE_MAX_BYTES) -> None:  # fmt: skip
        self._size = size
        self._max_bytes = max_bytes
        self._page_max_bytes = min(page_max_bytes, max_bytes)
        self._pages: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, etag: str) -> bytes | None:
        with self._lock:
            html = self._pages.get(etag)
            if html is not None:
                self._pages.move_to_end(etag)
            return html

    def put(self, etag: str, html: bytes) -> None:
        if len(html) > self._page_max_bytes:
            return
        with self._lock:
            previous = self._pages.pop(etag, None)
            if previous is not None:
                self._bytes -= len(previous)
            self._pages[etag] = html
            self._bytes += len(html)
            while len(self._pages) > self._size or self._bytes > self._max_bytes:
                _, dropped = self._pages.popitem(last=False)
                self._bytes -= len(dropped)

    def held_bytes(self) -> int:
        with self._lock:
            return self._bytes


RENDERED = RenderedPages()


class Page:
    """What one page read (the ETags of its views) and how to answer: 304 or the HTML."""

    def __init__(self, signed_in: SignedIn) -> None:
        self.signed_in = signed_in
        # What the widget's lane (``lane``) computes too, in the same order. The zone names
        # the days the page shows.
        self.time_zone = zone_name(context.tenant_zone_info())
        self.etags: list[str] = [request.full_path, signed_in.session.csrf,
                                 str(signed_in.admin), self.time_zone]  # fmt: skip

    def read(self, view: CachedView) -> Any:
        self.etags.append(view.etag)
        return _document(view)

    def read_rows(self, view: CachedView) -> list[ConnectorRow]:
        """The rows of a cached connector-rows view, typed."""
        self.etags.append(view.etag)
        return decode_rows(view.body).rows

    def etag(self) -> str:
        return page_etag(self.etags)

    def answer(self, template: str, **values: Any) -> Response:
        etag = self.etag()
        headers = {"ETag": etag, "Cache-Control": PAGE_CACHE_CONTROL}
        if etag_matches(request.headers.get("If-None-Match"), etag):
            return Response(status=304, headers=headers)
        html = RENDERED.get(etag)
        if html is None:
            html = render_template(
                template, tenant=context.tenant(), admin=self.signed_in.admin,
                csrf=self.signed_in.session.csrf, etag=etag, time_zone=self.time_zone, **values,
            ).encode()  # fmt: skip
            RENDERED.put(etag, html)
        return Response(html, mimetype="text/html", headers=headers)


def _snapshot(page: Page) -> dict[str, Any]:
    """The widget's snapshot: the default window, the view the worker keeps precomputed."""
    view = views.snapshot_view(context.client(), context.tenant(), window_from_args({}),
                               context.tenant_now(), context.settings().view_cache_seconds)  # fmt: skip
    document: dict[str, Any] = page.read(view)
    return document


# The most pages of the insight feed one dashboard page follows: 50 pages of 100 insights,
# 5,000 insights. Each read looks at a bounded number of feed entries (the store's
# SCAN_PER_CALL), so a tenant with a long history costs at most 50 reads, not its whole feed.
FEED_PAGES = 50
# The most insights one list shows when it shows the newest: resolved, or a connector's. An
# insight is 1.5 to 2 kB of HTML (its connector's name, up to 128 characters, is in it three
# times): 20 of them beside a page of active ones (INSIGHTS_PER_PAGE) keep the insights page
# within its 150 kB budget.
NEWEST_SHOWN = 20


def _feed(page: Page, state: str) -> list[dict[str, Any]]:
    """The insight feed (``active``, ``resolved`` or ``all``) in the feed's order, oldest
    transition first: its pages followed by ``next_cursor`` while ``has_more``, at most
    FEED_PAGES of them."""
    client, tenant, secret = context.client(), context.tenant(), context.cursor_secret()
    items: list[dict[str, Any]] = []
    after = 0
    for _ in range(FEED_PAGES):
        body = page.read(insight_feed.feed_page(client, tenant, secret, state,
                                                insight_feed.DEFAULT_LIMIT, after))  # fmt: skip
        items += body["items"]
        if not body["has_more"]:
            break
        after = insight_feed.after_sequence_of(client, tenant, secret, body["next_cursor"],
                                               state, None)  # fmt: skip
    return items


def _active_insights(page: Page) -> list[dict[str, Any]]:
    """Every active insight (within FEED_PAGES pages), so the lists agree with the widget's
    count. The first page is the one every process keeps in its near cache."""
    return _feed(page, "active")


def _newest_resolved(page: Page) -> tuple[list[dict[str, Any]], int]:
    """The NEWEST_SHOWN most recently resolved insights, newest first, and how many older ones
    are not shown. The store's index of resolved insights by resolution time gives them in one
    read; while that index is still being built, the feed is followed instead."""
    view = insight_feed.newest_resolved_view(context.client(), context.tenant(), NEWEST_SHOWN)
    if view is not None:
        body = page.read(view)
        return body["items"], body["total"] - len(body["items"])
    return _newest(_feed(page, "resolved"))


def _newest(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The last NEWEST_SHOWN of ``items`` (in the feed's order), newest first, and how many
    older ones are left out."""
    newest = items[::-1]
    return newest[:NEWEST_SHOWN], max(0, len(newest) - NEWEST_SHOWN)


def _has_data(snapshot: Mapping[str, Any]) -> bool:
    """Whether the tenant ever sent mail: ``data_as_of`` is the time of its latest fold."""
    return snapshot.get("data_as_of") is not None


def connector_path(direction: str, name: str | None) -> str:
    return f"/connectors/{direction}/{quote(name, safe='') if name else INTERNET}"


def report_link(insight: Mapping[str, Any]) -> str:
    """The connector report over the window of the rule that fired, filtered to the connector."""
    window = insight.get("window") or {}
    connector = insight.get("connector") or {}
    query = {"direction": insight.get("direction"), "name": connector.get("name") or "",
             "start": window.get("start", ""), "end": window.get("end", "")}  # fmt: skip
    return "/connectors?" + urlencode({k: v for k, v in query.items() if v})


@blp.app_template_global()
def url_with(**changes: Any) -> str:
    """This page's URL with some query arguments changed (None removes one)."""
    args = {k: v for k, v in request.args.items() if v != ""}
    for name, value in changes.items():
        if value is None:
            args.pop(name, None)
        else:
            args[name] = str(value)
    return request.path + ("?" + urlencode(args) if args else "")


blp.add_app_template_global(connector_path, "connector_path")
blp.add_app_template_global(lambda: CODE_VERSION, "code_version")
blp.add_app_template_global(report_link, "report_link")
# A global, not a render argument: the macros templates import see it too.
blp.record_once(lambda state: state.app.jinja_env.globals.update(charts=charts))


# -- signing in and out ------------------------------------------------------------------------


@blp.get("/sign-in")
def sign_in_form() -> BaseResponse:
    if session.current() is not None:
        return redirect("/", code=303)
    response = Response(mimetype="text/html")
    token = session.new_sign_in_token(response)
    response.set_data(render_template("sign_in.html", csrf=token, tenant=None, error=None))
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.post("/sign-in")
def sign_in() -> BaseResponse:
    session.check_sign_in_token()
    try:
        _, cookie = session.sign_in(request.form.get("key", ""))
    except Problem as problem:
        if problem.code not in (401, 403):
            raise
        # 403 either way: a 401 would need a WWW-Authenticate challenge, and a form is none.
        response = Response(status=403, mimetype="text/html")
        token = session.new_sign_in_token(response)
        error = ("That key is unknown or revoked." if problem.code == 401
                 else "That key lacks the read scope.")  # fmt: skip
        response.set_data(render_template("sign_in.html", csrf=token, tenant=None, error=error))
        response.headers["Cache-Control"] = "no-store"
        return response
    response = redirect("/", code=303)  # type: ignore[assignment]
    session.set_session_cookie(response, cookie)
    response.delete_cookie(session.SIGN_IN_COOKIE, path="/")
    return response


@blp.post("/sign-out")
def sign_out() -> BaseResponse:
    response = redirect("/sign-in", code=303)
    session.sign_out(response)
    return response


# -- the widget and the TLS flyout ---------------------------------------------------------------


@blp.get("/")
def widget() -> BaseResponse:
    signed_in = _signed_in_or_redirect()
    if not isinstance(signed_in, SignedIn):
        return signed_in
    page = Page(signed_in)
    snapshot = _snapshot(page)
    return page.answer("widget.html", page_class="page-widget", snapshot=snapshot,
                       has_data=_has_data(snapshot))  # fmt: skip


@blp.get("/tls")
def tls_flyout() -> BaseResponse:
    signed_in = _signed_in_or_redirect()
    if not isinstance(signed_in, SignedIn):
        return signed_in
    args = _query_args(TlsArgsSchema())
    page = Page(signed_in)
    report = page.read(views.tls_view(
        context.client(), context.tenant(), window_from_args(args), args.get("direction"),
        context.tenant_now(), context.settings().view_cache_seconds,
    ))  # fmt: skip
    daily = {
        direction: charts.stacked([(day["date"], charts.version_counts(day["directions"][direction]["tls"]))
                                   for day in report["series"]])
        for direction in report["directions"]
    }  # fmt: skip
    return page.answer("tls.html", page_class="page-tls", report=report, daily=daily,
                       has_data=report.get("data_as_of") is not None,
                       window_choices=WINDOW_CHOICES)  # fmt: skip


# -- the connector report ----------------------------------------------------------------------


def _report_query(drop: tuple[str, ...] = ("format",)) -> connector_pages.ReportQuery:
    args = _query_args(ConnectorReportArgsSchema(), drop=drop)
    return connector_pages.report_query(args, window_from_args(args))


def _daily_totals(
    page: Page, query: connector_pages.ReportQuery
) -> list[tuple[str, dict[str, int]]]:
    """Per day and TLS version, the messages of the rows the filters select: the charts."""
    view = views.connector_rows_view(context.client(), context.tenant(), query.window, "day",
                                     context.tenant_now(), context.settings().view_cache_seconds)  # fmt: skip
    rows = select_rows(page.read_rows(view), query.row_filter, "date")
    days: dict[str, dict[str, int]] = {day: dict.fromkeys(charts.VERSIONS, 0)
                                       for day in query.window.days}  # fmt: skip
    for row in rows:
        split = charts.version_counts(_row_tls(row))
        for version, messages in split.items():
            day = days.setdefault(row.date or "", {})
            day[version] = day.get(version, 0) + messages
    return list(days.items())


def _row_tls(row: ConnectorRow) -> dict[str, Any]:
    return row_document(row)["tls"]  # type: ignore[no-any-return]


# The active insights about connectors the report shows at its top, as Microsoft's does; the
# insights page has them all. Hundreds would weigh more than the report itself.
REPORT_INSIGHTS = 5


@blp.get("/connectors")
def connector_report() -> BaseResponse:
    signed_in = _signed_in_or_redirect()
    if not isinstance(signed_in, SignedIn):
        return signed_in
    query = _report_query()
    page = Page(signed_in)
    client, tenant, now = context.client(), context.tenant(), context.tenant_now()
    try:
        report = page.read(connector_pages.report_page(
            client, tenant, query, now, context.settings().view_cache_seconds,
            context.cursor_secret(),
        ))  # fmt: skip
    except (connector_pages.CursorExpired, CursorError):  # old or not ours: the first page
        return redirect(url_with(cursor=None), code=303)
    daily = _daily_totals(page, query)
    about_connectors = [i for i in _active_insights(page)
                        if (i.get("connector") or {}).get("name")]  # fmt: skip
    snapshot = _snapshot(page)
    return page.answer(
        "connectors.html", page_class="page-connector-report", report=report, query=query,
        volume=charts.stacked(daily, by_version=False), by_tls=charts.stacked(daily), daily=daily,
        insights=about_connectors[:REPORT_INSIGHTS], insights_total=len(about_connectors),
        has_data=_has_data(snapshot), window_choices=WINDOW_CHOICES,
        connector_types=CONNECTOR_TYPES, tls_columns=TLS_COLUMNS,
    )  # fmt: skip


# The Export link's ``rows``: the page shown (the default), or every row of the selection.
EXPORT_ROWS = ("page", "all")


@blp.get("/connectors/export")
def connector_export() -> BaseResponse:
    """The rows the table shows as the API's CSV: the same page (filters, sort, window,
    grouping, page size and cursor), so the download is what the person sees. ``rows=all``
    is the API's own export: every row of the selection, no pages."""
    signed_in = _signed_in_or_redirect()
    if not isinstance(signed_in, SignedIn):
        return signed_in
    rows = request.args.get("rows") or "page"
    if rows not in EXPORT_ROWS:
        raise Problem(422, f"rows: must be one of {', '.join(EXPORT_ROWS)}")
    query = _report_query(drop=("format", "rows"))
    client, tenant, now = context.client(), context.tenant(), context.tenant_now()
    cache_seconds = context.settings().view_cache_seconds
    name = f"connector-report-{query.window.start}-{query.window.end}"
    if rows == "all":
        if query.cursor is not None:  # never ignored, as the API's export does not
            raise Problem(400, "every row has no pages; leave out cursor", slug="invalid-cursor")
        etag, chunks = connector_csv_report.report_csv(client, tenant, query, now,
                                                       cache_seconds)  # fmt: skip
    else:
        try:
            etag, chunks, offset = connector_csv_report.page_csv(
                client, tenant, query, now, cache_seconds, context.cursor_secret()
            )
        except CursorError as error:
            raise Problem(400, str(error), slug="invalid-cursor") from None
        except connector_pages.CursorExpired:
            raise Problem(410, "this page of the report is no longer kept (pages are kept "
                          f"{connector_pins.PIN_SECONDS // 60} minutes): reload the report and "
                          "export again", slug="cursor-expired", title="Cursor expired") from None  # fmt: skip
        name += f"-from-row-{offset + 1}"
    headers = {"ETag": etag, "Content-Disposition": f'attachment; filename="{name}.csv"'}
    return Response(stream_with_context(chunks), mimetype="text/csv", headers=headers)


# -- one connector -------------------------------------------------------------------------------


def _checked_direction(direction: str) -> str:
    if not is_direction(direction):
        raise Problem(404, f"no direction {direction!r}; use inbound or outbound")
    return direction


@blp.route("/connectors/<direction>/<path:name>", methods=["GET", "POST"])
def connector(direction: str, name: str) -> BaseResponse:
    signed_in = _signed_in_or_redirect("admin" if request.method == "POST" else "read")
    if not isinstance(signed_in, SignedIn):
        return signed_in
    direction, name = _checked_direction(direction), lookup_name(name)
    if request.method == "POST":
        session.check_csrf(signed_in)
        _define_connector(direction, name)
        return redirect(connector_path(direction, None if name == INTERNET else name), code=303)
    args = _query_args(WindowArgsSchema())
    page = Page(signed_in)
    view = connector_detail.connector_detail_view(
        context.client(), context.tenant(), direction, name, window_from_args(args),
        context.tenant_now(), context.settings().view_cache_seconds,
    )  # fmt: skip
    if view is None:
        raise Problem(404, f"no {direction} connector {name!r} with traffic in the window "
                      "and no definition of it")  # fmt: skip
    detail = page.read(view)
    daily = [(day["date"], charts.version_counts(day["tls"])) for day in detail["series"]]
    # The connector's insights wherever they are in the feed, the newest first.
    insights, older_insights = _newest([
        i for i in _feed(page, "all") if i.get("direction") == direction
        and (i.get("connector") or {}).get("name") == detail["name"]
    ])  # fmt: skip
    return page.answer("connector.html", page_class="page-connector", detail=detail,
                       chart=charts.stacked(daily), insights=insights, older_insights=older_insights,
                       connector_types=CONNECTOR_TYPES, window_choices=WINDOW_CHOICES)  # fmt: skip


def _define_connector(direction: str, name: str) -> None:
    """PUT /api/v1/connectors/{direction}/{name}, from a form: the same schema and store."""
    form = {"type": request.form.get("type", ""),
            "forced_tls": request.form.get("forced_tls") == "true",
            "description": request.form.get("description") or None}  # fmt: skip
    definition = _args(ConnectorDefinitionSchema(), form)
    try:
        define_connector(context.client(), context.tenant(), context.tenant_now().date(), direction,
                         name, definition, context.settings().max_connectors)  # fmt: skip
    except TextError as error:
        raise Problem(422, f"name: {error}") from None
    except connectors_store.DefinitionLimit as error:
        raise Problem(
            422, str(error), slug="too-many-definitions", title="Too many connector definitions"
        ) from None


# -- insights --------------------------------------------------------------------------------------


# Active insights a page of /insights lists. A tenant may have thousands (within FEED_PAGES
# of the feed); all on one page would weigh megabytes, far over the 150 kB budget.
INSIGHTS_PER_PAGE = 40
_MAX_PAGE_DIGITS = 6


def _insights_page_number() -> int:
    """The ``page`` argument of /insights: a whole number from 1 (422 otherwise)."""
    raw = request.args.get("page", "")
    if raw == "":
        return 1
    if not (raw.isascii() and raw.isdigit()) or len(raw) > _MAX_PAGE_DIGITS or int(raw) < 1:
        raise Problem(422, "page: must be a whole number from 1")
    return int(raw)


@blp.get("/insights")
def insights() -> BaseResponse:
    """Every active insight, INSIGHTS_PER_PAGE a page (in the feed's order), with links to
    every page on each page: the widget's count links to the first page, so any active
    insight is two clicks from the widget. The newest resolved insights are on the first
    page."""
    signed_in = _signed_in_or_redirect()
    if not isinstance(signed_in, SignedIn):
        return signed_in
    number = _insights_page_number()
    page = Page(signed_in)
    active = _active_insights(page)
    pages = max(1, -(-len(active) // INSIGHTS_PER_PAGE))
    if number > pages:  # insights resolved since the link was made: the last page there is
        return redirect(url_with(page=pages if pages > 1 else None), code=303)
    first = (number - 1) * INSIGHTS_PER_PAGE
    resolved, older_resolved = _newest_resolved(page) if number == 1 else ([], 0)
    overrides = insights_store.rule_settings(context.client(), context.tenant())
    page.etags.append(orjson.dumps(overrides, option=orjson.OPT_SORT_KEYS).decode())
    rules = [rule.describe() for rule in effective_rules(overrides)]
    return page.answer("insights.html", page_class="page-insights",
                       active=active[first : first + INSIGHTS_PER_PAGE], active_total=len(active),
                       first=first, number=number, pages=pages, resolved=resolved,
                       older_resolved=older_resolved, rules=rules,
                       has_data=_has_data(_snapshot(page)))  # fmt: skip


def _number(name: str, parse: Callable[[str], Any]) -> Any:
    raw = request.form.get(name, "").strip()
    if raw == "":
        return None
    try:
        return parse(raw)
    except ValueError:
        raise Problem(422, f"{name}: not a number") from None


@blp.post("/insights/rules/<rule_id>")
def change_rule(rule_id: str) -> BaseResponse:
    """PUT /api/v1/insight-rules/{rule_id}, from a form: the same schema and merge."""
    signed_in = _signed_in_or_redirect("admin")
    if not isinstance(signed_in, SignedIn):
        return signed_in
    session.check_csrf(signed_in)
    if rule_id not in RULES:
        raise Problem(404, f"no insight rule {rule_id!r}")
    form = {"enabled": request.form.get("enabled") == "true",
            "min_percent": _number("min_percent", float),
            "min_messages": _number("min_messages", int)}  # fmt: skip
    settings = _args(InsightRuleSettingsSchema(), {k: v for k, v in form.items() if v is not None})
    change_rule_settings(context.client(), context.tenant(), rule_id, settings)
    return redirect("/insights#rules", code=303)


# The Domains and SMTP AUTH clients pages add their routes to this blueprint.
from service.web.dashboard import who_pages  # noqa: E402, F401
