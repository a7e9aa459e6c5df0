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
)
from service.core.transport_security import (
    AUTHENTICATED_CLASSES,
    SECURITY_CLASSES,
    default_security_class,
)

# Microsoft's column order, then TLS 1.3; SSL3 is listed only where it was seen.
REPORT_VERSIONS: tuple[str, ...] = ("none", "TLS1.0", "TLS1.1", "TLS1.2", "TLS1.3", "SSL3")
TYPE_FILTERS: tuple[str, ...] = (*CONNECTOR_TYPES, "internet")
SORT_COLUMNS: tuple[str, ...] = (
    "date", "direction", "name", "type", "forced_tls", "messages", *REPORT_VERSIONS,
)  # fmt: skip
# Transport security columns, after Microsoft's (docs/transit-security.md): the shares of
# delivered messages, and the count of blocked ones.
SECURITY_COLUMNS: dict[str, frozenset[str]] = {
    "authenticated_percent": AUTHENTICATED_CLASSES,
    "dane_percent": frozenset({"dane"}),
    "mta_sts_percent": frozenset({"mta-sts"}),
    "encrypted_only_percent": frozenset({"encrypted"}),
}
SORT_COLUMNS += (*SECURITY_COLUMNS, "blocked")
# ``security=``: rows with mail of any of these (classes of delivered mail, or blocked).
SECURITY_FILTERS: tuple[str, ...] = (*SECURITY_CLASSES, "blocked")
_CLASS_INDEX = {c: i for i, c in enumerate(SECURITY_CLASSES)}
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
    # Appended fields keep rows cached before them readable (absent: none counted).
    security: list[int] = msgspec.field(default_factory=list)  # by SECURITY_CLASSES
    blocked: int = 0  # messages blocked by a TLS policy (not in counts)

    @property
    def classes(self) -> list[int]:
        """Messages by SECURITY_CLASSES (rows without classes: what the versions say)."""
        if self.security:
            return self.security
        none = self.counts[_INDEX["none"]]
        return [0, 0, 0, sum(self.counts) - none, none]


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


# (direction, name) -> connector type named ("": none) -> blocked messages
Blocked = Mapping[tuple[str, str | None], Mapping[str, int]]


_TALLY = len(TLS_VERSIONS) + len(SECURITY_CLASSES)
# A counter field's segments from the version on -> (its version's, its class's position in a
# row's tally): a handful of distinct ones, so one dictionary lookup per field.
_POSITIONS: dict[str, tuple[int, int]] = {}


def _positions(rest: str) -> tuple[int, int]:
    tls, *security = rest.split(FIELD_SEP)
    klass = security[0] if security else default_security_class(tls)
    positions = _INDEX[tls], len(TLS_VERSIONS) + _CLASS_INDEX[klass]
    if len(_POSITIONS) < 4096:  # bounded: only canonical segments reach here, but be sure
        _POSITIONS[rest] = positions
    return positions


def build_rows(
    counts: Iterable[tuple[str, int]],
    definitions: Definitions,
    date: str | None = None,
    blocked: Blocked | None = None,
) -> list[ConnectorRow]:
    """One row per (direction, connector) in ``counts`` or ``blocked``, plus every defined
    connector.

    A defined connector's type is its definition's; an undefined one takes the type most of
    its messages were sent with (ties: alphabetical), so a connector is always one row.
    """
    # Per row: messages by TLS_VERSIONS, then by SECURITY_CLASSES, in one list.
    tallies: dict[tuple[str, str | None], list[int]] = {}
    types: dict[tuple[str, str | None], dict[str, int]] = {}
    for field, count in counts:
        direction, connector, sent_type, rest = field.split(FIELD_SEP, 3)
        key = (direction, connector or None)
        tally = tallies.get(key)
        if tally is None:
            tally = tallies[key] = [0] * _TALLY
        version, klass = _POSITIONS.get(rest) or _positions(rest)
        tally[version] += count
        tally[klass] += count
        if sent_type:
            votes = types.setdefault(key, {})
            votes[sent_type] = votes.get(sent_type, 0) + count
    blocked_counts: dict[tuple[str, str | None], int] = {}
    for key, by_type in (blocked or {}).items():
        blocked_counts[key] = sum(by_type.values())
        for sent_type, count in by_type.items():
            if sent_type:  # blocked messages name a type too: a connector always has one
                votes = types.setdefault(key, {})
                votes[sent_type] = votes.get(sent_type, 0) + count
    for key in (*definitions, *blocked_counts):
        tallies.setdefault(key, [0] * _TALLY)
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
        versions, classes = tally[: len(TLS_VERSIONS)], tally[len(TLS_VERSIONS) :]
        rows.append(
            ConnectorRow(date, direction, name, ctype, forced, definition is not None, versions,
                         classes, blocked_counts.get((direction, name), 0))
        )  # fmt: skip
    return rows


