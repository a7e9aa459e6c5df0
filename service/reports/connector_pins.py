"""Pinned selections of the connector report: the rows of one data version, kept for paging.

The first page that has a successor stores the selected, sorted rows as a list under the rows'
ETag and the query (``keys.report_pin``), for ``PIN_SECONDS``; every later page is one LRANGE
of exactly those rows. The list holds the rows ``PIN_CHUNK_ROWS`` to an element (a JSON array),
so pinning the 45,000 rows of a 90-day report grouped by day is a few hundred elements joined
from the rows' JSON as it is, not 45,000 encoded one by one.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import msgspec
import orjson
import redis

from service.core.connectors import ConnectorRow
from service.core.rows_view import RawRow
from service.core.windows import Window
from service.store import keys

PIN_SECONDS = 600
PIN_CHUNK_ROWS = 100
# In the key: a pin of another layout (a list of single rows, before PIN_CHUNK_ROWS) is not
# read as this one.
_LAYOUT = f"chunks{PIN_CHUNK_ROWS}"


def pin_key(tenant: str, window: Window, group_by: str, rows_tag: str, query_digest: str) -> str:
    # rows_tag: the ETag of the rows the selection was made from (one data version's rows).
    parts = (window.start.isoformat(), window.end.isoformat(), group_by, rows_tag,
             query_digest, _LAYOUT)  # fmt: skip
    return keys.report_pin(tenant, "connectors", *parts)


def pin(client: redis.Redis, key: str, rows: Sequence[RawRow], meta: dict[str, Any]) -> None:
    """Store the selected rows (each its JSON) as a list, atomically in place: built under a
    private name, then renamed, so a reader never sees a half-built list."""
    building = f"{key}:building:{uuid.uuid4().hex}"
    chunks = [b"[" + b",".join(rows[at : at + PIN_CHUNK_ROWS]) + b"]"
              for at in range(0, len(rows), PIN_CHUNK_ROWS)]  # fmt: skip
    pipe = client.pipeline(transaction=False)
    pipe.rpush(building, orjson.dumps(meta | {"total": len(rows)}))
    for at in range(0, len(chunks), 100):
        pipe.rpush(building, *chunks[at : at + 100])
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
    first, last = offset // PIN_CHUNK_ROWS, (offset + limit - 1) // PIN_CHUNK_ROWS
    pipe = client.pipeline(transaction=True)
    pipe.lindex(key, 0)
    pipe.lrange(key, first + 1, last + 1)
    if offset == 0:
        pipe.expire(key, PIN_SECONDS)
    meta, chunks, *_ = pipe.execute()
    if meta is None:
        return None
    rows = [row for chunk in chunks for row in _CHUNK_DECODER.decode(chunk)]
    skip = offset - first * PIN_CHUNK_ROWS
    pinned = orjson.loads(meta)
    return rows[skip : skip + limit], pinned.pop("total"), pinned


_CHUNK_DECODER = msgspec.json.Decoder(list[ConnectorRow])
