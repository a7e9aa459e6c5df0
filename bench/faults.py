"""`make faults`: fault scenarios against real processes; acknowledged vs counted for each.

Every scenario runs the real pieces (embedded redis-server, gunicorn, `mailflow worker`
processes), breaks one on purpose, and counts: traces acknowledged by a 202 against traces in
the daily counters at the end. The claim under test: zero lost, zero double counted.
"""

from __future__ import annotations

import http.client
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import orjson
import redis

from bench.harness import ROOT, UNLIMITED, free_port, gunicorn, make_key, redis_stack
from bench.ingest import counted, make_bodies
from service.config import Settings
from service.store.embedded import EmbeddedRedis
from service.worker import Worker

Row = dict[str, Any]


class Shipper:
    """A log shipper: posts every batch until it gets a 202, retrying anything else."""

    def __init__(self, url: str, key: str, bodies: list[bytes]) -> None:
        self.parsed = urlparse(url)
        self.key = key
        self.bodies = bodies
        self.accepted = self.duplicates = self.retries = 0
        self.slowest_error_s = 0.0

    def run(self) -> None:
        for body in self.bodies:
            while not self._send(body):
                self.retries += 1
                time.sleep(0.05)  # a shipper's back-off before the retry

    def _send(self, body: bytes) -> bool:
        started = time.monotonic()
        try:
            connection = http.client.HTTPConnection(self.parsed.hostname, self.parsed.port,
                                                    timeout=30)  # fmt: skip
            connection.request(
                "POST",
                "/api/v1/traces",
                body,
                {"Content-Type": "application/json", "Authorization": f"Bearer {self.key}"},
            )
            response = connection.getresponse()
            reply = response.read()
            connection.close()
        except OSError:
            return False
        if response.status == 202:
            result = orjson.loads(reply)
            self.accepted += result["accepted"]
            self.duplicates += result["duplicates"]
            return True
        self.slowest_error_s = max(self.slowest_error_s, time.monotonic() - started)
        return False


def _worker(env: dict[str, str], name: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "service.cli", "worker", "--name", name],
                            env=env, cwd=ROOT)  # fmt: skip


def _drain(url: str) -> None:
    """After the fault: one burst worker that takes over whatever dead workers left."""
    client = redis.Redis.from_url(url)
    Worker(client, Settings(redis_url=url, claim_idle_seconds=0)).work(burst=True)


def _row(scenario: str, acknowledged: int, total_counted: int, note: str) -> Row:
    return {"scenario": scenario, "acknowledged": acknowledged, "counted": total_counted,
            "lost": max(0, acknowledged - total_counted),
            "double counted": max(0, total_counted - acknowledged), "note": note}  # fmt: skip


def worker_sigkills(total: int = 200_000, kills: int = 5) -> Row:
    rng = random.Random(7)
    bodies = make_bodies(total, seed=1, prefix="wk")
    with redis_stack() as stack:
        env = dict(stack.env, MAILFLOW_CLAIM_IDLE_SECONDS="1", MAILFLOW_FOLD_BATCH_ENTRIES="2")
        key = make_key(stack)
        with gunicorn("service.wsgi:app", env) as url:
            shipper = Shipper(url, key, bodies)
            sending = threading.Thread(target=shipper.run)
            sending.start()
            worker = _worker(env, "w-0")
            for n in range(kills):
                time.sleep(rng.uniform(0.3, 1.5))  # a random moment to strike
                worker.send_signal(signal.SIGKILL)
                worker.wait()
                worker = _worker(env, f"w-{n + 1}")
            sending.join()
            worker.terminate()
            worker.wait(30)
        _drain(stack.redis_url)
        return _row(f"worker SIGKILL x{kills} during a {total:,}-trace ingest",
                    shipper.accepted, counted(stack, "bench"),
                    f"{shipper.duplicates} duplicates on retries")  # fmt: skip


def redis_sigkill(fsync: str, total: int = 100_000) -> Row:
    bodies = make_bodies(total, seed=2, prefix=f"rk-{fsync}")
    data_dir = ROOT / "var" / f"faults-redis-{fsync}"
    shutil.rmtree(data_dir, ignore_errors=True)
    port = free_port()
    server = EmbeddedRedis(data_dir, fsync=fsync, port=port).start()
    env = dict(os.environ, MAILFLOW_REDIS_URL=server.url, MAILFLOW_LOG_LEVEL="ERROR",
               MAILFLOW_RATE_LIMIT_INGEST_PER_MINUTE=UNLIMITED)  # fmt: skip
    client = redis.Redis.from_url(server.url)
    from service.auth import create_key

    key = create_key(client, "bench", ("ingest", "read"), "faults", datetime.now(UTC))
    try:
        with gunicorn("service.wsgi:app", env) as url:
            worker = _worker(env, "w")
            shipper = Shipper(url, key, bodies)
            sending = threading.Thread(target=shipper.run)
            sending.start()
            time.sleep(1.0)  # mid-ingest
            server.kill()  # SIGKILL: no shutdown, no AOF flush beyond what fsync policy did
            time.sleep(0.5)
            server.start()  # same data dir and port: the AOF is replayed
            sending.join()
            worker.terminate()
            worker.wait(30)
        _drain(server.url)
        client = redis.Redis.from_url(server.url)
        total_counted = _count(client)
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    return _row(f"redis-server SIGKILL mid-ingest, appendfsync {fsync}", shipper.accepted,
                total_counted, f"{shipper.retries} retried calls, {shipper.duplicates} "
                "duplicates (batches whose 202 was lost)")  # fmt: skip


