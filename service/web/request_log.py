"""A request log line per request, and the request id on every line logged meanwhile.

The request id comes from a well-formed ``X-Request-Id`` header (so a proxy's id carries
through) or is made here, and is echoed in the response. Nothing here ever reads the
``Authorization`` header: keys cannot reach a log line.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from datetime import UTC, datetime

import orjson
from flask import Flask, Response, g, has_request_context, request

from service.core.tlsrpt import INTAKE_PATH
from service.telemetry.logging import add_context_fields
from service.telemetry.metrics import METRICS

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
request_log = logging.getLogger("mailflow.request")


def _request_id_field() -> dict[str, object]:
    if has_request_context() and "request_id" in g:
        return {"request_id": g.request_id}
    return {}


add_context_fields(_request_id_field)


def install(app: Flask, access_log: bool) -> None:
    @app.before_request
    def start() -> None:
        g.request_id = request_id_from(request.headers.get("X-Request-Id", ""))
        g.started = time.perf_counter()

    @app.after_request
    def finish(response: Response) -> Response:
        request_id = g.get("request_id") or request_id_from("")
        response.headers["X-Request-Id"] = request_id
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        route = request.url_rule.rule if request.url_rule is not None else "(unmatched)"
        record_request(request.method, loggable_path(request.path), route,
                       response.status_code, elapsed,
                       g.get("tenant"), access_log, request_id)  # fmt: skip
        return response


def loggable_path(path: str) -> str:
    """The path without a TLS-RPT intake token (a credential in the URL): never logged."""
    if path.startswith(INTAKE_PATH):
        return INTAKE_PATH + "(token)"
    return path


def request_id_from(supplied: str) -> str:
    """A well-formed ``X-Request-Id`` from the client (or its proxy), else a new one."""
    return supplied if _REQUEST_ID.match(supplied) else os.urandom(16).hex()


def record_request(
    method: str,
    path: str,
    route: str,
    status: int,
    elapsed: float,
    tenant: str | None,
    access_log: bool,
    request_id: str,
) -> None:
    """Count a finished request in the metrics and write its request log line."""
    code = str(status)
    METRICS.inc("mailflow_http_requests_total",
                (("route", route), ("method", method), ("status", code)))  # fmt: skip
    METRICS.observe("mailflow_http_request_duration_seconds", (("route", route), ("status", code)),
                    elapsed)  # fmt: skip
    if access_log and request_log.isEnabledFor(logging.INFO):
        _write_request_line({
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": "info", "logger": request_log.name, "message": "request",
            "request_id": request_id, "method": method, "path": path, "status": status,
            "duration_ms": round(elapsed * 1000, 2), "tenant": tenant,
        })  # fmt: skip


_line_lock = threading.Lock()


def _write_request_line(entry: dict[str, object]) -> None:
    """The request line, in JsonFormatter's shape, straight to stderr: the logging module's
    record machinery (caller lookup, record object, handler chain) costs five times the
    line itself, and there is one per request. Text stderr is line-buffered: one write."""
    line = orjson.dumps(entry).decode() + "\n"
    with _line_lock:
        sys.stderr.write(line)
