"""Turning stream entries back into counter increments (the worker's arithmetic)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from service.core.traces import RECORD_SEP

_SEP = RECORD_SEP.encode()
_FIELD_START = 25  # 13-digit epoch, separator, 10-character day, separator


@dataclass(frozen=True)
class EntryIncrements:
    """What one stream entry adds: messages per (day, counter field), and its newest trace."""

    entry_id: str
    counts: dict[tuple[str, str], int]
    newest_ms: int
    traces: int


def entry_increments(entry_id: str, payload: bytes) -> EntryIncrements:
    """Count the records of one entry (newline-separated, see AcceptedTrace.stream_record)."""
    records = payload.split(b"\n")
    find = bytes.find
    by_key = Counter(r[14 : find(r, _SEP, _FIELD_START)] for r in records)
    counts = {}
    for key, amount in by_key.items():
        day, field = key.decode().split(RECORD_SEP, 1)
        counts[(day, field)] = amount
    newest = int(max(r[:13] for r in records))
    return EntryIncrements(entry_id, counts, newest, len(records))
