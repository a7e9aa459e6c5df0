"""`mailflow run` end to end: acknowledged traces survive a SIGKILL of its embedded Redis."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import redis

from service.config import Settings
from service.store import aggregates
from service.store.embedded import EmbeddedRedis
from service.worker.loop import Worker
from tests.conftest import TEST_SERVER, free_port
from tests.helpers import make_traces


def _start_run(data_dir: Path, port: int, fsync: str) -> subprocess.Popen:
    env = dict(os.environ, MAILFLOW_DATA_DIR=str(data_dir), MAILFLOW_WEB_WORKERS="1",
               MAILFLOW_LOG_LEVEL="WARNING", MAILFLOW_REDIS_FSYNC=fsync)  # fmt: skip
    env.pop("MAILFLOW_REDIS_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "run", "--port", str(port)], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:  # start-up of an external process: poll until it answers
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return process
        except OSError:
            assert process.poll() is None, "mailflow run exited"
            assert time.monotonic() < deadline, "mailflow run did not start"
            time.sleep(0.1)


def _create_key(data_dir: Path) -> str:
    env = dict(os.environ, MAILFLOW_DATA_DIR=str(data_dir))
    env.pop("MAILFLOW_REDIS_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "keys", "create", "--tenant", "default",
         "--scope", "ingest", "--scope", "read"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.strip()


def _post(port: int, key: str, traces: list[dict]) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/traces", method="POST",
        data=gzip.compress(json.dumps(traces).encode()),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip",
                 "Authorization": f"Bearer {key}"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202
        return json.load(response)


@pytest.mark.parametrize("fsync", ["everysec", "always"])
def test_mailflow_run_restarted_after_redis_sigkill_counts_every_acknowledged_trace(
    tmp_path, clock, fsync
):
    from datetime import UTC, datetime

    clock.now = datetime.now(UTC)
    data_dir, port = tmp_path / "var", free_port()
    run = _start_run(data_dir, port, fsync)
    try:
        key = _create_key(data_dir)
        traces, _ = make_traces(20_000, clock.now, seed=77, days=3)
        replies = [_post(port, key, traces[i : i + 5000]) for i in range(0, len(traces), 5000)]
        acknowledged = sum(reply["accepted"] for reply in replies)
        assert acknowledged == 20_000
        redis_pid = int((data_dir / "redis.pid").read_text())
        os.kill(redis_pid, signal.SIGKILL)  # default appendfsync everysec
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()

    run = _start_run(data_dir, port, fsync)  # the same data dir: Redis replays its AOF
    os.killpg(run.pid, signal.SIGTERM)  # a clean stop: worker finishes its batch, Redis exits
    assert run.wait(60) == 0

    server = EmbeddedRedis(data_dir, server=TEST_SERVER).start()
    client = redis.Redis.from_url(server.url)
    try:
        # The first run's worker may have died holding entries: claim them at once.
        settings = Settings(redis_url=server.url, claim_idle_seconds=0)
        Worker(client, settings, clock=clock).work(burst=True)
        days = [d.isoformat() for d in (clock.now.date().fromordinal(clock.now.date().toordinal() - i)
                                        for i in range(4))]  # fmt: skip
        counters = aggregates.read_counters(client, "default", days)
        assert sum(sum(day.values()) for day in counters.days.values()) == acknowledged
    finally:
        client.close()
        server.stop()
