"""Logs as one JSON object per line, for every logger of the process.

A layer that handles something adds its fields to every line logged meanwhile
(``add_context_fields``): the web layer adds the request id (``service.web.request_log``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime

import orjson

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
ContextFields = Callable[[], dict[str, object]]
_context_fields: list[ContextFields] = []


def add_context_fields(fields: ContextFields) -> None:
    """Have every line carry what ``fields()`` returns when it is logged (empty: nothing)."""
    _context_fields.append(fields)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for fields in _context_fields:
            entry.update(fields())
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


ADMIN_LOG = logging.getLogger("mailflow.admin")


def log_admin_action(action: str, tenant: str, actor: str, **details: object) -> None:
    """One line per administrative change of a tenant's data (``tenant.reset``,
    ``tenant.delete``): what, to which tenant, by whom (an API key id, or ``cli`` and the
    user), and its outcome. A WARNING, so it is kept at any usual log level."""
    ADMIN_LOG.warning("admin action %s on tenant %s by %s", action, tenant, actor,
                      extra={"admin_action": action, "tenant": tenant, "actor": actor,
                             **details})  # fmt: skip
