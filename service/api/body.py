"""Reading an ingest body: size limits, gzip, JSON array / object / NDJSON."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

import orjson
from flask import Request

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
) -> Iterator[tuple[int, Any, str | None]]:
    """(index, record, parse error) per record. JSON indexes from 0, NDJSON by line from 1."""
    if not body.strip():
        raise Problem(400, "the body is empty; send a JSON array of traces", slug="empty-body")
    if kind in NDJSON_TYPES:
        lines = body.split(b"\n")
        records = [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
        _check_count(len(records), max_records)
        for number, line in records:
            try:
                yield number, orjson.loads(line), None
            except orjson.JSONDecodeError as error:
                yield number, None, f"not valid JSON: {error}"
        return
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise Problem(400, f"body is not valid JSON: {error}", slug="malformed-json") from None
    if isinstance(document, dict) and set(document) == {"traces"}:
        document = document["traces"]
    if not isinstance(document, list):
        raise Problem(400, 'send a JSON array of traces, {"traces": [...]} or NDJSON',
                      slug="malformed-json")  # fmt: skip
    _check_count(len(document), max_records)
    for index, record in enumerate(document):
        yield index, record, None


def _check_count(count: int, max_records: int) -> None:
    if count > max_records:
        raise Problem(413, f"{count} records exceed the limit of {max_records} per request",
                      slug="too-many-records")  # fmt: skip
