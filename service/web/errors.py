"""Every error as RFC 9457 problem+json: the documented error body and the real one are one.

``type`` is a relative URI under ``/problems/``; docs/security.md lists each with its meaning.
Validation problems carry ``errors``: a list of ``{index, field, message}`` naming the record
(for query parameters: the parameter) and the field at fault.
"""

from __future__ import annotations

from typing import Any

import orjson
import redis
from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from service.store.availability import STORE_UNAVAILABLE, describe, refuses_writes

PROBLEM_JSON = "application/problem+json"

# status -> (type slug, title) for problems raised without a more specific type.
_DEFAULTS = {
    400: ("bad-request", "The request could not be read"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed for this key"),
    404: ("not-found", "No such resource"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "No acceptable representation"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "The request is too large"),
    415: ("unsupported-media-type", "Unsupported content type"),
    422: ("validation-failed", "The request is not valid"),
    429: ("rate-limited", "Too many requests"),
    500: ("internal-error", "Internal error"),
    503: ("unavailable", "Service unavailable"),
}


class Problem(HTTPException):
    """An HTTP error raised anywhere; answered by ``problem_response`` with the same fields."""

    def __init__(self, status: int, detail: str, **fields: Any) -> None:
        super().__init__(description=detail)
        self.code = status
        self.fields = fields  # slug, title, errors, headers, extra: see problem_response


def problem_response(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    default_slug, default_title = _DEFAULTS.get(status, ("error", "Error"))
    body: dict[str, Any] = {
        "type": f"/problems/{slug or default_slug}",
        "title": title or default_title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    body.update(extra or {})
    response = Response(orjson.dumps(body), status=status, mimetype=PROBLEM_JSON)
    response.headers.update(headers or {})
    return response


def _from_http_exception(error: HTTPException) -> Response:
    if isinstance(error, Problem):
        return problem_response(error.code or 500, error.description or "", **error.fields)
    status = error.code or 500
    errors = None
    # webargs (behind flask-smorest's @arguments) attaches marshmallow's messages here.
    messages = getattr(error, "data", {}).get("messages") if hasattr(error, "data") else None
    if messages:
        errors = _field_errors(messages)
    detail = error.description or ""
    if status == 422 and errors:
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    headers = dict(error.get_headers()) if status in (405,) else {}
    headers.pop("Content-Type", None)
    return problem_response(status, detail, errors=errors, headers=headers)


def _field_errors(messages: dict[str, Any]) -> list[dict[str, Any]]:
    """Flatten webargs' {location: {field: [message]}} into [{field, message}]."""
    errors = []
    for location_messages in messages.values():
        if not isinstance(location_messages, dict):
            continue
        for field, field_messages in location_messages.items():
            texts = field_messages if isinstance(field_messages, list) else [field_messages]
            for text in texts:
                errors.append({"field": field, "message": str(text)})
    return errors


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(HTTPException, _from_http_exception)

    def store_unavailable(error: Exception) -> Response:
        app.logger.warning("redis unavailable: %s", error)
        return problem_response(
            503, "The data store does not answer; retry shortly.",
            slug="store-unavailable", title="Data store unavailable",
            headers={"Retry-After": "2"},
        )  # fmt: skip

    def store_refuses_writes(error: Exception) -> Response:
        app.logger.warning("%s", describe(error))
        return problem_response(
            503, "The data store refuses writes for now (full, failing to persist, or a "
            "read-only replica); nothing was stored; retry shortly.",
            slug="store-refuses-writes", title="Data store refuses writes",
            headers={"Retry-After": "5"},
        )  # fmt: skip

    # Down, stalled, or a Redis Cluster failing over (no master for a slot yet, a moved slot).
    for kind in STORE_UNAVAILABLE:
        app.register_error_handler(kind, store_unavailable)

    @app.errorhandler(redis.ResponseError)
    def redis_response_error(error: redis.ResponseError) -> Response:
        # OOM, MISCONF and READONLY are ResponseErrors too, told apart by their code only.
        if refuses_writes(error):
            return store_refuses_writes(error)
        return unexpected(error)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        app.logger.exception("unhandled error")
        return problem_response(500, "An unexpected error occurred; it has been logged.")
