"""The connector report's rows view as raw JSON: joined from per-day parts, cut without decoding.

A rows view of a 90-day report grouped by day holds some 45,000 rows. Built row by row, and
decoded row by row for every new first page, it cost most of a second. So:
- each day's rows are encoded once (``encode_day``) and kept while the day does not change
  (``store.day_rows``); the view is those parts joined (``join_rows_view``), the very bytes
  ``encode_rows`` writes for the same ``ConnectorRows``;
- the common queries (no filter; sorted by date, or by messages either way) need only the
  order of the rows and the messages of each, which the view carries beside the rows
  (``ConnectorRows.messages``): they are ordered as raw JSON (``select_raw``), and only the
  rows of the page being sent are decoded. Any other query decodes every row and orders them
  with ``select_rows``: the same order, by the same rule (a stable sort of rows that are in
  row-key order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter

import msgspec
import orjson

from service.core.connectors import (
    ConnectorRow,
    RowFilter,
    decode_rows,
    encode_rows,
    row_key,
    select_rows,
)

RawRow = bytes | msgspec.Raw  # one row's JSON text, as ``encode_rows`` writes it


class RawRows(msgspec.Struct):
    """A rows view (``ConnectorRows``) with each row left as its JSON text."""

    version: int
    data_as_of: str | None
    rows: list[msgspec.Raw]
    messages: list[int] | None = None


_RAW_DECODER = msgspec.json.Decoder(RawRows)
_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_INTS = msgspec.json.Decoder(list[int])
RawDay = tuple[list[msgspec.Raw], list[int]]  # one day's rows, each its JSON, and messages
_UNFILTERED = RowFilter()


def encode_day(rows: list[ConnectorRow]) -> tuple[bytes, bytes]:
    """One day's rows, in row-key order, as the JSON of the rows and of their messages, each
    without its brackets: the parts ``join_rows_view`` joins."""
    rows = sorted(rows, key=row_key)
    return msgspec.json.encode(rows)[1:-1], orjson.dumps([sum(r.counts) for r in rows])[1:-1]


def join_rows_view(
    version: int, data_as_of: str | None, rows: Sequence[bytes], messages: Sequence[bytes]
) -> bytes:
    """The rows view (``ConnectorRows``) of the days whose parts are given, in order."""
    head = b'{"version":%d,"data_as_of":%s,"rows":[' % (version, orjson.dumps(data_as_of))
    return b"".join((head, b",".join(p for p in rows if p), b'],"messages":[',
                     b",".join(p for p in messages if p), b"]}"))  # fmt: skip


def split_day(rows: bytes, messages: bytes) -> RawDay:
    """One day's parts (``encode_day``) as its rows' JSON texts and their messages."""
    return _RAW_LIST.decode(b"[%s]" % rows), _INTS.decode(b"[%s]" % messages)


def raw_view_of_days(version: int, data_as_of: str | None, days: Sequence[RawDay]) -> RawRows:
    """What ``select_raw`` reads from the rows view ``join_rows_view`` makes of the same days,
    made from the days as split already."""
    rows = list(chain.from_iterable(day[0] for day in days))
    messages = list(chain.from_iterable(day[1] for day in days))
    return RawRows(version, data_as_of, rows, messages)


@dataclass(frozen=True)
class Selection:
    """The rows of one query, in its order, each as its JSON text."""

    data_as_of: str | None
    rows: list[RawRow]


def select_raw(
    body: bytes, row_filter: RowFilter, sort: str, split: RawRows | None = None
) -> Selection:
    """The rows of the rows view ``body`` that ``row_filter`` accepts, ordered by ``sort`` as
    ``select_rows`` orders them (ties by row key, ascending). ``split``: ``body`` as
    ``raw_view_of_days`` gives it, when at hand (not decoded again)."""
    raw = split if split is not None else _RAW_DECODER.decode(body)
    column, descending = sort.lstrip("-"), sort.startswith("-")
    messages = raw.messages if row_filter == _UNFILTERED else None
    if messages is not None and len(messages) == len(raw.rows):
        if column == "date" and not descending:
            # Rows are stored in row-key order, which starts with the date.
            return Selection(raw.data_as_of, list(raw.rows))
        if column == "messages":
            # Stable also when reversed: equal messages keep their row-key order.
            order = sorted(range(len(raw.rows)), key=messages.__getitem__, reverse=descending)
            ordered: list[RawRow] = (list(itemgetter(*order)(raw.rows)) if len(order) > 1
                                     else list(raw.rows))  # fmt: skip
            return Selection(raw.data_as_of, ordered)
    document = decode_rows(body)
    chosen = select_rows(document.rows, row_filter, sort)
    return Selection(document.data_as_of, [encode_rows(row) for row in chosen])
