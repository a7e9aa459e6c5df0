"""Pinned selections of the connector report: the rows of one data version, kept for paging.

The first page that has a successor stores the selected, sorted rows as a list under the rows'
ETag and the query (``keys.report_pin``), for ``PIN_SECONDS``; every later page is one LRANGE
of exactly those rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import msgspec
import orjson
import redis

from service.core.connectors import ConnectorRow, decode_row
from service.core.windows import Window
from service.store import keys

PIN_SECONDS = 600
Row = TypeVar("Row")
_ENCODER = msgspec.json.Encoder()  # the rows' compact JSON, as core.connectors.encode_rows


def pin_key(tenant: str, window: Window, group_by: str, rows_tag: str, query_digest: str) -> str:
    # rows_tag: the ETag of the rows the selection was made from (one data version's rows).
    parts = (window.start.isoformat(), window.end.isoformat(), group_by, rows_tag,
             query_digest)  # fmt: skip
    return keys.report_pin(tenant, "connectors", *parts)


def pin(
    client: redis.Redis, key: str, rows: Sequence[msgspec.Struct], meta: dict[str, Any]
) -> None:
    """Store the selected rows as a list (a page is then one LRANGE), atomically in place:
    built under a private name, then renamed, so a reader never sees a half-built list."""
    building = f"{key}:building:{uuid.uuid4().hex}"
    pipe = client.pipeline(transaction=False)
    pipe.rpush(building, orjson.dumps(meta))
    for at in range(0, len(rows), 1000):
        pipe.rpush(building, *(_ENCODER.encode(row) for row in rows[at : at + 1000]))
    pipe.expire(building, PIN_SECONDS)
    # RENAME through execute_command: redis-py blocks the rename() method in cluster pipelines
    # even when, as here, both names carry the tenant hash tag and share one slot.
    pipe.execute_command("RENAME", building, key)
    pipe.execute()


def page_from_pin(
    client: redis.Redis, key: str, offset: int, limit: int
) -> tuple[list[ConnectorRow], int, dict[str, Any]] | None:
    """Rows ``offset`` .. ``offset + limit`` of a pinned selection, its length and meta. A
    first page renews the pin: the cursor it hands out gets the full PIN_SECONDS."""
    return page_of(client, key, offset, limit, decode_row)


def page_of(
    client: redis.Redis, key: str, offset: int, limit: int, decode: Callable[[bytes], Row]
) -> tuple[list[Row], int, dict[str, Any]] | None:
    """``page_from_pin`` of any pinned rows, read back with ``decode``."""
    pipe = client.pipeline(transaction=True)
    pipe.lindex(key, 0)
    pipe.llen(key)
    pipe.lrange(key, offset + 1, offset + limit)
    if offset == 0:
        pipe.expire(key, PIN_SECONDS)
    meta, length, raw_rows, *_ = pipe.execute()
    if meta is None:
        return None
    return [decode(r) for r in raw_rows], length - 1, orjson.loads(meta)
