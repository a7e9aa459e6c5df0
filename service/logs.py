"""Logs as one JSON object per line, with the request id; a request log line per request.

The request id comes from a well-formed ``X-Request-Id`` header (so a proxy's id carries
through) or is made here, and is echoed in the response. Nothing here ever reads the
``Authorization`` header: keys cannot reach a log line.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime

import orjson
from flask import Flask, Response, g, has_request_context, request

from service.metrics import METRICS

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
request_log = logging.getLogger("mailflow.request")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context() and "request_id" in g:
            entry["request_id"] = g.request_id
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for every logger of the process (gunicorn's included)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def install(app: Flask, access_log: bool) -> None:
    @app.before_request
    def start() -> None:
        supplied = request.headers.get("X-Request-Id", "")
        g.request_id = supplied if _REQUEST_ID.match(supplied) else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def finish(response: Response) -> Response:
        request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers["X-Request-Id"] = request_id
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        route = request.url_rule.rule if request.url_rule is not None else "(unmatched)"
        status = str(response.status_code)
        METRICS.inc("mailflow_http_requests_total",
                    (("route", route), ("method", request.method), ("status", status)))  # fmt: skip
        METRICS.observe("mailflow_http_request_duration_seconds",
                        (("route", route), ("status", status)), elapsed)  # fmt: skip
        if access_log:
            request_log.info(
                "request", extra={
                    "method": request.method, "path": request.path, "status": response.status_code,
                    "duration_ms": round(elapsed * 1000, 2), "tenant": g.get("tenant"),
                },
            )  # fmt: skip
        return response
