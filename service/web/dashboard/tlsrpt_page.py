"""The dashboard's TLS-RPT page (``/tls-reports``): per policy domain, what senders reported,
from the same builder GET /api/v1/tls-reports serves (``service.core.tlsrpt_views``). Its
route joins the dashboard's blueprint when this module is imported (``service.app`` does)."""

from __future__ import annotations

import hashlib

import orjson
from werkzeug.wrappers import Response as BaseResponse

from service.core.tls import TLS_VERSIONS
from service.core.tlsrpt import ReportError, domain_value
from service.web.api.schemas import WindowArgsSchema
from service.web.api.tls_reports import (
    detail_of,
    original_download,
    our_logs_of,
    reports_of,
    rows_of,
)
from service.web.api.windows import window_from_args
from service.web.dashboard.pages import (
    WINDOW_CHOICES,
    Page,
    _query_args,
    _signed_in_or_redirect,
    blp,
)
from service.web.dashboard.session import SignedIn
from service.web.errors import Problem


@blp.get("/tls-reports")
def tls_reports() -> BaseResponse:
    signed_in = _signed_in_or_redirect()
    if not isinstance(signed_in, SignedIn):
        return signed_in
    window = window_from_args(_query_args(WindowArgsSchema()))
    rows = rows_of(window)
    return _answer(signed_in, "tls_reports.html", rows, rows=rows, window=window.as_dict())


@blp.get("/tls-reports/<domain>")
def tls_report_domain(domain: str) -> BaseResponse:
    signed_in = _signed_in_or_redirect()
    if not isinstance(signed_in, SignedIn):
        return signed_in
    try:
        name = domain_value(domain, "domain")
    except ReportError as error:
        raise Problem(422, f"domain: {error.message}") from None
    window = window_from_args(_query_args(WindowArgsSchema()))
    detail = {**detail_of(name, window), "our_logs": our_logs_of(name, window),
              "reports": reports_of(name, window, ORIGINAL_PATH)}  # fmt: skip
    return _answer(signed_in, "tls_report_domain.html", detail, detail=detail,
                   window=window.as_dict(), tls_versions=TLS_VERSIONS,
                   reports_shown=detail["reports"][::-1][:REPORTS_SHOWN])  # fmt: skip


ORIGINAL_PATH = "/tls-reports/originals/"
# The newest reports listed on a domain's page (a domain may get dozens a day); the API's
# ``reports`` lists every one, so the page stays small at a 90-day window.
REPORTS_SHOWN = 100


@blp.get("/tls-reports/originals/<report>")
def tls_report_original(report: str) -> BaseResponse:
    """A report as received, for the session's tenant only (the API's download)."""
    signed_in = _signed_in_or_redirect()
    if not isinstance(signed_in, SignedIn):
        return signed_in
    return original_download(report)


def _answer(signed_in: SignedIn, template: str, shown: object, **values: object) -> BaseResponse:
    """The page, its ETag made of what it shows (the counters are read, not a cached view)."""
    page = Page(signed_in)
    page.etags.append(hashlib.blake2b(orjson.dumps(shown), digest_size=16).hexdigest())
    return page.answer(template, page_class="page-tls-reports", window_choices=WINDOW_CHOICES,
                       **values)  # fmt: skip
