"""Reading an ingest body: size limits, gzip, JSON array / object / NDJSON, repeated fields.

Hostile bodies end as a 4xx before or while parsing, never as a 500: the byte limit applies
before reading and again after inflating (a gzip bomb stops at the limit), orjson refuses
nesting deeper than 1024, NaN / Infinity and invalid UTF-8 (400), and a record naming a field
twice is rejected by name instead of silently keeping the last value.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson
from flask import Request

from service.core.traces import KNOWN_FIELDS, TraceError
from service.errors import Problem

JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonlines")


def read_body(request: Request, max_bytes: int) -> bytes:
    """The body, inflated when gzip'd; 413 past ``max_bytes`` either way, before parsing."""
    length = request.content_length
    if length is not None and length > max_bytes:
        raise Problem(413, f"body of {length} bytes exceeds the limit of {max_bytes} bytes")
    raw = request.stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise Problem(413, f"body exceeds the limit of {max_bytes} bytes")
    charset = request.mimetype_params.get("charset", "utf-8").strip().lower()
    if charset not in ("utf-8", "utf8"):
        raise Problem(415, f"charset {charset!r} is not supported; send UTF-8",
                      slug="unsupported-charset")  # fmt: skip
    encoding = (request.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding == "gzip":
        return _inflate(raw, max_bytes)
    if encoding != "identity":
        raise Problem(415, f"Content-Encoding {encoding!r} is not supported; use gzip",
                      slug="unsupported-encoding")  # fmt: skip
    return raw


def _inflate(raw: bytes, max_bytes: int) -> bytes:
    # Inflate at most max_bytes + 1: a gzip bomb stops here, not in memory.
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(raw, max_bytes + 1)
    except zlib.error as error:
        raise Problem(400, f"gzip body does not inflate: {error}", slug="bad-encoding") from None
    if len(inflated) > max_bytes:
        raise Problem(413, f"inflated body exceeds the limit of {max_bytes} bytes")
    if not inflater.eof:
        raise Problem(400, "gzip body is truncated", slug="bad-encoding")
    return inflated


def media_type(request: Request) -> str:
    return (request.mimetype or "").lower()


def parse_records(
    body: bytes, kind: str, max_records: int
) -> Iterator[tuple[int, Any, TraceError | None]]:
    """(index, record, error) per record. JSON indexes from 0, NDJSON by line from 1."""
    if not body.strip():
        raise Problem(400, "the body is empty; send a JSON array of traces", slug="empty-body")
    if kind in NDJSON_TYPES:
        lines = body.split(b"\n")
        numbered = [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
        _check_count(len(numbered), max_records)
        parsed: list[tuple[int, Any, TraceError | None]] = []
        for number, line in numbered:
            try:
                parsed.append((number, orjson.loads(line), None))
            except orjson.JSONDecodeError as error:
                parsed.append((number, None, TraceError("", f"not valid JSON: {error}")))
        good = [record for _, record, problem in parsed if problem is None]
        repeated = {}
        if _may_repeat_fields(body, good):
            lines_by_number = dict(numbered)
            for number, _, problem in parsed:
                if problem is None:
                    field = _repeated_field(json.loads(lines_by_number[number],
                                                       object_pairs_hook=_Object))  # fmt: skip
                    if field is not None:
                        repeated[number] = field
        for number, record, problem in parsed:
            yield number, record, _repeated_error(repeated.get(number)) or problem
        return
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise Problem(400, f"body is not valid JSON: {error}", slug="malformed-json") from None
    wrapped = isinstance(document, dict) and set(document) == {"traces"}
    if wrapped:
        document = document["traces"]
    if not isinstance(document, list):
        raise Problem(400, 'send a JSON array of traces, {"traces": [...]} or NDJSON',
                      slug="malformed-json")  # fmt: skip
    _check_count(len(document), max_records)
    repeated = {}
    if _may_repeat_fields(body, document, extra=1 if wrapped else 0):
        checked = json.loads(body, object_pairs_hook=_Object)
        if wrapped:
            if checked.repeated is not None:
                raise Problem(400, 'the field "traces" appears more than once',
                              slug="malformed-json",
                              errors=[{"field": "traces", "message": "repeated"}])  # fmt: skip
            checked = checked["traces"]
        repeated = {i: f for i, r in enumerate(checked) if (f := _repeated_field(r)) is not None}
    for index, record in enumerate(document):
        yield index, record, _repeated_error(repeated.get(index))


class _Object(dict):  # type: ignore[type-arg]
    """A JSON object that remembers the first field it saw twice."""

    repeated: str | None = None

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__()
        for name, value in pairs:
            if name in self and self.repeated is None:
                self.repeated = name
            self[name] = value


_FIELD_NEEDLES = {name: f'"{name}"'.encode() for name in (*KNOWN_FIELDS, "traces")}


def _may_repeat_fields(body: bytes, records: list[Any], extra: int = 0) -> bool:
    """Cheap test: can any record hold a field twice? orjson keeps the last silently.

    A field name occurring in the bytes more often than in the parsed records means a repeat,
    or only a value that looks like a field name; a ``\\u`` escape could spell a name. Either
    way the exact (slower) parse decides; ordinary bodies never take it. A repeated unknown
    field needs no check: an unknown field is rejected by name anyway.
    """
    if b"\\u" in body:
        return True
    parsed = Counter(name for record in records if isinstance(record, dict) for name in record)
    parsed["traces"] += extra
    return any(body.count(needle) > parsed[name] for name, needle in _FIELD_NEEDLES.items())


def _repeated_field(record: Any) -> str | None:
    return record.repeated if isinstance(record, _Object) else None


def _repeated_error(field: str | None) -> TraceError | None:
    if field is None:
        return None
    return TraceError(field, "appears more than once in the record")


def _check_count(count: int, max_records: int) -> None:
    if count > max_records:
        raise Problem(413, f"{count} records exceed the limit of {max_records} per request",
                      slug="too-many-records")  # fmt: skip