def _count(client: redis.Redis) -> int:
    from service.store import aggregates

    today = datetime.now(UTC).date()
    days = [(today - timedelta(days=i)).isoformat() for i in range(8)]
    return sum(
        sum(d.values()) for d in aggregates.read_counters(client, "bench", days).days.values()
    )


def redis_frozen() -> Row:
    with redis_stack() as stack:
        key = make_key(stack)
        server_pid = int((stack.data_dir / "redis" / "redis.pid").read_text())
        with gunicorn("service.wsgi:app", stack.env) as url:
            body = make_bodies(10, seed=3, prefix="fz")[0]
            os.kill(server_pid, signal.SIGSTOP)
            try:
                answers = []
                for _ in range(5):
                    started = time.monotonic()
                    status = _post(url, key, body)
                    answers.append((status, time.monotonic() - started))
            finally:
                os.kill(server_pid, signal.SIGCONT)
            recovered = _post(url, key, body)
        slowest = max(seconds for _, seconds in answers)
        statuses = sorted({status for status, _ in answers})
        return {"scenario": "redis-server frozen (SIGSTOP) for 5 requests", "acknowledged": 0,
                "counted": 0, "lost": 0, "double counted": 0,
                "note": f"answers {statuses}, slowest {slowest:.2f} s; after SIGCONT: {recovered}"}  # fmt: skip


def _post(url: str, key: str, body: bytes) -> int:
    request = urllib.request.Request(url + "/api/v1/traces", data=body, method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {key}"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def client_kills(total: int = 100_000) -> Row:
    bodies = make_bodies(total, seed=4, prefix="ck")
    with redis_stack() as stack:
        key = make_key(stack)
        with gunicorn("service.wsgi:app", stack.env) as url:
            worker = _worker(stack.env, "w")
            stop = threading.Event()
            killed = []

            def kill() -> None:
                while not stop.is_set():
                    killed.append(stack.client.client_kill_filter(_type="normal", skipme=True))
                    stop.wait(0.02)

            killer = threading.Thread(target=kill)
            killer.start()
            shipper = Shipper(url, key, bodies)
            shipper.run()
            stop.set()
            killer.join()
            worker.terminate()
            worker.wait(30)
        _drain(stack.redis_url)
        return _row("CLIENT KILL of every connection each 20 ms, clients retrying",
                    shipper.accepted, counted(stack, "bench"),
                    f"{sum(killed)} connections killed, {shipper.retries} retried calls, "
                    f"{shipper.duplicates} duplicates")  # fmt: skip


def several_workers(count: int, total: int = 200_000) -> Row:
    bodies = make_bodies(total, seed=5, prefix=f"mw{count}")
    with redis_stack() as stack:
        key = make_key(stack)
        env = dict(stack.env, MAILFLOW_FOLD_BATCH_ENTRIES="2")
        with gunicorn("service.wsgi:app", env) as url:
            workers = [_worker(env, f"w{i}") for i in range(count)]
            shipper = Shipper(url, key, bodies)
            shipper.run()
            deadline = time.monotonic() + 120
            while counted(stack, "bench") < shipper.accepted and time.monotonic() < deadline:
                time.sleep(0.05)
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait(30)
        return _row(f"{count} workers at once", shipper.accepted, counted(stack, "bench"),
                    "each tenant refreshed under one lease at a time")  # fmt: skip


def empty_data_dir() -> Row:
    with redis_stack() as stack:
        server_dir = stack.data_dir / "redis"
        port = int(stack.redis_url.rsplit(":", 1)[1].split("/")[0])
        with gunicorn("service.wsgi:app", stack.env) as url:
            worker = _worker(stack.env, "w")
            before = _ready(url)
            pid = int((server_dir / "redis.pid").read_text())
            os.kill(pid, signal.SIGKILL)
            shutil.rmtree(server_dir)
            EmbeddedRedis(server_dir, port=port).start()
            time.sleep(2.5)  # let the worker's heartbeat notice
            after = _ready(url)
            worker.terminate()
            worker.wait(30)
        return {"scenario": "redis-server restarted with an empty data dir", "acknowledged": 0,
                "counted": 0, "lost": 0, "double counted": 0,
                "note": f"/readyz before: {before[0]}; after: {after[0]} ({after[1][:90]})"}  # fmt: skip


def _ready(url: str) -> tuple[int, str]:
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=3) as response:
                return response.status, "ready"
        except urllib.error.HTTPError as error:
            detail = orjson.loads(error.read()).get("detail", "")
            if "heartbeat" not in detail or time.monotonic() > deadline:
                return error.code, detail
            time.sleep(0.2)  # the worker's first heartbeat


SCENARIOS: list[tuple[str, Callable[[], Row]]] = [
    ("worker-kill", worker_sigkills),
    ("redis-kill-always", lambda: redis_sigkill("always")),
    ("redis-kill-everysec", lambda: redis_sigkill("everysec")),
    ("redis-frozen", redis_frozen),
    ("client-kill", client_kills),
    ("workers-2", lambda: several_workers(2)),
    ("workers-3", lambda: several_workers(3)),
    ("empty-data-dir", empty_data_dir),
]


def main() -> list[Row]:
    from bench.__main__ import markdown_table

    rows = []
    for name, scenario in SCENARIOS:
        print(f"-- {name}", flush=True)
        rows.append(scenario())
        print(rows[-1], flush=True)
    table = markdown_table(rows)
    print(table)
    out = ROOT / "bench" / "FAULTS.md"
    out.write_text(f"# mailflow fault runs\n\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
                   f"`make faults`.\n\n{table}")  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
