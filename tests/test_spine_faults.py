"""Crashes and stalls: nothing acknowledged is lost, nothing is counted twice, nothing hangs."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import redis

from service.app import create_app
from service.config import Settings
from service.core.traces import IngestWindow, normalize_trace
from service.store import aggregates, keys
from service.store import traces as trace_store
from service.store.api_keys import create_key
from service.store.embedded import EmbeddedRedis
from service.worker.loop import Worker
from tests.conftest import ALL_SCOPES, TEST_SERVER, KeyedClient, free_port
from tests.helpers import make_traces


def total_counted(client: redis.Redis, tenant: str, clock) -> int:
    days = [(clock.now.date().fromordinal(clock.now.date().toordinal() - i)).isoformat()
            for i in range(7)]  # fmt: skip
    snapshot = aggregates.read_counters(client, tenant, days)
    return sum(sum(day.values()) for day in snapshot.days.values())


def ingest_direct(client, traces, clock, tenant="default", batch=1000):
    """Store traces exactly as the API does (same validation, same Lua call)."""
    window = IngestWindow.at(clock.now, 90)
    accepted = [normalize_trace(t, window) for t in traces]
    trace_store.register_tenant(client, tenant)
    for start in range(0, len(accepted), batch):
        trace_store.ingest(
            client, tenant, accepted[start : start + batch], trace_store.DedupeWindow(clock.now, 7)
        )


def test_a_worker_that_read_entries_and_died_is_taken_over_without_double_counting(
    redis_client, settings, clock
):
    traces, _ = make_traces(3000, clock.now, seed=21)
    ingest_direct(redis_client, traces, clock)
    settings = settings.with_overrides({"claim_idle_seconds": 0, "fold_batch_entries": 2})

    dead = Worker(redis_client, settings, clock=clock, name="dead")
    in_hand = dead._read_new("default")  # read, now pending for "dead" ...
    assert len(in_hand) == 2  # ... which dies before folding them

    survivor = Worker(redis_client, settings, clock=clock, name="survivor")
    stats = survivor.work(burst=True)
    assert stats.claimed == 2
    assert total_counted(redis_client, "default", clock) == 3000

    # The presumed-dead worker wakes up and tries to fold what it had read: skipped, not counted.
    late = aggregates.fold(redis_client, "default", "dead", in_hand, 90, clock.now)
    assert (late.entries, late.skipped) == (0, 2)
    assert total_counted(redis_client, "default", clock) == 3000
    assert redis_client.xlen(keys.stream("default")) == 0  # folded entries are trimmed


def _worker_process(settings: Settings, name: str, burst: bool = False) -> subprocess.Popen:
    env = dict(os.environ, MAILFLOW_REDIS_URL=settings.effective_redis_url,
               MAILFLOW_FOLD_BATCH_ENTRIES="1", MAILFLOW_CLAIM_IDLE_SECONDS="0",
               MAILFLOW_LOG_LEVEL="WARNING")  # fmt: skip
    command = [sys.executable, "-m", "service.cli", "worker", "--name", name]
    return subprocess.Popen(command + (["--burst"] if burst else []), env=env)


def test_sigkill_of_the_worker_mid_fold_then_restart_counts_exactly(redis_client, settings, clock):
    rng = random.Random(4)
    traces, _ = make_traces(60_000, clock.now, seed=8)
    ingest_direct(redis_client, traces, clock, batch=500)  # 120 stream entries
    for round_number in range(3):
        worker = _worker_process(settings, f"doomed-{round_number}")
        # Let it get somewhere first; this polls for a chance to kill, not for a result.
        deadline = time.monotonic() + 30
        start_version = aggregates.data_version(redis_client, "default")
        while aggregates.data_version(redis_client, "default") < start_version + rng.randint(1, 5):
            assert time.monotonic() < deadline, "worker made no progress"
            time.sleep(0.002)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    assert redis_client.xlen(keys.stream("default")) > 0, "the kills should leave work behind"
    restarted = _worker_process(settings, "restarted", burst=True)
    assert restarted.wait(60) == 0
    assert total_counted(redis_client, "default", clock) == 60_000
    assert redis_client.xlen(keys.stream("default")) == 0


@pytest.fixture
def private_redis(tmp_path):
    server = EmbeddedRedis(
        tmp_path / "redis", port=free_port(), fsync="always", server=TEST_SERVER
    ).start()
    yield server
    if server.process and server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGCONT)
    server.stop()


def test_a_frozen_redis_gives_503_within_two_seconds_and_recovers(private_redis, clock, closing):
    app = closing(create_app({"redis_url": private_redis.url, "CLOCK": clock}))
    key = create_key(
        closing(redis.Redis.from_url(private_redis.url)), "default", ALL_SCOPES, "t", clock.now
    )
    client = type("C", (KeyedClient,), {"default_key": key})(app)
    trace = [{"timestamp": clock.now.isoformat(), "direction": "inbound", "tls_version": "TLS1.3"}]
    assert client.post("/api/v1/traces", json=trace).status_code == 202
    # A process that has served nothing yet: its first request also tries to subscribe to the
    # near cache's invalidations, and must still answer within 2 s.
    fresh = closing(create_app({"redis_url": private_redis.url, "CLOCK": clock}))
    fresh_client = type("C", (KeyedClient,), {"default_key": key})(fresh)

    os.kill(private_redis.process.pid, signal.SIGSTOP)
    try:
        for client_now, method, path in (
            (fresh_client, "post", "/api/v1/traces"), (client, "post", "/api/v1/traces"),
            (client, "get", "/api/v1/mailflow/snapshot"), (client, "get", "/readyz"),
        ):  # fmt: skip
            started = time.monotonic()
            response = getattr(client_now, method)(path, json=trace if method == "post" else None)
            elapsed = time.monotonic() - started
            assert response.status_code == 503, (path, response.data)
            assert elapsed < 2.0, (path, elapsed)
            if path != "/readyz":
                assert response.headers["Retry-After"]
                assert response.mimetype == "application/problem+json"
    finally:
        os.kill(private_redis.process.pid, signal.SIGCONT)
    other = [dict(trace[0], id="after-thaw")]
    assert client.post("/api/v1/traces", json=other).status_code == 202


def test_acknowledged_traces_survive_a_sigkill_of_redis(private_redis, clock, closing):
    client = closing(redis.Redis.from_url(private_redis.url))
    traces, _ = make_traces(5000, clock.now, seed=30)
    ingest_direct(client, traces, clock)  # every call returned: acknowledged
    private_redis.kill()
    private_redis.start()  # same data dir: the AOF is replayed
    settings = Settings(redis_url=private_redis.url)
    after_restart = closing(redis.Redis.from_url(private_redis.url))
    Worker(after_restart, settings, clock=clock).work(burst=True)
    assert total_counted(after_restart, "default", clock) == 5000
