"""Traces that are already records: NDJSON, a JSON document, or CSV with trace field headers.

These inputs come from other tools (exports, scripts), so records pass through mostly as they
are and the API validates them; this module only does what the API cannot: turn CSV cells into
types, drop empty optional fields, strip control characters, and apply the connector mapping
to records that name no connector.
"""

from __future__ import annotations

import csv
from typing import Any

import orjson

from service.ingest.connector_map import ConnectorMap, Peer
from service.ingest.traces import ReadyQueue, Trace, clean

_INT_FIELDS = ("size_bytes",)
# Flags that are true or absent (tls_downgraded): a false cell says the same as an empty one.
_FLAG_FIELDS = ("tls_downgraded",)
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0", ""})
_KEEP_EMPTY = ("connector", "tls_version")  # explicit null is meaningful for these two


class _RecordParser(ReadyQueue):
    """Shared counting and clean-up; subclasses turn lines into records."""

    def __init__(self, connectors: ConnectorMap | None = None) -> None:
        self.connectors = connectors
        self.lines = 0
        self.used = 0
        self.kinds: dict[str, int] = {}
        self.evicted = 0
        self.ready: list[Trace] = []

    def _accept(self, record: object) -> bool:
        if not isinstance(record, dict):
            self._skip("not_an_object")
            return False
        trace: Trace = {}
        for key, value in record.items():
            if isinstance(value, str):
                value = clean(value)
            if (value is None or value == "") and key not in _KEEP_EMPTY:
                continue  # the API wants optional fields absent, not null
            trace[str(key)] = value
        if self.connectors is not None and not trace.get("connector"):
            found = self.connectors.lookup(
                Peer(
                    str(trace.get("direction", "")),
                    ip=_str(trace.get("remote_ip")),
                    host=_str(trace.get("remote_host")),
                    sender_domain=_str(trace.get("sender_domain")),
                    recipient_domain=_str(trace.get("recipient_domain")),
                )
            )
            if found is not None:
                trace["connector"], trace["connector_type"] = found
        self.ready.append(trace)
        return True


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class NdjsonParser(_RecordParser):
    """One JSON object per line; blank lines are allowed."""

    def feed(self, line: str) -> None:
        self.lines += 1
        if not line.strip():
            self._skip("blank")
            return
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            self._skip("bad_json")
            return
        if self._accept(record):
            self.used += 1


class JsonParser(_RecordParser):
    """A JSON array of traces or `{"traces": [...]}`, as the API takes; parsed at the end."""

    def __init__(self, connectors: ConnectorMap | None = None) -> None:
        super().__init__(connectors)
        self._parts: list[str] = []

    def feed(self, line: str) -> None:
        self.lines += 1
        self._parts.append(line)

    def flush(self) -> list[Trace]:
        text, self._parts = "".join(self._parts), []
        if not text.strip():
            return self.take()
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError:
            self._skip("bad_json", self.lines)
            return self.take()
        if isinstance(doc, dict) and isinstance(doc.get("traces"), list):
            doc = doc["traces"]
        if not isinstance(doc, list):
            self._skip("not_an_array", self.lines)
            return self.take()
        accepted = sum(1 for record in doc if self._accept(record))
        self.used = self.lines if accepted else 0
        return self.take()


class CsvParser(_RecordParser):
    """CSV whose header row names trace fields; empty cells are omitted (but a blocked row's
    `tls_version` is null), `size_bytes` is an int, `tls_downgraded` a flag (`true` or
    omitted); other cells are the API's to judge."""

    def __init__(self, connectors: ConnectorMap | None = None) -> None:
        super().__init__(connectors)
        self._header: list[str] | None = None
        self._buffer = ""
        self._buffered_lines = 0

    def feed(self, line: str) -> None:
        self.lines += 1
        # A quoted cell may span lines: wait until the quotes balance before parsing.
        self._buffer += line
        self._buffered_lines += 1
        if self._buffer.count('"') % 2:
            return
        text, self._buffer = self._buffer, ""
        n, self._buffered_lines = self._buffered_lines, 0
        if not text.strip():
            self._skip("blank", n)
            return
        row = next(csv.reader([text]))
        if self._header is None:
            self._header = [h.strip().lstrip("\ufeff") for h in row]
            self.used += n
            return
        if len(row) != len(self._header):
            self._skip("bad_csv_row", n)
            return
        record: dict[str, Any] = {}
        for key, cell in zip(self._header, row, strict=True):
            if key in _INT_FIELDS and cell.strip().isdigit():
                record[key] = int(cell)
            elif key in _FLAG_FIELDS and cell.strip().lower() in _TRUE | _FALSE:
                if cell.strip().lower() in _TRUE:
                    record[key] = True
            elif key in _KEEP_EMPTY and cell == "":
                continue  # unknown: omitted (the API then refuses a missing tls_version)
            else:
                record[key] = cell
        if record.get("outcome") == "blocked" and "tls_version" not in record:
            # A blocked message had no TLS session, and the API requires its tls_version to be
            # null: the empty cell (CSV's only null) means that here, not "unknown".
            record["tls_version"] = None
        if self._accept(record):
            self.used += n

    def flush(self) -> list[Trace]:
        if self._buffer:
            self._skip("bad_csv_row", self._buffered_lines)  # an unterminated quote
            self._buffer, self._buffered_lines = "", 0
        return self.take()
