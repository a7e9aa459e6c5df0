"""Turning window query parameters into a Window, with a 422 naming the parameter."""

from __future__ import annotations

from typing import Any

from service.core.windows import Window, WindowError, resolve_window
from service.web import context
from service.web.errors import Problem


def window_from_args(
    args: dict[str, Any], default_days: int = 7, retention_days: int | None = None
) -> Window:
    """The window of ``args``, within ``retention_days`` (default MAILFLOW_RETENTION_DAYS)."""
    today = context.tenant_now().date()
    try:
        return resolve_window(
            today, retention_days or context.settings().retention_days, days=args.get("days"),
            start=args.get("start"), end=args.get("end"), default_days=default_days,
        )  # fmt: skip
    except WindowError as error:
        raise Problem(
            422,
            f"{error.field}: {error.message}",
            errors=[{"field": error.field, "message": error.message}],
        ) from None
