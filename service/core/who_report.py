"""The per-domain and SMTP AUTH client reports: rows from summed counters, filters, sort, documents.

One code for both breakdowns (``core.who.KINDS``): a row is a name (a remote domain, a user) in
one direction with its messages per TLS version, the connectors its mail used and the remote
hosts (client IPs) it came from. Rows are compact while cached and pinned (``WhoRow``, a JSON
array); only the rows of the page being sent become documents with percentages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from service.core.connectors import (
    REPORT_VERSIONS,
    SECURITY_COLUMNS,
    class_columns,
    exact_class_share,
    tls_split,
)
from service.core.tls import TLS_VERSIONS
from service.core.traces import FIELD_SEP
from service.core.transport_security import AUTHENTICATED_CLASSES, SECURITY_CLASSES
from service.core.who import (
    AUTH_USERS,
    CONNECTOR_MARK,
    OTHER,
    SECURITY_MARK,
    TLS_MARK,
    UNKNOWN,
    WhoKind,
)

_INDEX = {v: i for i, v in enumerate(TLS_VERSIONS)}
SORT_COLUMNS: tuple[str, ...] = (
    "direction", "domain", "sender_address", "messages", *REPORT_VERSIONS,
)  # fmt: skip
DEFAULT_SORT = "-messages"
# Transport security columns (docs/domains.md): the connector report's, and the share of mail
# whose peer was not authenticated (encrypted only, or no TLS) that ``min_unauthenticated``
# filters on.
WHO_SECURITY_COLUMNS: dict[str, frozenset[str]] = {
    **SECURITY_COLUMNS,
    "unauthenticated_percent": frozenset(SECURITY_CLASSES) - AUTHENTICATED_CLASSES,
}
SORT_COLUMNS += tuple(WHO_SECURITY_COLUMNS)
_NONE_INDEX = TLS_VERSIONS.index("none")


class WhoRow(msgspec.Struct, array_like=True, frozen=True):
    """One row: a name in one direction. Cached and pinned as a JSON array in this order."""

    direction: str
    name: str  # as stored: a domain or user, UNKNOWN, or OTHER
    counts: list[int]  # messages by TLS_VERSIONS
    connectors: list[tuple[str, int]]  # connector ('' = none) and messages, most first
    extras: list[str]  # remote hosts / client IPs: filled for the rows of a page only
    # Appended, so rows cached before it stay readable. Messages of the classes counted by
    # their own fields (dane, mta-sts, authenticated, in that order); empty when none were.
    verified: list[int] = msgspec.field(default_factory=list)

    @property
    def classes(self) -> list[int]:
        """Messages by SECURITY_CLASSES: the verified ones as counted, the rest of the
        encrypted mail ``encrypted``, the mail without TLS ``none``."""
        none = self.counts[_NONE_INDEX]
        verified = self.verified or [0, 0, 0]
        return [*verified, sum(self.counts) - none - sum(verified), none]


class WhoRows(msgspec.Struct):
    """Every row of a report over a window: the cached view pages are cut from."""

    version: int
    data_as_of: str | None
    rows: list[WhoRow]


_ROWS_DECODER = msgspec.json.Decoder(WhoRows)
_ROW_DECODER = msgspec.json.Decoder(WhoRow)
_ENCODER = msgspec.json.Encoder()


def encode_rows(rows: WhoRows | WhoRow) -> bytes:
    return _ENCODER.encode(rows)


def decode_rows(body: bytes) -> WhoRows:
    return _ROWS_DECODER.decode(body)


def decode_row(body: bytes) -> WhoRow:
    return _ROW_DECODER.decode(body)


def build_rows(sums: Iterable[tuple[str, int]]) -> list[WhoRow]:
    """One row per (direction, name) of summed counter fields, sorted by (direction, name)."""
    tallies: dict[str, list[int]] = {}  # by "direction US name"
    connectors: dict[str, dict[str, int]] = {}
    verified: dict[str, list[int]] = {}
    width = len(TLS_VERSIONS)
    tls_tail, connector_tail = FIELD_SEP + TLS_MARK, FIELD_SEP + CONNECTOR_MARK
    security_tail = FIELD_SEP + SECURITY_MARK
    for counter, count in sums:
        head, value = counter.rsplit(FIELD_SEP, 1)
        if head.endswith(tls_tail):
            key = head[:-2]
            tally = tallies.get(key)
            if tally is None:
                tally = tallies[key] = [0] * width
            tally[_INDEX[value]] += count
        elif head.endswith(connector_tail):
            named = connectors.setdefault(head[:-2], {})
            named[value] = named.get(value, 0) + count
        elif head.endswith(security_tail):
            by_class = verified.get(head[:-2])
            if by_class is None:
                by_class = verified[head[:-2]] = [0, 0, 0]
            by_class[_VERIFIED_INDEX[value]] += count
    rows = []
    for key in sorted(tallies):
        tally = tallies[key]
        used = connectors.get(key)
        if used is None:
            uses = [("", sum(tally))]
        else:  # the messages no connector field names used none
            uses = [use for use in (*used.items(), ("", sum(tally) - sum(used.values())))
                    if use[1]]  # fmt: skip
            if len(uses) > 1:  # most rows have one connector or none: no sort to pay for
                uses.sort(key=_most_first)
        direction, name = key.split(FIELD_SEP)
        rows.append(WhoRow(direction, name, tally, uses, [], verified.get(key, [])))
    return rows


_VERIFIED_INDEX = {c: i for i, c in enumerate(SECURITY_CLASSES[:3])}  # dane, mta-sts, authenticated


def _most_first(item: tuple[str, int]) -> tuple[int, str]:
    """The sort key of a row's connectors: most messages first, then by name."""
    return -item[1], item[0]


