"""The "Message protected in transit (by TLS)" flyout: per direction and TLS version over the
window, and the same per day for a chart."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from service.core.snapshot import tls_breakdown
from service.core.tls import TLS_VERSIONS
from service.core.traces import DIRECTIONS, FIELD_SEP
from service.core.windows import Window

# day -> (direction, TLS version) -> messages
DailyTls = Mapping[str, Mapping[tuple[str, str], int]]


def daily_tls(days: Iterable[str], packed_days: Iterable[Iterable[tuple[str, int]]]) -> DailyTls:
    """Pair the days with the script's per-day ``direction\\x1fversion`` sums."""
    daily: dict[str, dict[tuple[str, str], int]] = {}
    for day, counts in zip(days, packed_days, strict=True):
        sums: dict[tuple[str, str], int] = {}
        for field, count in counts:
            direction, tls = field.split(FIELD_SEP)
            sums[(direction, tls)] = sums.get((direction, tls), 0) + count
        daily[day] = sums
    return daily


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
    series = []
    for day in window.days:
        sums = daily.get(day, {})
        entry: dict[str, Any] = {"date": day, "directions": {}}
        for direction in directions:
            by_version = _by_version(sums, direction)
            for version, count in by_version.items():
                totals[direction][version] += count
            breakdown = tls_breakdown(by_version)
            entry["directions"][direction] = {"messages": breakdown["messages"],
                                              "tls": breakdown["tls"]}  # fmt: skip
        series.append(entry)
    return {
        "window": window.as_dict(),
        "directions": {d: tls_breakdown(totals[d]) for d in directions},
        "series": series,
        "generated_at": generated_at,
        "data_as_of": data_as_of,
    }


def directions_for(direction: str | None) -> tuple[str, ...]:
    return DIRECTIONS if direction is None else (direction,)
