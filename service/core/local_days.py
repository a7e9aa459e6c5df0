"""A tenant's local days: the IANA time zone its traces are counted in (default UTC).

A trace counts on the local date of its timestamp in the tenant's zone, and every window
("today", "last N days") ends on the tenant's local today. The zone is a tenant setting
(``store.tenant_zone``); the day of a trace is decided when it is accepted, so days folded
before a change of zone stay as they were folded.
"""

from __future__ import annotations

import importlib.resources
from datetime import UTC, date, datetime, time, tzinfo
from functools import cache, lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_ZONE_NAME = "UTC"
MAX_ZONE_NAME = 64  # the longest IANA name is 32 characters


def zone_named(name: str) -> tzinfo:
    """The zone of an IANA name (``Europe/Berlin``), or ValueError naming what is wrong."""
    if not isinstance(name, str) or not name or len(name) > MAX_ZONE_NAME:
        raise ValueError(f"an IANA time zone name of at most {MAX_ZONE_NAME} characters")
    return _zone(name)


@cache
def known_zone_names() -> tuple[str, ...]:
    """The IANA names a tenant may choose: those of the pinned ``tzdata`` package, so every
    machine (whatever its system zone files) accepts the same names, and the API spec can list
    them. zoneinfo is never asked to read a file by a name not on this list."""
    listed = (importlib.resources.files("tzdata") / "zones").read_text(encoding="utf-8")
    return tuple(sorted(set(listed.split()) | {DEFAULT_ZONE_NAME}))


@lru_cache(maxsize=512)
def _zone(name: str) -> tzinfo:
    if name == DEFAULT_ZONE_NAME:
        return UTC  # the same object every UTC-only path compares with
    if name not in _known_zones():
        raise ValueError(f"unknown time zone {name[:40]!r}; use an IANA name like Europe/Berlin")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name[:40]!r}; use an IANA name like Europe/Berlin"
        ) from None


@cache
def _known_zones() -> frozenset[str]:
    return frozenset(known_zone_names())


def zone_name(zone: tzinfo) -> str:
    """The IANA name of a zone ``zone_named`` made."""
    return zone.key if isinstance(zone, ZoneInfo) else DEFAULT_ZONE_NAME


def local_date(when: datetime, zone: tzinfo = UTC) -> date:
    """The local date of an instant in ``zone``: the day a trace at ``when`` counts on."""
    return when.astimezone(zone).date()


def local_today(now: datetime, zone: tzinfo = UTC) -> date:
    """The tenant's today: where every window ends."""
    return now.astimezone(zone).date()


def day_start(day: date, zone: tzinfo = UTC) -> datetime:
    """The first instant of local ``day`` in ``zone`` (aware; a DST gap at midnight moves it
    to the first local time that exists)."""
    start = datetime.combine(day, time(), tzinfo=zone)
    # A midnight inside a DST gap does not exist: fold=0 reads it with the offset before the
    # gap; going through UTC and back gives the instant the day really starts.
    return start.astimezone(UTC).astimezone(zone)


def tenant_now(now: datetime, zone: tzinfo = UTC) -> datetime:
    """``now`` as the tenant's clock shows it: the same instant, in its zone. Reports and the
    worker's evaluation are given this, and take their today from it (``today_of``)."""
    return now if zone is UTC else now.astimezone(zone)


def today_of(now: datetime) -> date:
    """The tenant's today, of a ``tenant_now`` (a UTC ``now`` gives the UTC today)."""
    return now.date()
