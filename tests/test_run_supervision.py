"""`mailflow run` supervises its children: a SIGKILLed embedded Redis or worker is restarted
(with backoff, logged), the API keeps serving, and every acknowledged trace is counted."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import redis

from service.store import keys
from tests.conftest import free_port
from tests.helpers import make_traces
from tests.test_run_durability import _create_key
from tests.test_spine_faults import total_counted


def _until(what: str, condition: Callable[[], object], seconds: float = 60) -> None:
    """`mailflow run` is an external process under test: poll it, with a deadline."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"mailflow run did not {what} in {seconds} s"
        time.sleep(0.1)


def _status(url: str, data: bytes | None = None, key: str = "") -> int:
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip",
               "Authorization": f"Bearer {key}"} if data else {}  # fmt: skip
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def _worker_pids(client: redis.Redis) -> set[int]:
    return {
        int(m.decode().rsplit(":", 1)[1]) for m in client.zrange(keys.worker_heartbeats(), 0, -1)
    }


def test_mailflow_run_restarts_a_killed_redis_and_worker_and_counts_everything(tmp_path, clock):
    clock.now = datetime.now(UTC)
    data_dir, port = tmp_path / "var", free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, MAILFLOW_DATA_DIR=str(data_dir), MAILFLOW_WEB_WORKERS="1",
               MAILFLOW_LOG_LEVEL="WARNING", MAILFLOW_CLAIM_IDLE_SECONDS="1")  # fmt: skip
    env.pop("MAILFLOW_REDIS_URL", None)
    log = tmp_path / "run.log"
    with log.open("wb") as output:
        run = subprocess.Popen([sys.executable, "-m", "service.cli", "run", "--port", str(port)],
                               env=env, stdout=output, stderr=output, start_new_session=True)  # fmt: skip
    client = None
    try:
        _until("start", lambda: _status(base + "/readyz") == 200)
        key = _create_key(data_dir)
        traces, _ = make_traces(6000, clock.now, seed=88, days=3)
        bodies = [gzip.compress(json.dumps(traces[i : i + 2000]).encode()) for i in (0, 2000, 4000)]

        def post(body: bytes) -> bool:
            return _status(base + "/api/v1/traces", body, key) == 202

        assert post(bodies[0])
        redis_pid = int((data_dir / "redis.pid").read_text())
        os.kill(redis_pid, signal.SIGKILL)
        _until("restart its Redis", lambda: _status(base + "/readyz") == 200)
        assert int((data_dir / "redis.pid").read_text()) != redis_pid
        _until("take traces again", lambda: post(bodies[1]))

        client = redis.Redis.from_url(f"unix://{data_dir / 'redis.sock'}")
        newest = client.zrange(keys.worker_heartbeats(), -1, -1)[0].decode()
        worker_pid, known = int(newest.rsplit(":", 1)[1]), _worker_pids(client)
        os.kill(worker_pid, signal.SIGKILL)  # it may die holding entries: they are claimed
        _until("restart its worker", lambda: _worker_pids(client) - known)
        assert post(bodies[2])
        _until("count every acknowledged trace",
               lambda: total_counted(client, "default", clock) == 6000)  # fmt: skip
        assert _status(base + "/readyz") == 200
    finally:
        if client is not None:
            client.close()
        os.killpg(run.pid, signal.SIGTERM)
        code = run.wait(60)
    assert code == 0
    said = log.read_text()
    assert "embedded redis-server exited" in said and "worker exited" in said, said
    assert not Path(data_dir / "redis.sock").exists()  # Redis stopped with it


def test_mailflow_run_on_a_port_in_use_says_so_and_exits(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = dict(os.environ, MAILFLOW_DATA_DIR=str(tmp_path / "var"))
        env.pop("MAILFLOW_REDIS_URL", None)
        result = subprocess.run([sys.executable, "-m", "service.cli", "run", "--port", str(port)],
                                env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode != 0 and f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert not (tmp_path / "var").exists()  # nothing started
