"""Schemathesis checks for the suite's run (loaded with SCHEMATHESIS_HOOKS=tests.fuzz_checks).

`schema_valid_requests_are_accepted` is schemathesis' own `positive_data_acceptance`, minus
exactly the refusals the spec documents for rules OpenAPI cannot state, each recognised by its
problem type and the parameter or field it names:
- a report window: `days` or `start`/`end`, never both; start <= end <= today; start within
  retention (dates relative to today);
- a cursor the service did not issue (an opaque, signed token: a generator can only invent one);
- a webhook URL refused by its DNS answers or the allowed networks, and a tenant's webhooks
  over their limit;
- a trace timestamp outside the ingest window (relative to now), a trace's connector_type
  contradicting the connector's stored definition (state, not shape), and NDJSON lines (a
  string body whose lines OpenAPI cannot describe);
- a tenant reset whose `end` is before its `start` or whose span is over the retention
  period, and a tenant delete whose `confirm` is not the key's own tenant (state, not shape).
`schema_invalid_requests_are_refused` is `negative_data_rejection` with 413 (over a documented
limit) counted as the refusal it is.
Any other 4xx for schema-valid data still fails, so every constraint the spec can state must
be in it.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

WINDOW_PARAMETERS = {"days", "start", "end"}


def _problem(response: Any) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _named_fields(problem: dict[str, Any]) -> set[str]:
    return {str(e.get("field")) for e in problem.get("errors") or [] if isinstance(e, dict)}


def _state_rule(error: dict[str, Any]) -> bool:
    """A trace refused by a rule of the moment or of stored state: its timestamp outside the
    ingest window, or a connector_type contradicting the connector's stored definition."""
    if error.get("field") == "timestamp":
        return True
    return error.get("field") == "connector_type" and "contradicts the definition" in str(
        error.get("message")
    )


def documented_refusal(case: Any, response: Any) -> bool:
    """A refusal the spec documents in words because OpenAPI cannot state the rule."""
    problem, status = _problem(response), response.status_code
    fields = _named_fields(problem)
    query = case.query or {}
    if status == 422 and fields and fields <= WINDOW_PARAMETERS and WINDOW_PARAMETERS & set(query):
        return True
    if status == 400 and problem.get("type") == "/problems/invalid-cursor" and "cursor" in query:
        return True
    if _tlsrpt_refusal(case.path, status, problem, fields):
        return True
    # A webhook URL is checked against DNS and the allowed networks (the moment's answers, not
    # its shape), and a tenant's subscriptions are bounded (stored state).
    webhook_refusals = ("/problems/webhook-url-refused", "/problems/too-many-webhooks")
    webhook_paths = ("/api/v1/webhooks", "/api/v1/webhooks/{webhook_id}")
    if case.path in webhook_paths and status == 422 and problem.get("type") in webhook_refusals:
        return True
    if case.path == "/api/v1/tenant/reset" and status == 422 and fields and fields <= {
        "start", "end"}:  # fmt: skip
        return True
    if case.path == "/api/v1/tenant" and status == 422 and fields == {"confirm"}:
        return True
    if case.path == "/api/v1/traces":
        if case.media_type == "application/x-ndjson" and status in (400, 422):
            return True
        if status == 422 and fields and all(_state_rule(e) for e in problem["errors"]):
            return True
    return False


def _tlsrpt_refusal(path: str, status: int, problem: dict[str, Any], fields: set[str]) -> bool:
    """TLS-RPT: a report body's rules are RFC 8460's (and its day must be within retention),
    stated in words; an intake token or report id the service never issued; a policy domain
    in a path that is not a domain name; the tenant's most intake tokens reached."""
    if path in ("/api/v1/tlsrpt", "/api/v1/tlsrpt/intake/{token}") and status in (400, 413, 422):
        return True
    if path == "/api/v1/tlsrpt/intake/{token}" and status in (401, 404):
        return True
    if path == "/api/v1/tls-reports/{domain}" and status == 422 and "domain" in fields:
        return True
    if path == "/api/v1/tlsrpt/tokens" and status == 409:
        return True
    return path.startswith(("/api/v1/tls-reports/originals/", "/api/v1/tlsrpt/tokens/")) and (
        status == 404 and problem.get("status") == 404
    )


@schemathesis.check
def schema_valid_requests_are_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
    try:
        return positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        if documented_refusal(case, response):
            return None
        raise


@schemathesis.check
def schema_invalid_requests_are_refused(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis' `negative_data_rejection`, with 413 counted as a refusal: the documented
    answer to a batch over the record or byte limit (the spec's maxItems)."""
    try:
        return negative_data_rejection(ctx, response, case)
    except AcceptedNegativeData:
        if response.status_code == 413 and _problem(response).get("status") == 413:
            return None
        raise


@schemathesis.check
def errors_are_problem_json(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx and 5xx is RFC 9457 problem+json with its status in the body."""
    if response.status_code < 400 or (response.status_code == 503 and case.path == "/readyz"):
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.startswith("application/problem+json"), content_type
    assert _problem(response).get("status") == response.status_code
    return None
