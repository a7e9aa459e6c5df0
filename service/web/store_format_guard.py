"""The API writes to a store of the current format only (``service.store.store_format``)."""

from __future__ import annotations

from service.store import store_format
from service.web import context
from service.web.errors import Problem


def _refusal() -> store_format.StoreFormatError | None:
    """Why the store cannot be served, None if it can. Once found current, a process does not
    ask again: a store's format only ever goes up, and an older release refuses a newer one."""
    state = context.app_state()
    if state.store_format_current:
        return None
    try:
        store_format.require_current(state.client)
    except store_format.StoreFormatError as error:
        return error
    state.store_format_current = True
    return None


def require_current_store() -> None:
    """Refuse (503, naming ``mailflow migrate``) while the store is of another format."""
    error = _refusal()
    if error is not None:
        raise Problem(503, str(error), slug="store-format", title="Store format not supported",
                      extra={"store_format": error.found, "needs_format": store_format.CURRENT},
                      headers={"Retry-After": "60"})  # fmt: skip


def store_format_check() -> str:
    """``ok``, or why the store cannot be served (a /readyz check)."""
    error = _refusal()
    return "ok" if error is None else str(error)
