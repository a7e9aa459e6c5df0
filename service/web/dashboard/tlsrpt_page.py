"""The dashboard's TLS-RPT page (``/tls-reports``): per policy domain, what senders reported,
from the same builder GET /api/v1/tls-reports serves (``service.core.tlsrpt_views``). Its
route joins the dashboard's blueprint when this module is imported (``service.app`` does)."""

from __future__ import annotations

import hashlib

import orjson
from werkzeug.wrappers import Response as BaseResponse

from service.core.tlsrpt_views import domain_rows
from service.store import tlsrpt_store
from service.web import context
from service.web.api.schemas import WindowArgsSchema
from service.web.api.windows import window_from_args
from service.web.dashboard.pages import (
    WINDOW_CHOICES,
    Page,
    _query_args,
    _signed_in_or_redirect,
    blp,
)
from service.web.dashboard.session import SignedIn


@blp.get("/tls-reports")
def tls_reports() -> BaseResponse:
    signed_in = _signed_in_or_redirect()
    if not isinstance(signed_in, SignedIn):
        return signed_in
    window = window_from_args(_query_args(WindowArgsSchema()))
    rows = domain_rows(tlsrpt_store.read_days(context.client(), context.tenant(), window.days))
    page = Page(signed_in)
    page.etags.append(hashlib.blake2b(orjson.dumps(rows), digest_size=16).hexdigest())
    return page.answer("tls_reports.html", page_class="page-tls-reports", rows=rows,
                       window=window.as_dict(), window_choices=WINDOW_CHOICES)  # fmt: skip
