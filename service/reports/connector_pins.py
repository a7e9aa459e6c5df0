"""Pinned selections of the connector report: the rows of one data version, kept for paging.

The first page that has a successor stores the selected, sorted rows as a list under the rows'
ETag and the query (``keys.report_pin``), for ``PIN_SECONDS``; every later page is one LRANGE
of exactly those rows. The list holds the rows ``PIN_CHUNK_ROWS`` to an element (a JSON array),
so pinning the 45,000 rows of a 90-day report grouped by day is a few hundred elements joined
from the rows' JSON as it is, not 45,000 encoded one by one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import msgspec
import orjson
import redis

from service.core.connectors import ConnectorRow
from service.core.rows_view import RawRow
from service.core.windows import Window
from service.store import keys
from service.store.availability import refuses_writes

PIN_SECONDS = 600
PIN_CHUNK_ROWS = 100
# In every pin's key (also the per-domain reports', ``reports.who_reports``): a pin of another
# layout (a list of single rows, before PIN_CHUNK_ROWS) is not read as this one.
PIN_LAYOUT = f"chunks{PIN_CHUNK_ROWS}"
Row = TypeVar("Row")
_ENCODER = msgspec.json.Encoder()  # the rows' compact JSON, as core.connectors.encode_rows


def pin_key(tenant: str, window: Window, group_by: str, rows_tag: str, query_digest: str) -> str:
    # rows_tag: the ETag of the rows the selection was made from (one data version's rows).
    parts = (window.start.isoformat(), window.end.isoformat(), group_by, rows_tag,
             query_digest, PIN_LAYOUT)  # fmt: skip
    return keys.report_pin(tenant, "connectors", *parts)


def pin_raw(client: redis.Redis, key: str, rows: Sequence[RawRow], meta: dict[str, Any]) -> None:
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


def pin(
    client: redis.Redis, key: str, rows: Sequence[msgspec.Struct], meta: dict[str, Any]
) -> None:
    """``pin_raw`` of rows not yet encoded (any row type: the per-domain reports' too)."""
    pin_raw(client, key, [_ENCODER.encode(row) for row in rows], meta)


def page_from_pin(
    client: redis.Redis, key: str, offset: int, limit: int
) -> tuple[list[ConnectorRow], int, dict[str, Any]] | None:
    """Rows ``offset`` .. ``offset + limit`` of a pinned selection, its length and meta. A
    first page renews the pin: the cursor it hands out gets the full PIN_SECONDS."""
    read = _read_pin(client, key, offset, limit)
    if read is None:
        return None
    chunks, skip, total, meta = read
    rows = [row for chunk in chunks for row in _CHUNK_DECODER.decode(chunk)]
    return rows[skip : skip + limit], total, meta


def page_of(
    client: redis.Redis, key: str, offset: int, limit: int, decode: Callable[[bytes], Row]
) -> tuple[list[Row], int, dict[str, Any]] | None:
    """``page_from_pin`` of any pinned rows, each row of the page read back with ``decode``."""
    read = _read_pin(client, key, offset, limit)
    if read is None:
        return None
    chunks, skip, total, meta = read
    raw = [row for chunk in chunks for row in _RAW_CHUNK_DECODER.decode(chunk)]
    return [decode(bytes(row)) for row in raw[skip : skip + limit]], total, meta


def _read_pin(
    client: redis.Redis, key: str, offset: int, limit: int
) -> tuple[list[bytes], int, int, dict[str, Any]] | None:
    """The chunks holding rows ``offset`` .. ``offset + limit``, how many rows of them come
    before ``offset``, the selection's length and its meta (None: no such pin)."""
    first, last = offset // PIN_CHUNK_ROWS, (offset + limit - 1) // PIN_CHUNK_ROWS
    pipe = client.pipeline(transaction=True)
    pipe.lindex(key, 0)
    pipe.lrange(key, first + 1, last + 1)
    if offset == 0:
        pipe.expire(key, PIN_SECONDS)
    try:
        meta, chunks, *_ = pipe.execute()
    except redis.RedisError as error:
        if not refuses_writes(error):
            raise
        # At Redis's memory limit (Redis 6.2 refuses a MULTI then, even of reads): the pin
        # read alone, not renewed. A pin is never changed once in place, so two reads agree.
        pipe = client.pipeline(transaction=False)
        pipe.lindex(key, 0)
        pipe.lrange(key, first + 1, last + 1)
        meta, chunks = pipe.execute()
    if meta is None:
        return None
    pinned = orjson.loads(meta)
    return chunks, offset - first * PIN_CHUNK_ROWS, pinned.pop("total"), pinned


_CHUNK_DECODER = msgspec.json.Decoder(list[ConnectorRow])
_RAW_CHUNK_DECODER = msgspec.json.Decoder(list[msgspec.Raw])
