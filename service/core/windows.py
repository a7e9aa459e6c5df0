"""Report windows: whole days, ``days=N`` ending today or ``start``/``end`` inclusive. The days
are the tenant's (UTC unless it set a time zone: ``core.local_days``); ``today`` is its today."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


class WindowError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Window:
    start: date
    end: date

    @property
    def days(self) -> list[str]:
        count = (self.end - self.start).days + 1
        return [(self.start + timedelta(days=i)).isoformat() for i in range(count)]

    def as_dict(self) -> dict[str, object]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(),
                "days": (self.end - self.start).days + 1}  # fmt: skip


def resolve_window(
    today: date,
    retention_days: int,
    days: int | None = None,
    start: date | None = None,
    end: date | None = None,
    default_days: int = 7,
) -> Window:
    """The window a request asks for, checked against the retention period."""
    if days is not None and (start is not None or end is not None):
        raise WindowError("days", "give either days or start/end, not both")
    earliest = today - timedelta(days=retention_days - 1)
    if start is None and end is None:
        days = default_days if days is None else days
        if not 1 <= days <= retention_days:
            raise WindowError("days", f"must be between 1 and {retention_days}")
        return Window(today - timedelta(days=days - 1), today)
    if start is None or end is None:
        raise WindowError("start" if start is None else "end", "start and end go together")
    if end < start:
        raise WindowError("end", "must not be before start")
    if end > today:
        raise WindowError("end", f"must not be after today ({today.isoformat()})")
    if start < earliest:
        raise WindowError("start", f"before the retention period (earliest {earliest.isoformat()})")
    return Window(start, end)
