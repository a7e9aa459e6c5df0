"""Loading a dumped store (tests/fixtures/store_9cb2646.json) into the test Redis, and comparing
the answers of today's API with the ones the release that wrote it recorded."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import redis

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "store_9cb2646.json"


def load_dump(path: Path = FIXTURE) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def fixture_now(dump: dict[str, Any]) -> datetime:
    """The clock at which the release recorded its answers: the store's own "now"."""
    return datetime.fromisoformat(dump["now"])


def _bytes(value: str | dict[str, str]) -> bytes:
    return base64.b64decode(value["b64"]) if isinstance(value, dict) else value.encode()


def restore(client: redis.Redis, dump: dict[str, Any]) -> None:
    """Every key of the dump, with its time to live as the duration it had left."""
    for row in dump["keys"]:
        key, kind, value = _bytes(row["key"]), row["type"], row["value"]
        if kind == "string":
            client.set(key, _bytes(value))
        elif kind == "hash":
            client.hset(key, mapping={k: _bytes(v) for k, v in value.items()})
        elif kind == "set":
            client.sadd(key, *(_bytes(m) for m in value))
        elif kind == "zset":
            client.zadd(key, {_bytes(m): score for m, score in value})
        elif kind == "list":
            client.rpush(key, *(_bytes(item) for item in value))
        elif kind == "stream":
            _restore_stream(client, key, value)
        else:
            raise ValueError(f"no restore for type {kind}")
        if row["pttl"] > 0:
            client.pexpire(key, row["pttl"])


def _restore_stream(client: redis.Redis, key: bytes, value: dict[str, Any]) -> None:
    for entry_id, fields in value["entries"]:
        client.xadd(key, {k: _bytes(v) for k, v in fields.items()}, id=entry_id)
    for name, last_id in value["groups"]:
        client.xgroup_create(key, name, id=last_id, mkstream=True)


# Values that differ by construction, not by report: opaque cursors (signed with each
# release's secret) and the moment the answer was generated.
_OPAQUE = {"next_cursor", "generated_at"}


def differences(old: Any, new: Any, where: str = "") -> list[str]:
    """Where ``new`` differs from ``old``, ignoring fields ``old`` does not have (the new
    release may add fields) and opaque ones."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for field, value in old.items():
            if field in _OPAQUE:
                continue
            if field not in new:
                found.append(f"{where}.{field}: missing")
            else:
                found += differences(value, new[field], f"{where}.{field}")
        return found
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [f"{where}: {len(old)} items, now {len(new)}"]
        return [d for i, (a, b) in enumerate(zip(old, new, strict=True))
                for d in differences(a, b, f"{where}[{i}]")]  # fmt: skip
    return [] if old == new else [f"{where}: {old!r} -> {new!r}"]
