"""Store faults a deployment meets: lost data, killed connections, several workers at once."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
import redis

from service.app import create_app
from service.config import Settings
from service.store import keys
from service.store import traces as trace_store
from service.store.api_keys import create_key
from service.store.embedded import EmbeddedRedis
from service.worker.loop import Worker
from tests.conftest import ALL_SCOPES, TEST_SERVER, KeyedClient, free_port
from tests.helpers import make_traces
from tests.test_spine_faults import ingest_direct, total_counted


@pytest.fixture
def own_redis(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis", port=free_port(), server=TEST_SERVER).start()
    yield server
    server.stop()


def test_readiness_fails_loudly_after_redis_restarts_with_an_empty_data_dir(
    own_redis, clock, closing
):
    client = closing(redis.Redis.from_url(own_redis.url))
    settings = Settings(redis_url=own_redis.url)
    app = closing(create_app({"redis_url": own_redis.url, "CLOCK": clock}))
    web = app.test_client()
    worker = Worker(client, settings, clock=clock)
    worker.work(burst=True)  # makes the store's instance id and beats
    first = web.get("/readyz")
    assert first.status_code == 200, first.json

    own_redis.stop()
    shutil.rmtree(own_redis.data_dir)  # the data is gone
    own_redis.start()
    worker.work(burst=True)  # the running worker notices and does not paper over it
    lost = web.get("/readyz")
    assert lost.status_code == 503
    assert lost.json["checks"]["data"] != "ok" and "lost" in lost.json["detail"]

    # A fresh API process cannot know what was there, but without an id it is not ready either.
    fresh = closing(create_app({"redis_url": own_redis.url, "CLOCK": clock})).test_client()
    assert fresh.get("/readyz").status_code == 503
    # Restarting a worker on purpose is the operator's acknowledgement: a new, empty store.
    Worker(closing(redis.Redis.from_url(own_redis.url)), settings, clock=clock).work(burst=True)
    assert fresh.get("/readyz").status_code == 200


def test_killed_client_connections_and_retries_never_double_count(own_redis, clock, closing):
    app = closing(create_app({"redis_url": own_redis.url, "CLOCK": clock,
                      "rate_limit_ingest_per_minute": 10**6}))  # fmt: skip
    key = create_key(
        closing(redis.Redis.from_url(own_redis.url)), "default", ALL_SCOPES, "k", clock.now
    )
    web = type("Web", (KeyedClient,), {"default_key": key})(app)
    traces, _ = make_traces(20_000, clock.now, seed=41)
    killer_client = closing(redis.Redis.from_url(own_redis.url))
    stop = threading.Event()
    kills = []

    def kill_connections() -> None:
        rng = random.Random(3)
        while not stop.is_set():
            kills.append(killer_client.client_kill_filter(_type="normal", skipme=True))
            stop.wait(rng.uniform(0.001, 0.01))

    killer = threading.Thread(target=kill_connections)
    killer.start()
    acknowledged, attempts = set(), 0
    try:
        for start in range(0, len(traces), 500):
            batch = traces[start : start + 500]
            while True:  # the client retries until the batch is acknowledged
                attempts += 1
                response = web.post("/api/v1/traces", json=batch)
                if response.status_code == 202:
                    acknowledged.update(t["id"] for t in batch)
                    break
                assert response.status_code == 503, response.data
        worker_client = closing(redis.Redis.from_url(own_redis.url))
        settings = Settings(redis_url=own_redis.url, claim_idle_seconds=0)
        for _ in range(50):  # folds are retried too; each pass must keep counts exact
            try:
                Worker(worker_client, settings, clock=clock).work(burst=True)
                break
            except redis.ConnectionError:
                continue
    finally:
        stop.set()
        killer.join()
    assert sum(kills) > 0, "the test must actually kill connections"
    stop_client = closing(redis.Redis.from_url(own_redis.url))
    Worker(stop_client, Settings(redis_url=own_redis.url, claim_idle_seconds=0),
           clock=clock).work(burst=True)  # fmt: skip
    assert total_counted(stop_client, "default", clock) == len(acknowledged) == 20_000
    print(f"{attempts} ingest calls for 40 batches, {sum(kills)} connections killed")


def _workers(url: str, count: int) -> list[subprocess.Popen]:
    env = dict(os.environ, MAILFLOW_REDIS_URL=url, MAILFLOW_FOLD_BATCH_ENTRIES="2",
               MAILFLOW_LOG_LEVEL="WARNING")  # fmt: skip
    return [subprocess.Popen([sys.executable, "-m", "service.cli", "worker", "--name", f"w{i}"],
                             env=env) for i in range(count)]  # fmt: skip


@pytest.mark.parametrize("count", [2, 3])
def test_several_workers_at_once_count_exactly(redis_client, settings, clock, count, closing):
    traces, _ = make_traces(20_000, clock.now, seed=50 + count)
    tenants = ("alpha", "beta", "gamma")
    for tenant in tenants:  # known to the workers from their start
        trace_store.register_tenant(redis_client, tenant)
    processes = _workers(settings.effective_redis_url, count)
    try:
        deadline = time.monotonic() + 60
        # Start-up of external processes: wait for every worker's first heartbeat.
        while redis_client.zcard(keys.worker_heartbeats()) < count:
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.05)
        for tenant in tenants:
            ingest_direct(redis_client, traces, clock, tenant=tenant, batch=100)
        deadline = time.monotonic() + 120
        # The workers are the system under test here: poll until they have folded everything.
        while any(redis_client.xlen(keys.stream(t)) for t in tenants):
            assert time.monotonic() < deadline, "the workers did not fold everything"
            time.sleep(0.05)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)  # finish the batch in hand, then exit
        for process in processes:
            assert process.wait(30) == 0
    for tenant in tenants:
        assert total_counted(redis_client, tenant, clock) == 20_000
    group = keys.CONSUMER_GROUP
    readers = {
        c["name"].decode()
        for t in tenants
        for c in redis_client.xinfo_consumers(keys.stream(t), group)
    }
    assert {f"w{i}" for i in range(count)} <= readers, "every worker took part"
