"""The connector report: one row per connector (or per connector per day) with its TLS split.

Rows are built from summed daily counters and the tenant's connector definitions. A row is
compact while it is stored and sorted (``Row``); only the rows of the page being sent become
documents with percentages.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from service.core.percent import shares
from service.core.text import TextError, checked_name
from service.core.tls import TLS_VERSIONS
from service.core.traces import (
    CONNECTOR_TYPES,
    DIRECTIONS,
    FIELD_SEP,
    MAX_CONNECTOR,
    split_counter_field,
)

# Microsoft's column order, then TLS 1.3; SSL3 is listed only where it was seen.
REPORT_VERSIONS: tuple[str, ...] = ("none", "TLS1.0", "TLS1.1", "TLS1.2", "TLS1.3", "SSL3")
TYPE_FILTERS: tuple[str, ...] = (*CONNECTOR_TYPES, "internet")
SORT_COLUMNS: tuple[str, ...] = (
    "date", "direction", "name", "type", "forced_tls", "messages", *REPORT_VERSIONS,
)  # fmt: skip
GROUPINGS = ("connector", "day")
INTERNET = "-"  # the path segment naming mail to or from the internet without a connector
_INDEX = {v: i for i, v in enumerate(TLS_VERSIONS)}


@dataclass(frozen=True)
class ConnectorDefinition:
    type: str
    forced_tls: bool = False
    description: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "forced_tls": self.forced_tls, "description": self.description}


Definitions = Mapping[tuple[str, str], ConnectorDefinition]  # (direction, name) -> definition

# [date | None, direction, name | None, type | None, forced_tls, defined, counts by TLS_VERSIONS]
Row = list[Any]


def checked_definition_name(name: str) -> str:
    """The name a definition is stored under: the trace contract's connector name (the text
    rule, NFC, 1 to 128 characters), so that traces and definitions meet on one row.
    TextError says what is wrong."""
    if name == INTERNET:
        raise TextError("'-' is mail without a connector; it cannot be defined")
    return checked_name(name, MAX_CONNECTOR)


def lookup_name(name: str) -> str:
    """The form a name is stored in (NFC), to find it whichever form a URL spells."""
    return name if name.isascii() else unicodedata.normalize("NFC", name)


def definition_field(direction: str, name: str) -> str:
    return f"{direction}{FIELD_SEP}{name}"


def parse_definitions(flat: Mapping[str, Mapping[str, Any]]) -> dict[tuple[str, str], Any]:
    """Stored definitions (field -> decoded JSON) as (direction, name) -> ConnectorDefinition."""
    parsed = {}
    for field, doc in flat.items():
        direction, name = field.split(FIELD_SEP, 1)
        parsed[(direction, name)] = ConnectorDefinition(
            doc["type"], bool(doc.get("forced_tls")), doc.get("description")
        )
    return parsed


def unpack(packed: str) -> Iterator[tuple[str, int]]:
    """Counter fields and counts from the packed form the report script returns."""
    if not packed:
        return
    for line in packed.split("\n"):
        field, count = line.split("\t")
        yield field, int(count)


def build_rows(
    counts: Iterable[tuple[str, int]], definitions: Definitions, date: str | None = None
) -> list[Row]:
    """One row per (direction, connector) in ``counts``, plus every defined connector.

    A defined connector's type is its definition's; an undefined one takes the type most of
    its messages were sent with (ties: alphabetical), so a connector is always one row.
    """
    tallies: dict[tuple[str, str | None], list[int]] = {}
    types: dict[tuple[str, str | None], dict[str, int]] = {}
    for field, count in counts:
        direction, name, sent_type, tls = split_counter_field(field)
        key = (direction, name)
        tally = tallies.get(key)
        if tally is None:
            tally = tallies[key] = [0] * len(TLS_VERSIONS)
        tally[_INDEX[tls]] += count
        if sent_type is not None:
            votes = types.setdefault(key, {})
            votes[sent_type] = votes.get(sent_type, 0) + count
    for key in definitions:
        tallies.setdefault(key, [0] * len(TLS_VERSIONS))
    rows = []
    for (direction, name), tally in tallies.items():
        definition = definitions.get((direction, name)) if name is not None else None
        ctype: str | None
        if definition is not None:
            ctype, forced = definition.type, definition.forced_tls
        else:
            votes = types.get((direction, name), {})
            ctype = min(votes, key=lambda t: (-votes[t], t)) if votes else None
            forced = False
        rows.append([date, direction, name, ctype, forced, definition is not None, tally])
    return rows


@dataclass(frozen=True)
class RowFilter:
    direction: str | None = None
    type: str | None = None
    name: str | None = None  # case-insensitive prefix
    forced_tls: bool | None = None

    def accepts(self, row: Row) -> bool:
        if self.direction is not None and row[1] != self.direction:
            return False
        if self.type is not None and (row[3] or "internet") != self.type:
            return False
        if self.name is not None and (
            row[2] is None or not row[2].casefold().startswith(self.name.casefold())
        ):
            return False
        return self.forced_tls is None or row[4] == self.forced_tls


def row_key(row: Row) -> tuple[str, str, str]:
    """Unique within a report: (date, direction, name); the internet row's name sorts first."""
    return (row[0] or "", row[1], row[2] or "")


def _sort_value(column: str) -> Any:
    if column == "messages":
        return lambda row: sum(row[6])
    if column in _INDEX:
        index = _INDEX[column]
        # The exact share, not the rounded percent: equal percents still order by their truth.
        return lambda row: row[6][index] / total if (total := sum(row[6])) else 0.0
    position = {"date": 0, "direction": 1, "name": 2, "type": 3, "forced_tls": 4}[column]
    return lambda row: row[position] if row[position] is not None else ""


def select_rows(rows: Iterable[Row], row_filter: RowFilter, sort: str) -> list[Row]:
    """Filtered and sorted rows. ``sort`` is a column, ``-column`` for descending; ties are
    broken by the row key, ascending, so the order is total and the same on every call."""
    chosen = sorted((r for r in rows if row_filter.accepts(r)), key=row_key)
    # Stable, also when reversed: rows equal in the sort column keep their row-key order.
    chosen.sort(key=_sort_value(sort.lstrip("-")), reverse=sort.startswith("-"))
    return chosen


def default_sort(group_by: str) -> str:
    return "date" if group_by == "day" else "direction"


def tls_split(counts: list[int]) -> dict[str, dict[str, Any]]:
    """messages and percent (summing to 100.0) per version; SSL3 only when it was seen."""
    ordered = [counts[_INDEX[v]] for v in REPORT_VERSIONS]
    percents = shares(ordered)
    return {
        version: {"messages": count, "percent": percent}
        for version, count, percent in zip(REPORT_VERSIONS, ordered, percents, strict=True)
        if version != "SSL3" or count
    }


def row_document(row: Row) -> dict[str, Any]:
    date, direction, name, ctype, forced, defined, counts = row
    document: dict[str, Any] = {"date": date} if date is not None else {}
    document.update(
        direction=direction, name=name, type=ctype, forced_tls=forced, defined=defined,
        messages=sum(counts), tls=tls_split(counts),
    )  # fmt: skip
    return document


def is_direction(value: str) -> bool:
    return value in DIRECTIONS
