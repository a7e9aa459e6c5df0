"""The "Message protected in transit (by TLS)" flyout: per direction and TLS version over the
window, and the same per day for a chart."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from service.core.snapshot import security_breakdown, tls_breakdown
from service.core.tls import TLS_VERSIONS
from service.core.traces import DIRECTIONS, FIELD_SEP
from service.core.transport_security import SECURITY_CLASSES, default_security_class
from service.core.windows import Window

# day -> (direction, TLS version) -> messages, and (direction, class) -> messages
DailyTls = Mapping[str, Mapping[tuple[str, str], int]]


def daily_tls(days: Iterable[str], packed_days: Iterable[Iterable[tuple[str, int]]]) -> DailyTls:
    """Pair the days with the script's per-day ``direction\\x1fversion[\\x1fclass...]`` sums:
    per (direction, version) and, apart, per (direction, transport security class)."""
    daily: dict[str, dict[tuple[str, str], int]] = {}
    for day, counts in zip(days, packed_days, strict=True):
        sums: dict[tuple[str, str], int] = {}
        for field, count in counts:
            direction, tls, *security = field.split(FIELD_SEP)
            sums[(direction, tls)] = sums.get((direction, tls), 0) + count
            klass = CLASS_PREFIX + (security[0] if security else default_security_class(tls))
            sums[(direction, klass)] = sums.get((direction, klass), 0) + count
        daily[day] = sums
    return daily


# Classes and versions share the sums of a day: a class is stored under this prefix.
CLASS_PREFIX = "class:"


def _by_class(sums: Mapping[tuple[str, str], int], direction: str) -> dict[str, int]:
    return {c: sums.get((direction, CLASS_PREFIX + c), 0) for c in SECURITY_CLASSES}


def _by_version(sums: Mapping[tuple[str, str], int], direction: str) -> dict[str, int]:
    return {v: sums.get((direction, v), 0) for v in TLS_VERSIONS}


def build_tls_report(
    daily: DailyTls,
    window: Window,
    directions: tuple[str, ...],
    generated_at: str,
    data_as_of: str | None,
) -> dict[str, Any]:
    totals = {d: dict.fromkeys(TLS_VERSIONS, 0) for d in directions}
    class_totals = {d: dict.fromkeys(SECURITY_CLASSES, 0) for d in directions}
    series = []
    for day in window.days:
        sums = daily.get(day, {})
        entry: dict[str, Any] = {"date": day, "directions": {}}
        for direction in directions:
            by_version = _by_version(sums, direction)
            for version, count in by_version.items():
                totals[direction][version] += count
            breakdown = tls_breakdown(by_version)
            by_class = _by_class(sums, direction)
            for klass, count in by_class.items():
                class_totals[direction][klass] += count
            entry["directions"][direction] = {"messages": breakdown["messages"],
                                              "tls": breakdown["tls"],
                                              "security": security_breakdown(by_class)}  # fmt: skip
        series.append(entry)
    return {
        "window": window.as_dict(),
        "directions": {
            d: {**tls_breakdown(totals[d]), "security": security_breakdown(class_totals[d])}
            for d in directions
        },
        "series": series,
        "generated_at": generated_at,
        "data_as_of": data_as_of,
    }


def directions_for(direction: str | None) -> tuple[str, ...]:
    return DIRECTIONS if direction is None else (direction,)
