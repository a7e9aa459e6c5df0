"""TLS-RPT intake (RFC 8460 §5.3): POST a report with an ingest key, or to a tenant's intake
URL whose token is the credential; and the intake tokens (scope admin to make and revoke)."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from flask import Response, request
from flask.views import MethodView
from redis import Redis, RedisError

from service.core.tlsrpt import (
    INTAKE_PATH,
    MEDIA_TYPES,
    ReportError,
    check_day,
    inflate_report,
    parse_json_report,
)
from service.store import tlsrpt_store, tlsrpt_tokens, worker_signals
from service.store import traces as trace_store
from service.telemetry.metrics import METRICS
from service.web import context
from service.web.api.blueprint import Blueprint
from service.web.api.body import media_type, read_body
from service.web.api.tlsrpt_schemas import (
    IntakeResultSchema,
    NewTokenSchema,
    TokenListSchema,
    TokenRequestSchema,
)
from service.web.errors import Problem
from service.web.store_format_guard import require_current_store

log = logging.getLogger("mailflow.ingest")

blp = Blueprint("tlsrpt", __name__, url_prefix="/api/v1",
                description="TLS-RPT (RFC 8460) report intake and intake tokens")  # fmt: skip

_REQUEST_BODY = {
    "required": True,
    "description": "One RFC 8460 aggregate report: its JSON, or the JSON gzip'd "
    "(`application/tlsrpt+gzip`, as reporters send it).",
    "content": {kind: {"schema": {"type": "string", "format": "binary"}} for kind in MEDIA_TYPES},
}
_DAY_FULL = {
    tlsrpt_store.DAY_FULL: "its day already holds the most TLS-RPT counters allowed "
    "(MAILFLOW_TLSRPT_MAX_DAY_FIELDS)",
    tlsrpt_store.REPORTS_FULL: "its day already holds the most TLS-RPT reports allowed "
    "(MAILFLOW_TLSRPT_MAX_DAY_REPORTS)",
}


def _intake_errors(view: Any) -> Any:
    for status, text in (
        (400, "The body cannot be read, is not gzip or not JSON"),
        (413, "Over the size limit, sent or inflated"),
        (415, "Not application/tlsrpt+gzip, application/tlsrpt+json or application/json"),
        (422, "A field breaks RFC 8460's schema (named in errors[].field), or its day is full"),
        (503, "The data store does not answer; retry"),
    ):
        view = blp.problem(status, text)(view)
    return view


def ingest_report() -> Response:
    """Read, check and count one report for the request's tenant."""
    require_current_store()
    settings = context.settings()
    if media_type(request) not in MEDIA_TYPES:
        raise Problem(415, f"send the report as {', '.join(MEDIA_TYPES)}")
    body = read_body(request, settings.max_body_bytes)
    now = context.now()
    try:
        document = inflate_report(body, settings.tlsrpt_max_bytes)
        report = parse_json_report(document)
        check_day(report, now, settings.retention_days)
    except ReportError as error:
        METRICS.inc("mailflow_tlsrpt_reports_total", (("outcome", "rejected"),))
        errors = [{"field": error.field, "message": error.message}] if error.field else None
        raise Problem(error.status, f"{error.field or 'the report'}: {error.message}"
                      if error.field else error.message, slug="invalid-tlsrpt"
                      if error.status == 422 else None, errors=errors) from None  # fmt: skip
    limits = tlsrpt_store.DayLimits(settings.tlsrpt_max_day_fields,
                                    settings.tlsrpt_max_day_reports)  # fmt: skip
    outcome = tlsrpt_store.store_report(context.client(), context.tenant(), report, document,
                                        limits, settings.retention_days, now)  # fmt: skip
    METRICS.inc("mailflow_tlsrpt_reports_total", (("outcome", outcome),))
    if outcome == tlsrpt_store.COUNTED:
        _signal_worker(context.client(), context.tenant())
    if outcome in _DAY_FULL:
        raise Problem(422, f"the report for {report.day} is refused whole: {_DAY_FULL[outcome]}",
                      slug="tlsrpt-day-full")  # fmt: skip
    out = {"outcome": outcome, "id": report.identity, "day": report.day.isoformat(),
           "organization": report.organization, "report_id": report.report_id,
           "domains": list(report.domains), "policies": len(report.policies)}  # fmt: skip
    return Response(orjson.dumps(out), status=202, mimetype="application/json")


