"""The process-wide memo of report first pages already served (the connector report, the
per-domain and per-user reports)."""

from __future__ import annotations

import threading

import redis

from service.reports.connector_pins import PIN_SECONDS
from service.store.views import CachedView


class FirstPageMemo:
    """First pages already served, by (pin key, limit, cursor secret). A first page is a pure function of the
    rows it is cut from (their ETag is in the pin key) and the query: remembering it spares
    the selection, the sort and the pin lookup while the data does not change."""

    def __init__(self, max_entries: int = 512) -> None:
        self._entries: dict[tuple[str, int, bytes], tuple[CachedView, bool]] = {}
        self._max_entries = max_entries
        self._lock = threading.Lock()

    def still_served(self, client: redis.Redis, key: tuple[str, int, bytes]) -> CachedView | None:
        """The first page remembered under ``key`` (its first part the pin key), if it may be
        served again: a pinned first page renews its pin, so the cursor it hands out gets the
        full PIN_SECONDS; None when the pin expired meanwhile (the caller makes it again)."""
        remembered = self._entries.get(key)
        if remembered is None:
            return None
        page_view, pinned_here = remembered
        if not pinned_here or client.expire(key[0], PIN_SECONDS):
            return page_view
        return None

    def put(self, key: tuple[str, int, bytes], value: tuple[CachedView, bool]) -> None:
        with self._lock:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()  # old data versions' pages: cheaper to forget all
            self._entries[key] = value


FIRST_PAGES = FirstPageMemo()
