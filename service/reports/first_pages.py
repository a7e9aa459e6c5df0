"""The process-wide memo of connector report first pages already served."""

from __future__ import annotations

import threading

from service.store.views import CachedView


class FirstPageMemo:
    """First pages already served, by (pin key, limit, cursor secret). A first page is a pure function of the
    rows it is cut from (their ETag is in the pin key) and the query: remembering it spares
    the selection, the sort and the pin lookup while the data does not change."""

    def __init__(self, max_entries: int = 512) -> None:
        self._entries: dict[tuple[str, int, bytes], tuple[CachedView, bool]] = {}
        self._max_entries = max_entries
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int, bytes]) -> tuple[CachedView, bool] | None:
        return self._entries.get(key)

    def put(self, key: tuple[str, int, bytes], value: tuple[CachedView, bool]) -> None:
        with self._lock:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()  # old data versions' pages: cheaper to forget all
            self._entries[key] = value


FIRST_PAGES = FirstPageMemo()
