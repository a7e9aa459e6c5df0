"""The rows views of the connector report grouped by day this process built last, by ETag.

Such a view is the days' kept rows joined (``store.day_rows``), so its ETag is made from the
days' digests (names of their content) instead of hashing some 8 MB of JSON, and a first page
orders the rows from the days as already split instead of decoding the view again. Both are of
the same bytes, so neither changes what is served. A view asked for again (its days read and
found unchanged: the same tag) is the one joined before.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence

from service.core.rows_view import RawRows, join_rows_view, raw_view_of_days
from service.store.day_rows import DayRows
from service.store.views import CachedView

MAX_VIEWS = 4  # each holds its joined body (up to some 8 MB) and the days it was joined from


class JoinedDays:
    """The days each recent view was joined from, by the view's ETag."""

    def __init__(self, max_views: int = MAX_VIEWS) -> None:
        self._views: dict[str, tuple[CachedView, DayRows, str | None]] = {}
        self._max_views = max_views
        self._lock = threading.Lock()

    def put(self, view: CachedView, days: DayRows, data_as_of: str | None) -> None:
        with self._lock:
            if len(self._views) >= self._max_views:
                self._views.pop(next(iter(self._views)))
            self._views[view.etag] = (view, days, data_as_of)

    def view(self, etag: str) -> CachedView | None:
        joined = self._views.get(etag)
        return joined[0] if joined else None

    def raw_rows(self, etag: str) -> RawRows | None:
        """The view tagged ``etag`` as ``core.rows_view.select_raw`` reads it, if built here."""
        joined = self._views.get(etag)
        if joined is None:
            return None
        _, days, data_as_of = joined
        return raw_view_of_days(days.version, data_as_of, [part.split for part in days.parts])


JOINED_DAYS = JoinedDays()


def day_rows_view(tenant: str, days: DayRows, data_as_of: str | None) -> CachedView:
    """The rows view of ``days``, tagged by what it is made of: the tenant, the version, the
    time of the newest data and each day's digest, in order."""
    tag = _parts_tag(tenant, days.version, data_as_of, [part.digest for part in days.parts])
    joined = JOINED_DAYS.view(f'"{tag}"')
    if joined is not None:
        return joined
    body = join_rows_view(days.version, data_as_of, days.rows, days.messages)
    view = CachedView(body, f'"{tag}"')
    JOINED_DAYS.put(view, days, data_as_of)
    return view


def _parts_tag(tenant: str, version: int, data_as_of: str | None, digests: Sequence[bytes]) -> str:
    head = b"day-parts\0%s\0%d\0%s\0" % (tenant.encode(), version, (data_as_of or "").encode())
    return hashlib.blake2b(head + b"".join(digests), digest_size=12).hexdigest()
