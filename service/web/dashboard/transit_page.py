"""The dashboard's Transit security page (``/transit-security``): Microsoft's three sections
(sent mail per transport security class per day, mail blocked by a TLS policy, mail to domains
that did not offer TLS), read from the very view GET /api/v1/mailflow/transit-security serves
(``views.transit_view``), with the active transport security insights at its top.

Its route joins the dashboard's blueprint when this module is imported (``service.app`` does).
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response as BaseResponse

from service.core.transport_security import SECURITY_CLASSES
from service.reports import views
from service.web import context
from service.web.api.schemas import TlsArgsSchema
from service.web.api.windows import window_from_args
from service.web.dashboard import charts
from service.web.dashboard.pages import (
    REPORT_INSIGHTS,
    WINDOW_CHOICES,
    Page,
    _active_insights,
    _query_args,
    _signed_in_or_redirect,
    blp,
)
from service.web.dashboard.session import SignedIn

# The insight rules about transport security (service.core.insight_rules), shown at the top.
SECURITY_RULES = frozenset({"connector-unauthenticated", "connector-tls-downgrade",
                            "connector-tls-blocked"})  # fmt: skip
# Rows a section's table shows per direction, and errors per blocked row: a day keeps up to
# MAILFLOW_BLOCKED_FIELDS_PER_DAY blocked counters, 90 days many times that, and every row
# of them would weigh megabytes. The API's report has them all; the page says how many.
ROWS_SHOWN = 20
ERRORS_SHOWN = 3


def daily_chart(sent: list[dict[str, Any]]) -> charts.StackedChart:
    """The sent section's days as columns stacked by class, DANE at the bottom."""
    days = [(day["date"], {c: int(day["classes"][c]["messages"]) for c in SECURITY_CLASSES})
            for day in sent]  # fmt: skip
    return charts.stacked_by(days, SECURITY_CLASSES, charts.SECURITY_LABELS, charts.security_css)


@blp.get("/transit-security")
def transit_security() -> BaseResponse:
    signed_in = _signed_in_or_redirect()
    if not isinstance(signed_in, SignedIn):
        return signed_in
    args = _query_args(TlsArgsSchema())
    page = Page(signed_in)
    report = page.read(views.transit_view(
        context.client(), context.tenant(), window_from_args(args), args.get("direction"),
        context.tenant_now(), context.settings().view_cache_seconds,
        context.settings().domain_retention_days,
    ))  # fmt: skip
    daily = {direction: daily_chart(section["sent"])
             for direction, section in report["directions"].items()}  # fmt: skip
    about_security = [i for i in _active_insights(page) if i.get("rule") in SECURITY_RULES]
    return page.answer(
        "transit_security.html", page_class="page-transit-security", report=report,
        daily=daily, insights=about_security[:REPORT_INSIGHTS],
        insights_total=len(about_security), has_data=report.get("data_as_of") is not None,
        window_choices=WINDOW_CHOICES, classes=SECURITY_CLASSES, rows_shown=ROWS_SHOWN,
        errors_shown=ERRORS_SHOWN,
    )  # fmt: skip
