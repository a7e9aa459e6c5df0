"""The mail-flow widget: per direction, messages and their split by TLS version."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from service.core.percent import shares
from service.core.tls import TLS_VERSIONS
from service.core.traces import DIRECTIONS, split_counter_field, split_security_field
from service.core.transport_security import AUTHENTICATED_CLASSES, SECURITY_CLASSES
from service.core.windows import Window

DayCounters = Mapping[str, Mapping[str, int]]  # day -> counter field -> messages


def tls_totals(counters: DayCounters, days: Iterable[str]) -> dict[str, dict[str, int]]:
    """direction -> TLS version -> messages over ``days``; every version present, zeros included."""
    totals = {d: dict.fromkeys(TLS_VERSIONS, 0) for d in DIRECTIONS}
    for day in days:
        for field, count in counters.get(day, {}).items():
            direction, _, _, tls = split_counter_field(field)
            totals[direction][tls] += count
    return totals


def security_totals(counters: DayCounters, days: Iterable[str]) -> dict[str, dict[str, int]]:
    """direction -> transport security class -> messages over ``days``; every class present."""
    totals = {d: dict.fromkeys(SECURITY_CLASSES, 0) for d in DIRECTIONS}
    for day in days:
        for field, count in counters.get(day, {}).items():
            direction, _, _, _, klass, _ = split_security_field(field)
            totals[direction][klass] += count
    return totals


def security_breakdown(by_class: Mapping[str, int]) -> dict[str, Any]:
    """The authenticated share and per-class count and percent (summing to 100.0)."""
    counts = [by_class.get(c, 0) for c in SECURITY_CLASSES]
    percents = shares(counts)
    authenticated = [p for c, p in zip(SECURITY_CLASSES, percents, strict=True)
                     if c in AUTHENTICATED_CLASSES]  # fmt: skip
    return {
        "authenticated_messages": sum(by_class.get(c, 0) for c in AUTHENTICATED_CLASSES),
        # The sum of the rounded class shares, so the numbers shown add up.
        "authenticated_percent": round(sum(authenticated), 1),
        "classes": {
            c: {"messages": n, "percent": p}
            for c, n, p in zip(SECURITY_CLASSES, counts, percents, strict=True)
        },
    }


def tls_breakdown(by_version: Mapping[str, int]) -> dict[str, Any]:
    """messages, encrypted share and per-version count and percent (summing to 100.0)."""
    counts = [by_version.get(v, 0) for v in TLS_VERSIONS]
    percents = shares(counts)
    messages = sum(counts)
    none_percent = percents[TLS_VERSIONS.index("none")]
    return {
        "messages": messages,
        "encrypted_messages": messages - by_version.get("none", 0),
        # The complement of the rounded "none" share, so the widget's two numbers add up.
        "encrypted_percent": round(100.0 - none_percent, 1) if messages else 0.0,
        "tls": {
            v: {"messages": c, "percent": p}
            for v, c, p in zip(TLS_VERSIONS, counts, percents, strict=True)
        },
    }


def build_snapshot(
    counters: DayCounters,
    window: Window,
    generated_at: str,
    data_as_of: str | None,
    active_insights: int,
) -> dict[str, Any]:
    totals = tls_totals(counters, window.days)
    classes = security_totals(counters, window.days)
    return {
        "window": window.as_dict(),
        "directions": {
            d: {**tls_breakdown(totals[d]), "security": security_breakdown(classes[d])}
            for d in DIRECTIONS
        },
        "active_insights": active_insights,
        "generated_at": generated_at,
        "data_as_of": data_as_of,
    }
