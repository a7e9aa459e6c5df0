"""Turning stream entries back into counter increments (the worker's arithmetic)."""

from __future__ import annotations

from dataclasses import dataclass, field

from service.core.traces import RECORD_SEP


@dataclass(frozen=True)
class EntryIncrements:
    """What one stream entry adds: messages per (day, counter field), and its newest trace."""

    entry_id: str
    counts: dict[tuple[str, str], int]
    newest_ms: int
    traces: int
    who: dict[str, int] = field(default_factory=dict)  # who key (traces.who_key) -> messages


def entry_increments(entry_id: str, fields: dict[bytes, bytes]) -> EntryIncrements:
    """Read one entry of the ingest script: ``n``, ``newest`` and ``counts``, one line per
    counting key (``day RS counter_field TAB messages``)."""
    counts = {}
    for line in fields[b"counts"].decode().split("\n"):
        key, amount = line.rsplit("\t", 1)
        day, field = key.split(RECORD_SEP, 1)
        counts[(day, field)] = int(amount)
    return EntryIncrements(entry_id, counts, int(fields[b"newest"]), int(fields[b"n"]),
                           who_counts(fields.get(b"who")))  # fmt: skip


def who_counts(packed: bytes | None) -> dict[str, int]:
    """The ``who`` field of an entry (``who_key TAB messages`` lines), absent in entries
    written before it existed."""
    if not packed:
        return {}
    counts = {}
    for line in packed.decode().split("\n"):
        key, amount = line.rsplit("\t", 1)
        counts[key] = int(amount)
    return counts
