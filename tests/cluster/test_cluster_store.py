"""The store on a Redis Cluster: one slot per tenant, scripts, transactions, WAIT, stalls."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster, key_slot

from service.app import create_app
from service.config import Settings
from service.store import keys
from service.store.api_keys import create_key
from service.store.connection import cluster_startup_nodes, connect, connect_url
from service.store.local_cluster import LocalCluster
from service.worker.loop import Worker
from tests.cluster.support import tenants_on_every_master, total_counted, trace_batches
from tests.conftest import ALL_SCOPES, TEST_SERVER, KeyedClient


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    started = LocalCluster(Path(tmp_path_factory.mktemp("cluster")), server=TEST_SERVER).start()
    yield started
    started.stop()


@pytest.fixture
def store(shared_cluster: LocalCluster) -> Iterator[RedisCluster]:
    shared_cluster.flushall()
    client = connect_url(shared_cluster.url)
    yield client
    client.close()


@pytest.fixture
def client_for() -> Iterator[Callable[..., KeyedClient]]:
    """``client_for(url, tenant, **settings)``: a test client of a new app, keyed for tenant."""
    opened: list[redis.RedisCluster] = []

    def make(url: str, tenant: str, **overrides: object) -> KeyedClient:
        app = create_app({"redis_url": url, **overrides})
        opened.append(app.extensions["mailflow"].client)
        with connect_url(url) as store:
            key = create_key(store, tenant, ALL_SCOPES, "t", datetime.now(UTC))
        return type("C", (KeyedClient,), {"default_key": key})(app, app.response_class)

    yield make
    for client in opened:
        client.close()


def _fold(url: str) -> None:
    with connect_url(url) as client:
        Worker(client, Settings(redis_url=url)).work(burst=True)


def test_a_cluster_url_makes_a_cluster_client_that_fails_fast(shared_cluster):
    assert cluster_startup_nodes("redis+cluster://a:7000, b:7001") == [("a", 7000), ("b", 7001)]
    client = connect(Settings(redis_url=shared_cluster.url, redis_timeout_seconds=0.7))
    assert isinstance(client, RedisCluster)
    assert client.retry.get_retries() == 0  # redis-py's default is 10, with backoff
    node = client.get_redis_connection(client.get_primaries()[0])
    assert node.connection_pool.connection_kwargs["socket_timeout"] == 0.7
    assert len(client.get_primaries()) == 3 and len(client.get_replicas()) == 3


def test_tenants_on_every_master_are_counted_exactly_and_stay_on_their_slot(
    shared_cluster, store, client_for
):
    placed = tenants_on_every_master(shared_cluster)
    now = datetime.now(UTC)
    for port, (tenant,) in placed.items():
        client = client_for(shared_cluster.url, tenant)
        for batch in trace_batches(tenant, 1500, 500, now):
            assert client.post("/api/v1/traces", json=batch).status_code == 202
        # every key of the tenant is on the master its hash tag names
        slot = key_slot(keys.stream(tenant).encode())
        assert {key_slot(keys.seen(tenant, "2026-01-01").encode()), key_slot(
            keys.day_counts(tenant, "2026-01-01").encode())} == {slot}  # fmt: skip
        with shared_cluster.client_of(shared_cluster.master_of_slot(slot)) as node:
            assert node.exists(keys.stream(tenant))
        assert shared_cluster.master_of_slot(slot).port == port
    _fold(shared_cluster.url)
    for (tenant,) in placed.values():
        assert total_counted(store, tenant, now) == 1500
        body = client_for(shared_cluster.url, tenant).get("/api/v1/mailflow/snapshot").json
        assert sum(d["messages"] for d in body["directions"].values()) == 1500


def test_scripts_are_reloaded_when_a_master_has_lost_its_script_cache(
    shared_cluster, store, client_for
):
    # What a promoted replica or a restarted master looks like to EVALSHA: NOSCRIPT.
    now = datetime.now(UTC)
    plain = client_for(shared_cluster.url, "alpha")
    waiting = client_for(shared_cluster.url, "alpha", redis_wait_replicas=1)
    batches = trace_batches("s", 400, 100, now)
    assert plain.post("/api/v1/traces", json=batches[0]).status_code == 202
    assert waiting.post("/api/v1/traces", json=batches[1]).status_code == 202
    for node in shared_cluster.masters_now():
        with shared_cluster.client_of(node) as client:
            client.script_flush()
    assert plain.post("/api/v1/traces", json=batches[2]).status_code == 202
    for node in shared_cluster.masters_now():
        with shared_cluster.client_of(node) as client:
            client.script_flush()
    assert waiting.post("/api/v1/traces", json=batches[3]).status_code == 202
    _fold(shared_cluster.url)
    assert total_counted(store, "alpha", now) == 400


def test_a_transaction_stays_in_one_tenant_slot(store):
    pipe = store.pipeline(transaction=True)
    pipe.hset(keys.meta("alpha"), "version", 3)
    pipe.hincrby(keys.day_counts("alpha", "2026-11-27"), "f", 2)
    assert pipe.execute() == [1, 2]
    crossing = store.pipeline(transaction=True)
    crossing.get(keys.meta("alpha"))
    crossing.get(keys.meta("beta"))
    with pytest.raises(redis.exceptions.RedisClusterException):
        crossing.execute()


def test_wait_replicas_acknowledges_only_what_enough_replicas_hold(
    shared_cluster, store, client_for
):
    now = datetime.now(UTC)
    (batch,) = trace_batches("w", 300, 300, now)
    impossible = client_for(shared_cluster.url, "alpha", redis_wait_replicas=2,
                             redis_wait_timeout_ms=200)  # fmt: skip
    started = time.monotonic()
    response = impossible.post("/api/v1/traces", json=batch)
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert time.monotonic() - started < 2
    # Whatever the master stored before the replica count fell short, the retry on settings
    # one replica can meet accepts the batch once, and a resend finds only duplicates.
    possible = client_for(shared_cluster.url, "alpha", redis_wait_replicas=1)
    body = possible.post("/api/v1/traces", json=batch).json
    assert body["accepted"] + body["duplicates"] == 300
    body = possible.post("/api/v1/traces", json=batch).json
    assert (body["accepted"], body["duplicates"]) == (0, 300)
    _fold(shared_cluster.url)
    assert total_counted(store, "alpha", now) == 300


def test_a_stalled_master_is_a_503_within_two_seconds(cluster, client_for):
    tenant = "stalled"
    client = client_for(cluster.url, tenant)
    (batch,) = trace_batches("x", 10, 10, datetime.now(UTC))
    assert client.post("/api/v1/traces", json=batch).status_code == 202
    master = cluster.master_of_slot(key_slot(keys.stream(tenant).encode()))
    os.kill(master.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        response = client.get("/api/v1/mailflow/snapshot")
        elapsed = time.monotonic() - started
    finally:
        os.kill(master.process.pid, signal.SIGCONT)
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert elapsed < 2.0, elapsed
