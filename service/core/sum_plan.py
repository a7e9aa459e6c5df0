"""How a window's daily counters are summed: which runs of days come from cached sums.

A long window costs one read per day and counter field (90 days x 500 connectors is some
115,000 fields), yet only its newest days still change. So a window is summed as:
- its newest ``RECENT_DAYS`` days (where mail is still arriving), read as they are;
- all its older days as one *run*, whose sum is cached. The run is for this window (and every
  other window with the same older days, e.g. of the same length on the same day), so when it
  has to be summed again it is summed from:
  - *blocks* of ``BLOCK_DAYS`` days at fixed boundaries (multiples of ``BLOCK_DAYS`` days since
    0001-01-01, not relative to the window), each cached too and shared by every window that
    covers it whole, whatever its length or the day it is asked on;
  - the days at its edges that no whole block covers, read as they are.
A cached sum is valid only while none of its days changed (see ``store.window_sums``), so a
fold into today costs nothing cached, and a fold into an older day costs one run and one block.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.core.windows import Window

BLOCK_DAYS = 8
RECENT_DAYS = 2
# How long a sum is kept at most; it never outlives its days' counters either. A block serves
# every window covering it for as long as its days are kept (the retention period, 90 days by
# default, plus one); the run of a window ending today serves only that day.
BLOCK_LIFE_SECONDS = 100 * 86400
RUN_LIFE_SECONDS = 86400


@dataclass(frozen=True)
class CachedRun:
    """Days ``first`` .. ``last`` (positions in the window) summed and cached for at most
    ``life_seconds``; when not cached, summed from ``parts``."""

    first: int
    last: int
    life_seconds: int
    parts: tuple[CachedRun | int, ...]  # an int: one day, read as it is


Part = CachedRun | int


def plan_window_sum(window: Window, recent_days: int = RECENT_DAYS) -> list[Part]:
    """The parts whose sums add up to the sum of every day of ``window``, each day once;
    its newest ``recent_days`` read as they are."""
    count = len(window.days)
    settled = count - recent_days  # days 0 .. settled - 1 are summed as one cached run
    if settled < 2:
        return list(range(count))
    recent: list[Part] = list(range(settled, count))
    parts: list[Part] = []
    position = 0
    for first in _block_starts(window, settled):
        parts += range(position, first)
        parts.append(CachedRun(first, first + BLOCK_DAYS - 1, BLOCK_LIFE_SECONDS,
                               tuple(range(first, first + BLOCK_DAYS))))  # fmt: skip
        position = first + BLOCK_DAYS
    parts += range(position, settled)
    if len(parts) == 1 and isinstance(parts[0], CachedRun):
        return [parts[0], *recent]  # the older days are exactly one block
    return [CachedRun(0, settled - 1, RUN_LIFE_SECONDS, tuple(parts)), *recent]


def _block_starts(window: Window, settled: int) -> list[int]:
    """Positions of the blocks wholly inside the window's first ``settled`` days."""
    first = -window.start.toordinal() % BLOCK_DAYS
    return list(range(first, settled - BLOCK_DAYS + 1, BLOCK_DAYS))
