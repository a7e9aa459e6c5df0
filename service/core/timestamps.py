"""Times as the API writes them: RFC 3339 in UTC, milliseconds, with a ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ms_to_rfc3339(epoch_ms: int | None) -> str | None:
    if epoch_ms is None:
        return None
    return rfc3339(datetime.fromtimestamp(epoch_ms / 1000, UTC))
