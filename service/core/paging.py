"""Opaque cursors: signed tokens that the client hands back unchanged.

A cursor is the state of a walk through a result list, signed with the deployment's cursor
secret (``service.store.cursor_secret``) by itsdangerous, so a client can neither forge one nor
change a field of one (an offset, a window, a sequence): whatever is not exactly what this
service issued is refused as a whole. The signed state also names the tenant it was issued to
and a digest of the query it came from, so a cursor of another tenant, or used with other
filters or sort, is refused instead of silently reading other rows.

No Flask and no Redis here: the caller passes the secret.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson
from itsdangerous import BadData, URLSafeSerializer

MAX_LIMIT = 1000
MAX_CURSOR_LENGTH = 512  # far above any cursor issued (about 200 characters)
# What an issued cursor looks like: itsdangerous' URL-safe payload ('.'-prefixed when it is
# compressed), a dot and the signature. Stated in the spec, so a client knows the shape.
CURSOR_PATTERN = r"^\.?[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"
_SALT = "mailflow.cursor.v1"  # a signature made for anything else never verifies as a cursor
_TENANT_FIELD = "n"
_DIGEST_FIELD = "q"


class CursorError(ValueError):
    """The cursor is malformed, tampered with, or belongs to another query or tenant."""


class CursorSignatureError(CursorError):
    """The cursor's signature does not verify with the secret given."""


def query_digest(params: Mapping[str, Any]) -> str:
    """A short digest of the parameters that define a result list (not limit, not cursor)."""
    canonical = orjson.dumps(
        {k: v for k, v in params.items() if v is not None}, option=orjson.OPT_SORT_KEYS,
        default=str,
    )  # fmt: skip
    return hashlib.blake2b(canonical, digest_size=8).hexdigest()


def _serializer(secret: bytes) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=_SALT)


def encode_cursor(secret: bytes, tenant: str, digest: str, state: Mapping[str, Any]) -> str:
    """A cursor for ``tenant`` walking the query of ``digest``, carrying ``state``."""
    payload = {**state, _TENANT_FIELD: tenant, _DIGEST_FIELD: digest}
    return str(_serializer(secret).dumps(payload))


def decode_cursor(secret: bytes, tenant: str, cursor: str, digest: str) -> dict[str, Any]:
    """The state of a cursor this service issued to ``tenant`` for the query of ``digest``.

    Raises CursorError for anything else. The signature is checked before anything in the
    cursor is decoded (or decompressed), so forged input is never parsed."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise CursorError("not a cursor this service issued")
    try:
        state = _serializer(secret).loads(cursor)
    except BadData:
        raise CursorSignatureError("not a cursor this service issued") from None
    if not isinstance(state, dict):
        raise CursorError("not a cursor this service issued")
    if state.get(_TENANT_FIELD) != tenant:
        raise CursorError("the cursor was issued to another tenant")
    if state.get(_DIGEST_FIELD) != digest:
        raise CursorError("the cursor belongs to a query with other parameters")
    return state


def state_int(state: Mapping[str, Any], name: str, minimum: int) -> int:
    """An integer field of a decoded cursor, at least ``minimum`` (never a bool or a string)."""
    value = state.get(name)
    if type(value) is not int or value < minimum:
        raise CursorError("not a cursor this service issued")
    return value


def state_str(state: Mapping[str, Any], name: str) -> str:
    """A string field of a decoded cursor."""
    value = state.get(name)
    if not isinstance(value, str) or not value:
        raise CursorError("not a cursor this service issued")
    return value
