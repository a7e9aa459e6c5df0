"""Schemathesis checks for the suite's run (loaded with SCHEMATHESIS_HOOKS=tests.fuzz_checks).

`schema_valid_requests_are_accepted` is schemathesis' own `positive_data_acceptance`, minus
exactly the refusals the spec documents for rules OpenAPI cannot state, each recognised by its
problem type and the parameter or field it names:
- a report window: `days` or `start`/`end`, never both; start <= end <= today; start within
  retention (dates relative to today);
- a cursor the service did not issue (an opaque, signed token: a generator can only invent one);
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
