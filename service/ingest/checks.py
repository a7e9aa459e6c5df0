"""What a run can tell before (or without) the API: the dates the traces name, how many of them
the API will refuse as outside retention, and a Postfix log that does not log TLS at all.

Both are said in the summary, so ``--dry-run`` says them up front; a followed log gets the TLS
warning as soon as the evidence is there.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

_UTC_SUFFIXES = ("Z", "z", "+00:00")


def utc_day(timestamp: object) -> str | None:
    """The UTC day (YYYY-MM-DD) a trace's RFC 3339 timestamp names; None if it names none."""
    if not isinstance(timestamp, str) or len(timestamp) < 10:
        return None
    if timestamp.endswith(_UTC_SUFFIXES):
        return timestamp[:10]  # the common case: no parsing
    try:
        when = datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return when.astimezone(UTC).date().isoformat()


class DateReport:
    """What ``date_report`` found. A plain class, not a dataclass: a dry run does not import
    dataclasses (service.ingest.postfix says why)."""

    __slots__ = ("first", "last", "too_old", "too_new", "undated", "earliest_kept",
                 "retention_days")  # fmt: skip

    def __init__(
        self,
        *,
        first: str | None,  # the first and last UTC day of the traces
        last: str | None,
        too_old: int,  # traces before the retention period's first day
        too_new: int,  # traces of days after today (the API allows 15 minutes ahead)
        undated: int,
        earliest_kept: str,  # the retention period's first day
        retention_days: int,
    ) -> None:
        self.first = first
        self.last = last
        self.too_old = too_old
        self.too_new = too_new
        self.undated = undated
        self.earliest_kept = earliest_kept
        self.retention_days = retention_days

    def lines(self) -> list[str]:
        if self.first is None:
            return []
        out = [f"  dates (UTC): {self.first} .. {self.last}"]
        outside = self.too_old + self.too_new
        if outside:
            out.append(
                f"  outside retention ({self.retention_days} days, from {self.earliest_kept}): "
                f"{outside:,} traces ({self.too_old:,} older, {self.too_new:,} after today); "
                "the API refuses them"
            )
        else:
            out.append(f"  all within retention ({self.retention_days} days, from "
                       f"{self.earliest_kept})")  # fmt: skip
        if self.undated:
            out.append(f"  without a usable timestamp: {self.undated:,} traces")
        return out


def date_report(days: dict[str, int], undated: int, now: datetime, retention: int) -> DateReport:
    """Which of the traces counted per UTC day fall outside the retention period at ``now``
    (the server's rule, ``IngestWindow``: whole days, back from today)."""
    earliest = first_kept_day(now, retention)
    today = now.astimezone(UTC).date()
    too_old = too_new = 0
    for day, n in days.items():
        when = date.fromisoformat(day)
        if when < earliest:
            too_old += n
        elif when > today:
            too_new += n
    ordered = sorted(days)
    return DateReport(
        first=ordered[0] if ordered else None,
        last=ordered[-1] if ordered else None,
        too_old=too_old,
        too_new=too_new,
        undated=undated,
        earliest_kept=earliest.isoformat(),
        retention_days=retention,
    )


def first_kept_day(now: datetime, retention: int) -> date:
    """The first UTC day the API keeps at ``now``. The server's rule is
    ``service.core.traces.IngestWindow.at`` (whole days back from today); it is restated here
    so that a run does not load the server's trace contract, a tenth of a dry run's start-up.
    test_ingest_checks holds the two equal."""
    return now.astimezone(UTC).date() - timedelta(days=retention - 1)


TLS_WARNING = (
    "  warning: {sessions:,} SMTP sessions said starttls=1 when they disconnected, but the log "
    "has no `TLS connection established` line: Postfix is not logging TLS, so every message "
    "would count as plaintext (none). Set `smtpd_tls_loglevel = 1` and `smtp_tls_loglevel = 1` "
    "(postconf -e, then postfix reload) and ingest the log written after that."
)


class TlsLoggingCheck:
    """Counts, per chunk of Postfix lines, sessions that used STARTTLS (``starttls=1`` on
    their ``disconnect from`` line) and lines saying a TLS connection was established.

    Counting with ``str.count`` on the joined chunk costs about a memory copy per chunk, far
    below parsing it (see test_ingest_checks)."""

    def __init__(self) -> None:
        self.starttls_sessions = 0
        self.tls_lines = 0
        self.warned = False

    def observe(self, lines: Sequence[str]) -> None:
        if not lines or self.tls_lines:
            return  # once Postfix is seen logging TLS there is nothing left to warn about
        text = "".join(lines)
        self.starttls_sessions += text.count(" starttls=1")
        self.tls_lines += text.count("TLS connection established ")

    def warning(self) -> str | None:
        if self.starttls_sessions and not self.tls_lines:
            return TLS_WARNING.format(sessions=self.starttls_sessions)
        return None

    def warning_once(self, min_sessions: int = 20) -> str | None:
        """For a followed log: the warning, once, when enough sessions make it clear."""
        if self.warned or self.starttls_sessions < min_sessions:
            return None
        found = self.warning()
        self.warned = found is not None
        return found
