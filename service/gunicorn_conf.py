"""gunicorn settings read with ``-c python:service.gunicorn_conf`` (``mailflow serve`` / ``run``).

gunicorn writes ``Server: gunicorn`` on every response and has no setting for it; the name of
the server software is of use to nobody but an attacker picking exploits, so it says
``mailflow`` instead. gunicorn's own access log is off: mailflow logs each request as JSON (service.logs),
with no request headers, so API keys (in ``Authorization``) never reach a log.
"""

from __future__ import annotations

import os

import gunicorn.http.wsgi

from service.config import Settings

gunicorn.http.wsgi.SERVER = "mailflow"  # read by every Response gunicorn builds

access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms'

# The process model, from the same MAILFLOW_* settings create_app reads. gthread workers keep
# connections alive between a dashboard's or shipper's requests; one process per core.
_settings = Settings.from_env()
workers = _settings.web_workers or os.cpu_count() or 2
# A pool thread reads a request's headers and body with blocking recv calls and no timeout, so
# one slow client holds one of these few threads: bodies are read by service.body_reads, under
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
    "formatters": {"json": {"()": "service.logs.JsonFormatter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json",
                            "stream": "ext://sys.stderr"}},
    "root": {"level": _settings.log_level.upper(), "handlers": ["stderr"]},
    "loggers": {"gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False}},
}  # fmt: skip


def post_worker_init(worker: object) -> None:
    """In each web worker, after the fork: flush its metrics to Redis every second."""
    from service.api.context import EXTENSION
    from service.metrics import METRICS

    app = worker.wsgi  # type: ignore[attr-defined]
    state = getattr(app, "extensions", {}).get(EXTENSION)
    if state is not None and _settings.metrics_flush_seconds > 0:  # not for other WSGI apps
        METRICS.start_flusher(state["redis"], _settings.metrics_flush_seconds)
