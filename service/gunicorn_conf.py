"""gunicorn settings read with ``-c python:service.gunicorn_conf`` (``mailflow serve`` / ``run``).

gunicorn writes ``Server: gunicorn`` on every response and has no setting for it; the name of
the server software is of use to nobody but an attacker picking exploits, so it says
``mailflow`` instead. gunicorn's own access log is off: mailflow logs each request as JSON
(service.web.request_log), with no request headers, so API keys (in ``Authorization``) never
reach a log.
"""

from __future__ import annotations

import os
import socket

import gunicorn.http.wsgi
import gunicorn.util
import orjson

from service.config import Settings

gunicorn.http.wsgi.SERVER = "mailflow"  # read by every Response gunicorn builds

access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms'

# The process model, from the same MAILFLOW_* settings create_app reads. gthread workers keep
# connections alive between a dashboard's or shipper's requests; one process per core.
_settings = Settings.from_env()
workers = _settings.web_workers or os.cpu_count() or 2
# A pool thread reads a request's headers and body with blocking recv calls and no timeout, so
# one slow client holds one of these few threads: bodies are read by service.web.body_reads, under
# MAILFLOW_BODY_READ_TIMEOUT_SECONDS and by all threads but one at most (see there why not
# here). Headers are read by gunicorn before any mailflow code runs; on an untrusted network a
# proxy that buffers requests (nginx) in front keeps slow headers away too.
threads = _settings.web_threads
worker_class = "gthread"
keepalive = 5
graceful_timeout = 10
accesslog = None  # mailflow logs each request itself, as JSON with its request id
errorlog = "-"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "service.telemetry.logging.JsonFormatter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json",
                            "stream": "ext://sys.stderr"}},
    "root": {"level": _settings.log_level.upper(), "handlers": ["stderr"]},
    "loggers": {"gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False}},
}  # fmt: skip


def post_worker_init(worker: object) -> None:
    """In each web worker, after the fork: flush its metrics to Redis every second."""
    from service.telemetry.metrics import METRICS
    from service.web.context import EXTENSION, AppState

    app = worker.wsgi  # type: ignore[attr-defined]
    state = getattr(app, "extensions", {}).get(EXTENSION)
    if isinstance(state, AppState) and _settings.metrics_flush_seconds > 0:  # not other apps
        METRICS.start_flusher(state.client, _settings.metrics_flush_seconds)


# -- gunicorn's own error answers: problem+json, never its HTML page ---------------------------
# gunicorn answers a request it cannot parse or bound (a bad request line, a request line or
# header over its limits, an error escaping the app) itself, with an HTML page and none of
# mailflow's headers. Its limits are raised to the largest gunicorn allows, so a request
# within a generous bound reaches the app; what is still beyond them, or unreadable, gets the
# same problem+json body and headers as every other mailflow error.
limit_request_line = 8190  # gunicorn's maximum (default 4094): ~8 kB of path and query
limit_request_field_size = 16380  # one header line (default 8190)

_GUNICORN_PROBLEMS = {
    400: ("bad-request", "The request could not be read"),
    403: ("forbidden", "Not allowed"),
    414: ("uri-too-long", "The request line is too long"),
    417: ("expectation-failed", "Expectation failed"),
    431: ("header-fields-too-large", "A request header is too large"),
    500: ("internal-error", "Internal error"),
    501: ("not-implemented", "Not implemented"),
}
_PROBLEM_HEADERS = ("Content-Type: application/problem+json\r\nServer: mailflow\r\n"
                    "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
                    "Referrer-Policy: no-referrer\r\nConnection: close\r\n")  # fmt: skip


def problem_error_response(status: int, reason: str) -> bytes:
    """The whole HTTP response for an error gunicorn answers itself. ``detail`` says what was
    wrong in general terms: gunicorn's own message may quote the request, which is not
    echoed back."""
    slug, title = _GUNICORN_PROBLEMS.get(status, ("bad-request", reason or "Bad request"))
    body = orjson.dumps({"type": f"/problems/{slug}", "title": title, "status": status,
                         "detail": f"{reason}: the request was refused before it reached "
                         "the application"})  # fmt: skip
    head = f"HTTP/1.1 {status} {reason}\r\n{_PROBLEM_HEADERS}Content-Length: {len(body)}\r\n\r\n"
    return head.encode("latin-1") + body


def write_problem_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """Replaces ``gunicorn.util.write_error`` (called by every worker's ``handle_error``)."""
    gunicorn.util.write_nonblock(sock, problem_error_response(status_int, reason))


gunicorn.util.write_error = write_problem_error
