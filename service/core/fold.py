"""Turning stream entries back into counter increments (the worker's arithmetic)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from service.core.traces import RECORD_SEP


@dataclass(frozen=True)
class EntryIncrements:
    """What one stream entry adds: messages per (day, counter field), and its newest trace."""

    entry_id: str
    counts: dict[tuple[str, str], int]
    newest_ms: int
    traces: int


def entry_increments(entry_id: str, payload: bytes) -> EntryIncrements:
    """Count the records of one entry (newline-separated, see AcceptedTrace.stream_record)."""
    counts: Counter[tuple[str, str]] = Counter()
    newest = 0
    records = payload.split(b"\n")
    sep = RECORD_SEP.encode()
    for record in records:
        day, field, epoch_ms, _ = record.split(sep, 3)
        counts[(day.decode(), field.decode())] += 1
        ms = int(epoch_ms)
        if ms > newest:
            newest = ms
    return EntryIncrements(entry_id, dict(counts), newest, len(records))
