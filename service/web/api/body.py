"""Reading request bodies: size limits, gzip, JSON array / object / NDJSON, repeated fields.

Hostile bodies end as a 4xx before or while parsing, never as a 500: the byte limit applies
before reading (Content-Length), while reading (chunked bodies) and again after inflating every
gzip member (a gzip bomb stops at the limit); a body the server cannot read (a bad chunk size)
is a 400; orjson refuses NaN / Infinity, numbers past a double and invalid UTF-8 (400); a
document nested deeper than ``MAX_JSON_DEPTH`` is a 400 before the second, exact parse (which
recurses) runs; and an object naming a field twice is rejected by name instead of silently
keeping the last value. The admin endpoints' JSON objects go through ``read_json_object``.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson
from flask import Request
from gunicorn.http.errors import ParseException

from service.core.traces import KNOWN_FIELDS, TraceError
from service.web.errors import Problem

JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonlines")
# The admin resources (rule settings, connector definitions) are small objects: a definition
# with the longest description is about 4 KiB. 64 KiB leaves room and bounds the memory a
# body can take.
MAX_JSON_OBJECT_BYTES = 64 * 1024
# A trace or a setting is a flat object: a few levels are all any valid body has.
MAX_JSON_DEPTH = 64


def read_body(request: Request, max_bytes: int) -> bytes:
    """The body, inflated when gzip'd; 413 past ``max_bytes`` either way, before parsing."""
    length = request.content_length
    if length is not None and length > max_bytes:
        raise Problem(413, f"body of {length} bytes exceeds the limit of {max_bytes} bytes")
    raw = _read_at_most(request, max_bytes + 1)
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


def _read_at_most(request: Request, limit: int) -> bytes:
    """Up to ``limit`` bytes of the body. A stream may return less than asked (a chunk at a
    time), so read until it ends or the limit is reached. A body the server cannot decode (a
    bad chunk size, a chunk without its terminator) is the client's fault: 400."""
    parts: list[bytes] = []
    size = 0
    try:
        while size < limit:
            part = request.stream.read(limit - size)
            if not part:
                break
            parts.append(part)
            size += len(part)
    except TimeoutError:
        raise Problem(408, "the body was not received in time", slug="body-timeout",
                      title="Request body timeout") from None  # fmt: skip
    except (OSError, ValueError, ParseException) as error:
        raise Problem(400, f"the body cannot be read: {error or type(error).__name__}",
                      slug="unreadable-body") from None  # fmt: skip
    return b"".join(parts)


def _inflate(raw: bytes, max_bytes: int) -> bytes:
    """Every gzip member, one after another (``cat a.gz b.gz`` is one gzip stream), at most
    ``max_bytes`` in all: a gzip bomb stops here, not in memory. Bytes after the last member
    that are not a gzip member themselves are refused, not ignored."""
    parts: list[bytes] = []
    size = 0
    rest = raw
    member = 0
    while rest:
        member += 1
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            part = inflater.decompress(rest, max_bytes + 1 - size)
        except zlib.error as error:
            where = "gzip body" if member == 1 else f"data after gzip member {member - 1}"
            raise Problem(400, f"{where} does not inflate: {error}",
                          slug="bad-encoding") from None  # fmt: skip
        size += len(part)
        if size > max_bytes:
            raise Problem(413, f"inflated body exceeds the limit of {max_bytes} bytes")
        if not inflater.eof:
            raise Problem(400, f"gzip body is truncated in member {member}", slug="bad-encoding")
        parts.append(part)
        rest = inflater.unused_data
    return b"".join(parts)