@dataclass(frozen=True)
class RowFilter:
    direction: str | None = None
    type: str | None = None
    name: str | None = None  # case-insensitive prefix
    forced_tls: bool | None = None
    security: frozenset[str] | None = None  # SECURITY_FILTERS: rows with mail of any of them

    def accepts(self, row: ConnectorRow) -> bool:
        if self.security is not None and not self._has_security(row):
            return False
        if self.direction is not None and row.direction != self.direction:
            return False
        if self.type is not None and (row.type or "internet") != self.type:
            return False
        if self.name is not None and (
            row.name is None or not row.name.casefold().startswith(self.name.casefold())
        ):
            return False
        return self.forced_tls is None or row.forced_tls == self.forced_tls

    def _has_security(self, row: ConnectorRow) -> bool:
        assert self.security is not None
        if "blocked" in self.security and row.blocked:
            return True
        return any(n and c in self.security for c, n in zip(SECURITY_CLASSES, row.classes,
                                                            strict=True))  # fmt: skip


def row_key(row: ConnectorRow) -> tuple[str, str, str]:
    """Unique within a report: (date, direction, name); the internet row's name sorts first."""
    return (row.date or "", row.direction, row.name or "")


_FIELD_COLUMNS = ("date", "direction", "name", "type", "forced_tls")


def _sort_value(column: str) -> Callable[[ConnectorRow], Any]:
    if column == "messages":
        return lambda row: sum(row.counts)
    if column == "blocked":
        return lambda row: row.blocked
    if column in SECURITY_COLUMNS:
        chosen = [c in SECURITY_COLUMNS[column] for c in SECURITY_CLASSES]
        return lambda row: _exact_share(row.classes, chosen)
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


def _exact_share(classes: list[int], chosen: list[bool]) -> float:
    total = sum(classes)
    return sum(n for n, c in zip(classes, chosen, strict=True) if c) / total if total else 0.0


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
    document.update(security_columns(row))
    return document


def security_columns(row: ConnectorRow) -> dict[str, Any]:
    """The transport security columns of a row: each share of its delivered messages (the
    authenticated share is the sum of the rounded dane, mta-sts and authenticated shares, so
    the numbers shown add up) and the blocked count."""
    columns = class_columns(row.classes)
    columns["blocked"] = row.blocked
    columns["security"] = columns.pop("security")  # after blocked, as before
    return columns


def class_columns(
    classes: list[int], columns: Mapping[str, frozenset[str]] = SECURITY_COLUMNS
) -> dict[str, Any]:
    """Each of ``columns``' shares of ``classes`` (messages by SECURITY_CLASSES: the sum of
    the rounded shares of its classes, so the numbers shown add up) and ``security``: each
    class's messages and percent."""
    percents = dict(zip(SECURITY_CLASSES, shares(classes), strict=True))
    shown: dict[str, Any] = {
        column: round(sum(percents[c] for c in chosen), 1) for column, chosen in columns.items()
    }
    shown["security"] = {c: {"messages": n, "percent": percents[c]}
                         for c, n in zip(SECURITY_CLASSES, classes, strict=True)}  # fmt: skip
    return shown


def exact_class_share(classes: list[int], chosen: frozenset[str]) -> float:
    """The exact share of ``chosen`` classes in ``classes`` (0.0 without messages): what a
    sort orders by, so equal rounded percents still order by their truth."""
    return _exact_share(classes, [c in chosen for c in SECURITY_CLASSES])


def is_direction(value: str) -> bool:
    return value in DIRECTIONS
