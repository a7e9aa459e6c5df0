"""The connector report: one row per connector (or per connector per day) with its TLS split.

Rows are built from summed daily counters and the tenant's connector definitions. A row is
compact while it is stored and sorted (``ConnectorRow``, a JSON array); only the rows of the
page being sent become documents with percentages.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

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


class ConnectorRow(msgspec.Struct, array_like=True, frozen=True):
    """One row of the connector report. Cached and pinned as a JSON array in this field order
    (``array_like``): the compact form the report's pages are cut from."""

    date: str | None  # None unless the report is grouped by day
    direction: str
    name: str | None  # None: mail without a connector (the internet row)
    type: str | None  # None: the internet row, or a connector no message named a type for
    forced_tls: bool
    defined: bool
    counts: list[int]  # messages by TLS_VERSIONS


class ConnectorRows(msgspec.Struct):
    """Every row of the connector report over a window: the cached view pages are cut from."""

    version: int  # the data version the rows were built from
    data_as_of: str | None
    rows: list[ConnectorRow]
    # Each row's messages, in row order: pages sorted by messages are ordered without decoding
    # every row (``core.rows_view``). None in a view built before this field existed.
    messages: list[int] | None = None


_ROWS_DECODER = msgspec.json.Decoder(ConnectorRows)
_ROW_DECODER = msgspec.json.Decoder(ConnectorRow)
_ENCODER = msgspec.json.Encoder()


def encode_rows(rows: ConnectorRows | ConnectorRow) -> bytes:
    """The JSON of the rows view or of one row: compact, the same bytes orjson writes."""
    return _ENCODER.encode(rows)


def decode_rows(body: bytes) -> ConnectorRows:
    return _ROWS_DECODER.decode(body)


def decode_row(body: bytes) -> ConnectorRow:
    return _ROW_DECODER.decode(body)


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
) -> list[ConnectorRow]:
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
        rows.append(
            ConnectorRow(date, direction, name, ctype, forced, definition is not None, tally)
        )
    return rows


@dataclass(frozen=True)
class RowFilter:
    direction: str | None = None
    type: str | None = None
    name: str | None = None  # case-insensitive prefix
    forced_tls: bool | None = None

    def accepts(self, row: ConnectorRow) -> bool:
        if self.direction is not None and row.direction != self.direction:
            return False
        if self.type is not None and (row.type or "internet") != self.type:
            return False
        if self.name is not None and (
            row.name is None or not row.name.casefold().startswith(self.name.casefold())
        ):
            return False
        return self.forced_tls is None or row.forced_tls == self.forced_tls


def row_key(row: ConnectorRow) -> tuple[str, str, str]:
    """Unique within a report: (date, direction, name); the internet row's name sorts first."""
    return (row.date or "", row.direction, row.name or "")


_FIELD_COLUMNS = ("date", "direction", "name", "type", "forced_tls")


def _sort_value(column: str) -> Callable[[ConnectorRow], Any]:
    if column == "messages":
        return lambda row: sum(row.counts)
    if column in _INDEX:
        index = _INDEX[column]
        # The exact share, not the rounded percent: equal percents still order by their truth.
        return lambda row: row.counts[index] / total if (total := sum(row.counts)) else 0.0
    if column not in _FIELD_COLUMNS:
        raise KeyError(column)
    return lambda row: value if (value := getattr(row, column)) is not None else ""


def select_rows(
    rows: Iterable[ConnectorRow], row_filter: RowFilter, sort: str
) -> list[ConnectorRow]:
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


def row_document(row: ConnectorRow) -> dict[str, Any]:
    document: dict[str, Any] = {"date": row.date} if row.date is not None else {}
    document.update(
        direction=row.direction, name=row.name, type=row.type, forced_tls=row.forced_tls,
        defined=row.defined, messages=sum(row.counts), tls=tls_split(row.counts),
    )  # fmt: skip
    return document


def is_direction(value: str) -> bool:
    return value in DIRECTIONS
