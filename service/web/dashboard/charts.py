"""The geometry of the dashboard's charts, drawn by the server as inline SVG.

Numbers in, rectangles out: the templates turn these into ``<rect>`` elements whose class
names the TLS version (the stylesheet colours them, with a colour-blind-safe palette), and
every chart also gets a table of the same numbers. No chart library, nothing run in the browser.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The order of the widget's bar and the charts' stacks: best first, as Microsoft's page does.
VERSIONS: tuple[str, ...] = ("TLS1.3", "TLS1.2", "TLS1.1", "TLS1.0", "SSL3", "none")
LABELS = {"TLS1.3": "TLS 1.3", "TLS1.2": "TLS 1.2", "TLS1.1": "TLS 1.1", "TLS1.0": "TLS 1.0",
          "SSL3": "SSL 3", "none": "No TLS"}  # fmt: skip

WIDTH = 600.0
HEIGHT = 200.0
GUTTER = 40.0  # left margin for the axis labels


def css_class(version: str) -> str:
    """``tls-1-3``, ``tls-none``: a class name a stylesheet can use."""
    return "tls-" + version.lower().replace("tls", "").replace(".", "-").strip("-")


@dataclass(frozen=True)
class Segment:
    version: str
    label: str
    css: str
    messages: int
    percent: float
    x: float
    width: float


def split_bar(tls: Mapping[str, Mapping[str, Any]]) -> list[Segment]:
    """One horizontal bar 0..100 split by TLS version (versions without messages take no
    room but stay in the legend)."""
    segments, x = [], 0.0
    total = sum(int(tls.get(v, {}).get("messages", 0)) for v in VERSIONS)
    for version in VERSIONS:
        share = tls.get(version)
        if share is None:
            continue
        messages = int(share["messages"])
        width = 100.0 * messages / total if total else 0.0
        segments.append(Segment(version, LABELS[version], css_class(version), messages,
                                float(share["percent"]), round(x, 2), round(width, 2)))  # fmt: skip
        x += width
    return segments


@dataclass(frozen=True)
class Block:
    version: str
    label: str
    css: str
    messages: int
    y: float
    height: float


@dataclass(frozen=True)
class Column:
    date: str
    messages: int
    x: float
    width: float
    blocks: list[Block]


@dataclass(frozen=True)
class StackedChart:
    columns: list[Column]
    paths: list[tuple[str, str]]  # (css, SVG path of every block of that class): small pages
    maximum: int
    ticks: list[tuple[float, int]]  # (y, value) of the axis labels
    versions: list[tuple[str, str, str]]  # (version, label, css) in the legend
    width: float = WIDTH
    height: float = HEIGHT
    gutter: float = GUTTER


def _nice_maximum(value: int) -> int:
    if value <= 0:
        return 1
    step = 1
    while step * 10 < value:
        step *= 10
    for factor in (1, 2, 5, 10):
        if step * factor >= value:
            return step * factor
    return step * 10


def stacked(days: Sequence[tuple[str, Mapping[str, int]]], by_version: bool = True) -> StackedChart:
    """Daily columns; each stacked by TLS version, or one block of the day's volume."""
    if by_version:
        return stacked_by(days, VERSIONS, LABELS, css_class)
    totals = [(day, {"all": sum(counts.values())}) for day, counts in days]
    chart = stacked_by(totals, ("all",), {"all": "Messages"}, lambda _: "volume")
    return StackedChart(chart.columns, chart.paths, chart.maximum, chart.ticks, [])


def stacked_by(
    days: Sequence[tuple[str, Mapping[str, int]]],
    keys: Sequence[str],
    labels: Mapping[str, str],
    css: Callable[[str], str],
) -> StackedChart:
    """Daily columns, each stacked by ``keys`` in that order (the first at the bottom): TLS
    versions, or transport security classes."""
    totals = [sum(counts.get(k, 0) for k in keys) for _, counts in days]
    maximum = _nice_maximum(max(totals, default=0))
    slot = (WIDTH - GUTTER) / max(1, len(days))
    columns = []
    for index, ((day, counts), total) in enumerate(zip(days, totals, strict=True)):
        blocks, bottom = [], HEIGHT
        for key in keys:
            messages = counts.get(key, 0)
            if not messages:
                continue
            height = HEIGHT * messages / maximum
            bottom -= height
            blocks.append(Block(key, labels[key], css(key), messages, round(bottom, 1),
                                round(height, 1)))  # fmt: skip
        columns.append(Column(day, total, round(GUTTER + index * slot + slot * 0.15, 1),
                              round(slot * 0.7, 1), blocks))  # fmt: skip
    ticks = [(round(HEIGHT - HEIGHT * f, 3), round(maximum * f)) for f in (0, 0.5, 1)]
    seen = [k for k in keys if any(counts.get(k) for _, counts in days)]
    return StackedChart(columns, _paths(columns), maximum, ticks,
                        [(k, labels[k], css(k)) for k in seen])  # fmt: skip


def _paths(columns: list[Column]) -> list[tuple[str, str]]:
    """One path per class instead of one rect per block: a 90-day chart of six versions is
    540 blocks, and a path segment weighs a third of a rect element."""
    parts: dict[str, list[str]] = {}
    for column in columns:
        for block in column.blocks:
            parts.setdefault(block.css, []).append(
                f"M{column.x:g} {block.y:g}h{column.width:g}v{block.height:g}h-{column.width:g}z"
            )
    return [(css, "".join(segments)) for css, segments in parts.items()]


def version_counts(tls: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """``{"TLS1.3": {"messages": 3, ...}}`` -> ``{"TLS1.3": 3}``."""
    return {version: int(share["messages"]) for version, share in tls.items()}


# Transport security classes (docs/transit-security.md), best first as the versions are.
SECURITY_LABELS = {"dane": "DANE", "mta-sts": "MTA-STS", "authenticated": "Other verified",
                   "encrypted": "Encrypted only", "none": "No TLS"}  # fmt: skip


def security_css(klass: str) -> str:
    """``sec-dane``, ``sec-mta-sts``: the stylesheet's colour of a transport security class."""
    return "sec-" + klass
