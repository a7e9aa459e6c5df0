"""Syslog line prefixes and their timestamps.

Two prefixes occur in mail logs: RFC 3339 (``2023-03-14T00:39:18.189142+01:00 host prog[pid]: ...``,
rsyslog's high-precision format) and classic BSD syslog (``Jan 12 00:00:01 host prog[pid]: ...``),
which has neither year nor zone. Parsing the prefix is the per-line hot path, so it is one
precompiled regex; turning the timestamp into a datetime is deferred until a line matters, and
cached because consecutive lines share their second.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo

# One regex for both prefixes. The program is everything up to `[pid]:` or `:`; Postfix program
# paths such as `postfix-out/submission/smtpd` contain slashes and dashes but never spaces.
PREFIX_RE = re.compile(
    r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)"
    r"|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)"
    r" (\S+) ([^\s\[:]+)(?:\[(\d+)\])?: "
)

MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}

# How far ahead of "now" a BSD timestamp may be before it is taken to be from last year. Clocks
# of the log host and the ingesting host differ a little; a day of slack avoids flipping a year.
FUTURE_SLACK = timedelta(days=1)


class LinePrefix:
    """The parsed prefix of one syslog line (the message is the rest of the line).

    A plain class, not a dataclass: a dry run does not import dataclasses (service.ingest.postfix
    says why)."""

    __slots__ = ("timestamp", "host", "program", "pid", "message")

    def __init__(self, timestamp: str, host: str, program: str, pid: str, message: str) -> None:
        self.timestamp = timestamp  # the raw token, stable across runs: part of trace ids
        self.host = host
        self.program = program  # e.g. `postfix/submission/smtpd`
        self.pid = pid  # "" when the program logged no pid
        self.message = message


def parse_prefix(line: str) -> LinePrefix | None:
    """Split a syslog line into prefix fields and message, or None when it is not syslog."""
    m = PREFIX_RE.match(line)
    if m is None:
        return None
    ts, host, program, pid = m.groups()
    return LinePrefix(ts, host, program, pid or "", line[m.end() :].rstrip("\r\n"))


class TimestampParser:
    """Turns raw timestamp tokens into aware datetimes, with BSD year inference.

    BSD timestamps carry no year and no zone. The zone is `zone` (UTC unless the user says
    otherwise). The year is `year` for the first line when given, rolling over when the month
    goes back (December to January); otherwise each line gets the latest year that does not
    put it in the future relative to `now()`.
    """

    def __init__(
        self,
        zone: tzinfo = UTC,
        year: int | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._zone = zone
        self._year = year
        self._last_month = 0
        self._now = now or (lambda: datetime.now(UTC))
        self._cache_key = ""
        self._cache_value: datetime | None = None
        self._epoch_key = ""
        self._epoch_value = 0.0
        self._second_key = ""
        self._second_value = 0.0

    def epoch(self, token: str) -> float:
        """Seconds since the epoch, to the second: the clock for expiring correlation state.

        Cached per calendar day (and offset): a day's lines cost a slice, a compare and a few
        int() calls. Within-day DST shifts of BSD logs are ignored, harmless for expiry.
        """
        second = token[:19]  # RFC 3339 up to the seconds, or the whole BSD token
        if second == self._second_key:
            return self._second_value
        if token[0].isdigit():
            key = token[:10] + token[-6:]
            hms = token[11:19]
        else:
            key, hms = token[:6], token[7:15]
        if key != self._epoch_key:
            midnight = self.parse(token).replace(hour=0, minute=0, second=0, microsecond=0)
            self._epoch_value = midnight.timestamp()
            self._epoch_key = key
        value = self._epoch_value + int(hms[:2]) * 3600 + int(hms[3:5]) * 60 + int(hms[6:8])
        self._second_key, self._second_value = second, value
        return value

    def rfc3339(self, token: str) -> str:
        """The token as RFC 3339 with an offset; RFC 3339 tokens pass through unchanged."""
        value = self.parse(token)  # also checks the date is real (no month 13, no Feb 30)
        if token[0].isdigit() and (token[-1] == "Z" or token[-3] == ":"):
            return token
        return value.isoformat()

    def parse(self, token: str) -> datetime:
        """Return the aware datetime of a timestamp token (RFC 3339 or BSD); raises ValueError."""
        # Lines arrive in order and many share a second: a one-entry cache keyed on the
        # token without its fraction makes the common case a slice and a compare.
        if token[0].isdigit():
            frac = ""
            key = token
            if len(token) > 19 and token[19] == ".":
                end = 20
                while end < len(token) and token[end].isdigit():
                    end += 1
                frac, key = token[20:end], token[:19] + token[end:]
            if key == self._cache_key and self._cache_value is not None:
                base = self._cache_value
            else:
                base = datetime.fromisoformat(key.replace("Z", "+00:00"))
                self._cache_key, self._cache_value = key, base
            if frac:
                return base.replace(microsecond=int(frac[:6].ljust(6, "0")))
            return base
        if token == self._cache_key and self._cache_value is not None:
            return self._cache_value
        value = self._parse_bsd(token)
        self._cache_key, self._cache_value = token, value
        return value

    def _parse_bsd(self, token: str) -> datetime:
        month = MONTHS[token[:3]]
        day = int(token[4:6])
        hh, mm, ss = int(token[7:9]), int(token[10:12]), int(token[13:15])
        if self._year is not None:
            # A given year belongs to the first line; a month going backwards by more than
            # half a year is the turn of the year (logs are in time order).
            if self._last_month and month < self._last_month - 6:
                self._year += 1
            self._last_month = month
            return datetime(self._year, month, day, hh, mm, ss, tzinfo=self._zone)
        now = self._now()
        year = now.year
        value = _bsd_datetime(year, month, day, hh, mm, ss, self._zone)
        if value is None or value > now + FUTURE_SLACK:
            value = _bsd_datetime(year - 1, month, day, hh, mm, ss, self._zone)
        if value is None:  # Feb 29 in neither year: not a real date
            raise ValueError(f"no such date: {token!r}")
        return value


def _bsd_datetime(
    year: int, month: int, day: int, hh: int, mm: int, ss: int, zone: tzinfo
) -> datetime | None:
    try:
        return datetime(year, month, day, hh, mm, ss, tzinfo=zone)
    except ValueError:
        return None


def day_of(token: str) -> str:
    """The log-local calendar day of a raw timestamp token, independent of year inference.

    Used in trace ids, so it must not change between runs: `2023-03-14` for RFC 3339 and
    `Mar 14` for BSD (which has no year; a collision needs the same queue id a year later).
    """
    if token[0].isdigit():
        return token[:10]
    return token[:6]
