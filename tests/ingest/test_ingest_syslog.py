"""Syslog prefixes and timestamps, including the year of BSD timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from service.ingest.syslog import TimestampParser, day_of, parse_prefix


def test_prefixes() -> None:
    p = parse_prefix("2023-03-14T00:39:18.189142+01:00 helga postfix/10025/smtpd[304541]: hi\n")
    assert p is not None
    assert (p.host, p.program, p.pid, p.message) == ("helga", "postfix/10025/smtpd", "304541", "hi")
    p = parse_prefix("Sep  4 01:24:11 node postfix-1.2.3.4/smtp[5965]: x")
    assert p is not None and p.program == "postfix-1.2.3.4/smtp"
    assert p.timestamp == "Sep  4 01:24:11"
    p = parse_prefix("Jan 27 06:36:56 mail dovecot: imap-login: Login")
    assert p is not None and p.pid == "" and p.message == "imap-login: Login"
    assert parse_prefix("garbage") is None


def test_rfc3339_keeps_offset_and_fraction() -> None:
    ts = TimestampParser()
    assert ts.rfc3339("2023-03-14T00:39:18.189142+01:00") == "2023-03-14T00:39:18.189142+01:00"
    assert ts.parse("2023-03-14T00:39:18.5+01:00").microsecond == 500000
    assert ts.rfc3339("2023-03-14T00:39:18+0100") == "2023-03-14T00:39:18+01:00"
    assert (
        ts.epoch("2023-03-14T00:39:18.9+01:00")
        == datetime(2023, 3, 13, 23, 39, 18, tzinfo=UTC).timestamp()
    )


def test_bsd_year_is_inferred_so_it_is_not_in_the_future() -> None:
    ts = TimestampParser(now=lambda: datetime(2027, 1, 2, 12, tzinfo=UTC))
    assert ts.rfc3339("Dec 31 23:59:59") == "2026-12-31T23:59:59+00:00"
    assert ts.rfc3339("Jan  1 00:00:01") == "2027-01-01T00:00:01+00:00"
    assert ts.rfc3339("Mar  5 10:00:00") == "2026-03-05T10:00:00+00:00"


def test_given_year_rolls_over_at_new_year() -> None:
    ts = TimestampParser(year=2020)
    assert ts.rfc3339("Dec 31 23:59:59") == "2020-12-31T23:59:59+00:00"
    assert ts.rfc3339("Jan  1 00:00:01") == "2021-01-01T00:00:01+00:00"


def test_timezone_for_bsd() -> None:
    ts = TimestampParser(zone=ZoneInfo("Europe/Berlin"), year=2024)
    assert ts.rfc3339("Jul  1 12:00:00") == "2024-07-01T12:00:00+02:00"
    assert ts.rfc3339("Jan  1 12:00:00").endswith("+01:00")


def test_feb_29_in_a_common_year_is_an_error() -> None:
    with pytest.raises(ValueError):
        TimestampParser(now=lambda: datetime(2023, 6, 1, tzinfo=UTC)).parse("Feb 29 10:00:00")


def test_day_of() -> None:
    assert day_of("2023-03-14T00:39:18+01:00") == "2023-03-14"
    assert day_of("Mar  4 00:39:18") == "Mar  4"
