"""Percentages with one decimal that sum to exactly 100.0 (largest-remainder rounding)."""

from __future__ import annotations

from collections.abc import Sequence


def shares(counts: Sequence[int]) -> list[float]:
    """One-decimal percentages of ``counts``; they sum to exactly 100.0, or are all 0.0.

    Each share is first floored to a tenth; the tenths still missing go, one each, to the
    counts with the largest remainders (earlier entries win ties), so no share is ever off by
    more than 0.1 from its exact value.
    """
    total = sum(counts)
    if total == 0:
        return [0.0] * len(counts)
    tenths = [count * 1000 // total for count in counts]
    remainders = [count * 1000 % total for count in counts]
    missing = 1000 - sum(tenths)
    by_remainder = sorted(range(len(counts)), key=lambda i: -remainders[i])
    for i in by_remainder[:missing]:
        tenths[i] += 1
    return [t / 10 for t in tenths]