def read_json_object(request: Request, max_bytes: int = MAX_JSON_OBJECT_BYTES) -> Any:
    """The JSON document of an admin request (PUT of a rule's settings or a definition).

    415 unless the body is declared JSON (a form, curl's default, is not); 413 past
    ``max_bytes``; 400 for an empty, unparseable, too deeply nested body or one naming a
    field twice. Whether it is an object of the right fields is the schema's to say (422).
    """
    if media_type(request) not in JSON_TYPES:
        raise Problem(415, "send the body as application/json")
    body = read_body(request, max_bytes)
    if not body.strip():
        raise Problem(400, "the body is empty; send a JSON object", slug="empty-body")
    document = _parse_json(body)
    _check_depth(document, body)
    repeated = _repeated_field(_exact_parse(body))
    if repeated is not None:
        raise Problem(400, f"the field {repeated!r} appears more than once",
                      slug="malformed-json",
                      errors=[{"field": repeated, "message": "repeated"}])  # fmt: skip
    return document


def _parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise Problem(400, f"body is not valid JSON: {error}", slug="malformed-json") from None


def _depth_exceeds(document: Any, text: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether containers nest deeper than ``limit``; level by level, without recursion.

    Every container opens with a ``[`` or ``{`` in ``text`` (strings may hold more), so once
    the levels walked hold that many containers there is none deeper: an ordinary batch is
    settled after its first level, without looking into each record.
    """
    brackets = text.count(b"[") + text.count(b"{")
    if brackets <= limit:
        return False
    level = [document] if isinstance(document, list | dict) else []
    seen = len(level)
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        if seen >= brackets:
            return False
        deeper: list[Any] = []
        for node in level:
            children = node.values() if isinstance(node, dict) else node
            deeper.extend(child for child in children if isinstance(child, list | dict))
        seen += len(deeper)
        level = deeper
    return False


def _check_depth(document: Any, text: bytes) -> None:
    if _depth_exceeds(document, text):
        raise Problem(400, f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels",
                      slug="malformed-json")  # fmt: skip


def _ignore(_: str) -> int:
    return 0


def _exact_parse(text: bytes) -> Any:
    """The document with each object an ``_Object`` that knows its first repeated field.
    Only names matter here: numbers are not converted (a 5,000-digit one would be refused by
    int()), and the caller has bounded the nesting, as the stdlib parser recurses."""
    try:
        return json.loads(text, object_pairs_hook=_Object, parse_int=_ignore,
                          parse_float=_ignore, parse_constant=_ignore)  # fmt: skip
    except ValueError as error:  # orjson read it: the stdlib should too, but never a 500
        raise Problem(400, f"body is not valid JSON: {error}", slug="malformed-json") from None


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
                document = orjson.loads(line)
            except orjson.JSONDecodeError as error:
                parsed.append((number, None, TraceError("", f"not valid JSON: {error}")))
                continue
            if _depth_exceeds(document, line):
                nested = TraceError("", f"nested deeper than {MAX_JSON_DEPTH} levels")
                parsed.append((number, None, nested))
            else:
                parsed.append((number, document, None))
        good = [record for _, record, problem in parsed if problem is None]
        repeated = {}
        if _more_field_names_than_parsed(body, good):
            lines_by_number = dict(numbered)
            for number, _, problem in parsed:
                if problem is None:
                    field = _repeated_field(_exact_parse(lines_by_number[number]))
                    if field is not None:
                        repeated[number] = field
        for number, record, problem in parsed:
            yield number, record, _repeated_error(repeated.get(number)) or problem
        return
    document = _parse_json(body)
    _check_depth(document, body)
    wrapped = isinstance(document, dict) and set(document) == {"traces"}
    if wrapped:
        document = document["traces"]
    if not isinstance(document, list):
        raise Problem(400, 'send a JSON array of traces, {"traces": [...]} or NDJSON',
                      slug="malformed-json")  # fmt: skip
    _check_count(len(document), max_records)
    repeated = {}
    if _more_field_names_than_parsed(body, document, extra=1 if wrapped else 0):
        checked = _exact_parse(body)
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


def _more_field_names_than_parsed(body: bytes, records: list[Any], extra: int = 0) -> bool:
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