@blp.route("/tlsrpt")
class KeyIntake(MethodView):
    @blp.doc(requestBody=_REQUEST_BODY)
    @blp.response(202, IntakeResultSchema)
    @_intake_errors
    def post(self) -> Response:
        """Post a TLS-RPT report (ingest key)

        For tools and for `mailflow ingest --format tlsrpt`. A report counts once per
        organization and report-id, however often it is posted.
        """
        return ingest_report()


@blp.route("/tlsrpt/intake/<token>")
class TokenIntake(MethodView):
    @blp.doc(requestBody=_REQUEST_BODY, security=[])
    @blp.response(202, IntakeResultSchema)
    @_intake_errors
    @blp.problem(404, "No such intake URL")
    def post(self, token: str) -> Response:
        """Post a TLS-RPT report to a tenant's intake URL (no Authorization header)

        The URL of the `rua=` in the domain's `_smtp._tls` TXT record: its token is the
        credential, good for posting reports to its own tenant only.
        """
        return ingest_report()


def _signal_worker(client: Redis, tenant: str) -> None:
    """The tenant's insights are due for evaluation (the report is counted already: a refused
    signal must not turn the 202 into an error the reporter would retry; the worker's periodic
    evaluation of every tenant finds the report within a minute anyway)."""
    try:
        trace_store.register_tenant(client, tenant)
        worker_signals.request_evaluation(client, tenant)
    except RedisError as error:
        log.warning("tenant %s: TLS-RPT report not signalled (%s)", tenant, error)


def _token_out(record: Any) -> dict[str, Any]:
    return {"id": record.key_id, "name": record.name, "created_at": record.created_at,
            "revoked_at": record.revoked_at}  # fmt: skip


@blp.route("/tlsrpt/tokens")
class IntakeTokens(MethodView):
    @blp.response(200, TokenListSchema)
    def get(self) -> dict[str, Any]:
        """List the tenant's TLS-RPT intake tokens (never their secrets)"""
        records = tlsrpt_tokens.list_tokens(context.client(), context.tenant())
        return {"tokens": [_token_out(record) for record in records]}

    @blp.arguments(TokenRequestSchema)
    @blp.response(201, NewTokenSchema)
    @blp.problem(409, "The tenant has the most live tokens allowed")
    def post(self, args: dict[str, Any]) -> dict[str, Any]:
        """Make a TLS-RPT intake URL (scope admin)

        The token is shown once, in `url`; put that URL in the `rua=` of the domain's
        `_smtp._tls` TXT record (`dns_record`).
        """
        try:
            token_id, token = tlsrpt_tokens.create(context.client(), context.tenant(),
                                                   args["name"], context.now())  # fmt: skip
        except tlsrpt_tokens.TooManyTokens as error:
            raise Problem(409, str(error)) from None
        url = request.host_url.rstrip("/") + INTAKE_PATH + token
        [record] = [r for r in tlsrpt_tokens.list_tokens(context.client(), context.tenant())
                    if r.key_id == token_id]  # fmt: skip
        return {**_token_out(record), "token": token, "url": url,
                "dns_record": f'_smtp._tls IN TXT "v=TLSRPTv1; rua={url}"'}  # fmt: skip


@blp.route("/tlsrpt/tokens/<token_id>")
class IntakeToken(MethodView):
    @blp.response(204)
    @blp.problem(404, "The tenant has no such token")
    def delete(self, token_id: str) -> Response:
        """Revoke a TLS-RPT intake token (scope admin); its URL stops working at once"""
        if not tlsrpt_tokens.revoke(context.client(), context.tenant(), token_id, context.now()):
            raise Problem(404, f"this tenant has no intake token {token_id!r}")
        return Response(status=204)
