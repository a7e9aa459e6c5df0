"""gunicorn settings read with ``-c python:service.gunicorn_conf`` (``mailflow serve`` / ``run``).

gunicorn writes ``Server: gunicorn`` on every response and has no setting for it; the name of
the server software is of use to nobody but an attacker picking exploits, so it says
``mailflow`` instead. The access log format is gunicorn's default, which logs no request
headers: API keys (in ``Authorization``) never reach a log.
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
threads = _settings.web_threads
worker_class = "gthread"
keepalive = 5
graceful_timeout = 10
accesslog = "-"
errorlog = "-"
