"""Opaque cursors: base64url JSON that the client hands back unchanged.

A cursor is bound to the query it came from (a digest of the query's parameters): a cursor
used with other filters or sort is refused instead of silently skipping rows.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

MAX_LIMIT = 1000


class CursorError(ValueError):
    """The cursor is malformed or belongs to another query."""


def query_digest(params: Mapping[str, Any]) -> str:
    """A short digest of the parameters that define a result list (not limit, not cursor)."""
    canonical = orjson.dumps(
        {k: v for k, v in params.items() if v is not None}, option=orjson.OPT_SORT_KEYS,
        default=str,
    )  # fmt: skip
    return hashlib.blake2b(canonical, digest_size=8).hexdigest()


def encode_cursor(state: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(dict(state))).decode().rstrip("=")


def decode_cursor(cursor: str, digest: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        state = orjson.loads(raw)
    except (binascii.Error, ValueError):
        raise CursorError("not a cursor this service issued") from None
    if not isinstance(state, dict):
        raise CursorError("not a cursor this service issued")
    if state.get("q") != digest:
        raise CursorError("the cursor belongs to a query with other parameters")
    return state