def label(kind: WhoKind, name: str) -> str:
    """The name as the report shows it: the special rows by their labels."""
    if name == OTHER:
        return kind.other_label
    if name == UNKNOWN and kind.unknown_label is not None:
        return kind.unknown_label
    return name


def stored_name(kind: WhoKind, shown: str) -> str:
    """The stored name of a name as a URL spells it (the labels of the special rows too)."""
    if shown == kind.other_label:
        return OTHER
    if kind.unknown_label is not None and shown == kind.unknown_label:
        return UNKNOWN
    return shown.lower() if kind is not AUTH_USERS else shown


def user_domain(name: str) -> str | None:
    """The domain of an SMTP AUTH user that is an address (or a pseudonym keeping it)."""
    _, at, domain = name.rpartition("@")
    return domain.lower() if at and domain else None


@dataclass(frozen=True)
class WhoFilter:
    direction: str | None = None
    name: str | None = None  # case-insensitive prefix of the shown name
    min_none_percent: float | None = None
    min_tls10_percent: float | None = None
    min_unauthenticated_percent: float | None = None  # encrypted only or no TLS (docs/domains.md)

    def accepts(self, kind: WhoKind, row: WhoRow) -> bool:
        if self.direction is not None and row.direction != self.direction:
            return False
        if self.name is not None and not label(kind, row.name).casefold().startswith(
            self.name.casefold()
        ):
            return False
        total = sum(row.counts)
        for minimum, version in ((self.min_none_percent, "none"),
                                 (self.min_tls10_percent, "TLS1.0")):  # fmt: skip
            if minimum is not None and (
                not total or 100 * row.counts[_INDEX[version]] < minimum * total
            ):
                return False
        minimum = self.min_unauthenticated_percent
        if minimum is not None:
            unauthenticated = row.classes[-2:]  # encrypted, none
            return bool(total) and 100 * sum(unauthenticated) >= minimum * total
        return True


def _sort_value(kind: WhoKind, column: str) -> Callable[[WhoRow], Any]:
    if column == "messages":
        return lambda row: sum(row.counts)
    if column in _INDEX:
        index = _INDEX[column]
        # The exact share, not the rounded percent: equal percents still order by their truth.
        return lambda row: row.counts[index] / total if (total := sum(row.counts)) else 0.0
    if column in WHO_SECURITY_COLUMNS:
        chosen = WHO_SECURITY_COLUMNS[column]
        return lambda row: exact_class_share(row.classes, chosen)
    if column == "direction":
        return lambda row: row.direction
    if column == "domain" and kind is AUTH_USERS:
        return lambda row: user_domain(row.name) or ""
    if column in ("domain", "sender_address"):  # the name column of each report
        return lambda row: label(kind, row.name).casefold()
    raise KeyError(column)


def row_key(row: WhoRow) -> tuple[str, str]:
    return (row.direction, row.name)


def select_rows(
    kind: WhoKind, rows: Iterable[WhoRow], row_filter: WhoFilter, sort: str
) -> list[WhoRow]:
    """Filtered and sorted rows; ties in the sort column keep (direction, name) order."""
    chosen = sorted((r for r in rows if row_filter.accepts(kind, r)), key=row_key)
    chosen.sort(key=_sort_value(kind, sort.lstrip("-")), reverse=sort.startswith("-"))
    return chosen


def row_document(kind: WhoKind, row: WhoRow) -> dict[str, Any]:
    shown = label(kind, row.name)
    special = "other" if row.name == OTHER else "unknown" if row.name == UNKNOWN else None
    connectors = [{"name": name or None, "messages": n} for name, n in row.connectors]
    if kind is AUTH_USERS:
        document: dict[str, Any] = {
            "direction": row.direction, "sender_address": shown,
            "domain": None if special else user_domain(row.name), "row": special or "user",
        }  # fmt: skip
    else:
        document = {"direction": row.direction, "domain": shown, "row": special or "domain"}
    document.update(messages=sum(row.counts), tls=tls_split(row.counts), connectors=connectors)
    document.update(class_columns(row.classes, WHO_SECURITY_COLUMNS))
    document[kind.extras] = row.extras
    return document
