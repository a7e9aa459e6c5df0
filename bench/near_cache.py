"""The cached read path in one process: a request's key lookup plus its view read, with no
cache, with mailflow's near cache, and with redis-py's client-side caching (RESP3 tracking,
``CacheConfig``), side by side in one run.

redis-py refuses client-side caching below Redis 7.4, and the embedded server is 6.2: give a
newer ``redis-server`` to measure that column too.

python -m bench.near_cache [--redis-server PATH] [--runs 7] [--reads 20000]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import redis
from redis.cache import CacheConfig

from service.core.api_keys import parse_key
from service.store import api_keys, keys, near_cache, views
from service.store.embedded import free_port, redis_server_binary
from service.store.views import CachedView

TENANT = "bench"
VIEW = ("snapshot", "2026-11-01", "2026-11-07")
BODY = b'{"window": {}, "totals": {"messages": 123456}}' * 40  # ~2 kB, a snapshot's size


@contextmanager
def redis_server(binary: Path) -> Iterator[str]:
    """A throwaway server on loopback TCP (redis-py's client-side caching cannot use a unix
    socket), no persistence; its URL."""
    folder = Path(tempfile.mkdtemp(prefix="mailflow-nearcache-"))
    port = free_port()
    process = subprocess.Popen(
        [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        for _ in range(500):  # the server starts in a few milliseconds
            with contextlib.suppress(redis.ConnectionError), redis.Redis.from_url(url) as probe:
                probe.ping()
                break
            time.sleep(0.01)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def server_version(url: str) -> tuple[int, ...]:
    with redis.Redis.from_url(url) as client:
        return tuple(int(p) for p in str(client.info("server")["redis_version"]).split("."))


def read_path(client: redis.Redis, key_id: str) -> Callable[[], None]:
    """What a cached GET asks Redis for: the key's record, then the view's bytes."""

    def read() -> None:
        record = api_keys.load_for_request(client, key_id)
        view = views.get_view(client, TENANT, *VIEW)
        assert record is not None and isinstance(view, CachedView)

    return read


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def measure(binary: Path, runs: int, reads: int) -> dict[str, float]:
    """Microseconds per read path, the median of ``runs`` interleaved runs of ``reads``."""
    with redis_server(binary) as url:
        setup = redis.Redis.from_url(url)
        key = api_keys.create_key(setup, TENANT, ("read",), "bench", datetime.now(UTC))
        parsed = parse_key(key)
        assert parsed is not None
        key_id = parsed[0]
        setup.hset(keys.view(TENANT, *VIEW), mapping={"body": BODY, "etag": '"bench"'})

        plain = redis.Redis.from_url(url)
        cached = redis.Redis.from_url(url)
        cache = near_cache.NearCache().start(cached)
        near_cache.attach(cached, cache)
        paths = {"no cache": read_path(plain, key_id), "near cache": read_path(cached, key_id)}
        csc: redis.Redis | None = None
        if server_version(url) >= (7, 4):
            csc = redis.Redis.from_url(url, protocol=3, cache_config=CacheConfig())
            paths["redis-py CacheConfig"] = read_path(csc, key_id)
        samples: dict[str, list[float]] = {name: [] for name in paths}
        try:
            for read in paths.values():
                read()  # warm: the caches hold both values
            for _ in range(runs):
                for name, read in paths.items():
                    started = time.perf_counter()
                    for _ in range(reads):
                        read()
                    samples[name].append((time.perf_counter() - started) / reads * 1e6)
        finally:
            cache.stop()
            for client in (setup, plain, cached, csc):
                if client is not None:
                    client.close()
    return {name: median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-server", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--reads", type=int, default=20_000)
    args = parser.parse_args()
    binary = args.redis_server or redis_server_binary()
    for name, micros in measure(binary, args.runs, args.reads).items():
        print(f"{name:24} {micros:8.1f} us per key lookup + view read")


if __name__ == "__main__":
    main()
