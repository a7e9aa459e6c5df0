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
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import orjson
import redis

from bench.harness import ROOT, UNLIMITED, free_port, gunicorn, make_key, redis_stack
from bench.ingest import counted, make_bodies
from service.config import Settings
from service.store import keys
from service.store.embedded import EmbeddedRedis
from service.worker.loop import Worker

Row = dict[str, Any]


class Shipper:
    """A log shipper: posts every batch until it gets a 202, retrying anything else."""

    def __init__(self, url: str, key: str, bodies: list[bytes]) -> None:
        self.parsed = urlparse(url)
        self.key = key
        self.bodies = bodies
        self.accepted = self.duplicates = self.retries = 0
        self.slowest_error_s = 0.0
        self.answers: Counter[int] = Counter()  # status -> calls (0: no answer)

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
            self.answers[0] += 1
            return False
        self.answers[response.status] += 1
        if response.status == 202:
            result = orjson.loads(reply)
            self.accepted += result["accepted"]
            self.duplicates += result["duplicates"]
            return True
        self.slowest_error_s = max(self.slowest_error_s, time.monotonic() - started)
        return False


_WORKERS: list[subprocess.Popen] = []  # every worker started, stopped after each scenario


def _worker(env: dict[str, str], name: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "service.cli", "worker", "--name", name],
                               env=env, cwd=ROOT)  # fmt: skip
    _WORKERS.append(process)
    return process


def _stop_workers() -> None:
    """A scenario that failed half-way must not leave its workers behind."""
    for process in _WORKERS:
        if process.poll() is None:
            process.terminate()
            process.wait(30)
    _WORKERS.clear()


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
    from service.store.api_keys import create_key

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
            stored = shipper.accepted + shipper.duplicates
            while counted(stack, "bench") < stored and time.monotonic() < deadline:
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
            restarted = EmbeddedRedis(server_dir, port=port).start()
            try:
                time.sleep(2.5)  # let the worker's heartbeat notice
                after = _ready(url)
                worker.terminate()
                worker.wait(30)
            finally:
                restarted.stop()  # the stack stops only the server it started
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


def _refuse_writes(client: redis.Redis, code: str, work_dir: Path) -> Callable[[], None]:
    """Make Redis refuse writes for ``code``; return what makes it take them again."""
    if code == "OOM":
        limit = client.config_get("maxmemory")["maxmemory"]
        client.config_set("maxmemory", 1)
        return lambda: client.config_set("maxmemory", limit)
    # MISCONF: a real failed RDB write (its directory removed under it), as on a full disk.
    home = client.config_get("dir")["dir"]
    gone = work_dir / "disk-gone"
    gone.mkdir()
    client.config_set("save", "3600 1")
    client.config_set("dir", str(gone))
    shutil.rmtree(gone)
    client.bgsave()
    while client.info("persistence")["rdb_bgsave_in_progress"]:
        time.sleep(0.01)

    def accept() -> None:
        client.config_set("dir", home)
        client.config_set("save", "")

    return accept


def writes_refused(code: str, total: int = 100_000, seconds: float = 3.0) -> Row:
    """Redis refuses writes for a few seconds mid-ingest: the shipper gets 503s and retries, the
    worker waits it out; then everything acknowledged is counted, nothing restarted."""
    bodies = make_bodies(total, seed=6, prefix=f"rw-{code}")
    with redis_stack() as stack:
        key = make_key(stack)
        env = dict(stack.env, MAILFLOW_CLAIM_IDLE_SECONDS="1")
        with gunicorn("service.wsgi:app", env) as url:
            worker = _worker(env, "w")
            while not stack.client.zcard(keys.worker_heartbeats()):  # it runs (started up)
                time.sleep(0.05)
            shipper = Shipper(url, key, bodies)
            sending = threading.Thread(target=shipper.run)
            sending.start()
            while not shipper.accepted:  # mid-ingest: once the first batch is in
                time.sleep(0.01)
            accept = _refuse_writes(stack.client, code, stack.data_dir)
            answers_before = Counter(shipper.answers)
            time.sleep(seconds)
            ready = _ready(url)
            during = shipper.answers - answers_before
            accept()
            sending.join()
            deadline = time.monotonic() + 120
            stored = shipper.accepted + shipper.duplicates
            while counted(stack, "bench") < stored and time.monotonic() < deadline:
                time.sleep(0.1)
            worker_alive = worker.poll() is None
            worker.terminate()
            worker.wait(30)
        # Every id is sent once, so a duplicate is a batch stored by an attempt whose answer
        # was lost (a 503 after the store took it): acknowledged all the same.
        return _row(f"Redis refuses writes ({code}) for {seconds:g} s mid-ingest",
                    shipper.accepted + shipper.duplicates, counted(stack, "bench"),
                    f"answers meanwhile {dict(sorted(during.items()))}; /readyz {ready[0]} "
                    f"{'naming ' + code if f'refuses writes: {code}' in ready[1] else ready[1]}; "
                    f"worker {'kept running' if worker_alive else 'EXITED'}; "
                    f"{shipper.duplicates} duplicates")  # fmt: skip


def _snapshot_messages(url: str, key: str) -> int:
    request = urllib.request.Request(url + "/api/v1/mailflow/snapshot?days=7",
                                     headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        directions = orjson.loads(response.read())["directions"]
    return sum(int(d["messages"]) for d in directions.values())


def worker_killed_between_fold_and_refresh(total: int = 20_000) -> list[Row]:
    """A worker SIGKILLed after its fold committed and before it refreshed the tenant's views.
    Counted twice: in the daily counters, and in the snapshot view a client reads, 2 x the
    refresh interval after the kill (another worker must have rebuilt it by then)."""
    from bench.worker_kill import kill_after_fold

    bodies = make_bodies(total, seed=7, prefix="fr")
    half = len(bodies) // 2
    refresh_seconds = 2.0
    with redis_stack() as stack:
        key = make_key(stack)
        env = dict(stack.env, MAILFLOW_CLAIM_IDLE_SECONDS="1",
                   MAILFLOW_REFRESH_SECONDS=str(refresh_seconds))  # fmt: skip
        with gunicorn("service.wsgi:app", env) as url:
            first_worker = _worker(env, "w-first")
            first = Shipper(url, key, bodies[:half])
            first.run()
            deadline = time.monotonic() + 60
            while _snapshot_messages(url, key) < first.accepted:  # folded and refreshed
                assert time.monotonic() < deadline, "the first fold was never refreshed"
                time.sleep(0.05)
            first_worker.terminate()
            first_worker.wait(30)
            second = Shipper(url, key, bodies[half:])  # no worker running: all pending
            second.run()
            acknowledged = first.accepted + second.accepted
            # A real worker process folds the second half, then is SIGKILLed before it can
            # refresh anything: the counters are ahead of every view.
            kill_after_fold(stack.redis_url, datetime.now(UTC))
            counters_at_kill = counted(stack, "bench")
            stale_at_kill = _snapshot_messages(url, key)
            killed_at = time.monotonic()
            worker = _worker(env, "w-new")
            while (_snapshot_messages(url, key) < acknowledged
                   and time.monotonic() - killed_at < 2 * refresh_seconds):  # fmt: skip
                time.sleep(0.05)
            took = time.monotonic() - killed_at
            view = _snapshot_messages(url, key)
            worker.terminate()
            worker.wait(30)
        counters = counted(stack, "bench")
        note = (f"at the kill: counters {counters_at_kill:,}, snapshot {stale_at_kill:,}; " + (
            f"rebuilt by a new worker {took:.1f} s after the kill (its start included)"
            if view == acknowledged else "STALE after 2 x the refresh interval"))  # fmt: skip
        return [
            _row("worker SIGKILL between fold and refresh: daily counters", acknowledged,
                 counters, "the fold and its ack are one script"),
            _row(f"worker SIGKILL between fold and refresh: snapshot view within "
                 f"{2 * refresh_seconds:g} s", acknowledged, view, note),
        ]  # fmt: skip


def _ready_status(url: str) -> int:
    """/readyz's status; 0 while nothing answers (a process starting)."""
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=3) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def _run_command(data_dir: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ, MAILFLOW_DATA_DIR=str(data_dir), MAILFLOW_LOG_LEVEL="WARNING",
               MAILFLOW_CLAIM_IDLE_SECONDS="1", MAILFLOW_RATE_LIMIT_INGEST_PER_MINUTE=UNLIMITED)  # fmt: skip
    env.pop("MAILFLOW_REDIS_URL", None)
    return subprocess.Popen([sys.executable, "-m", "service.cli", "run", "--port", str(port)],
                            env=env, cwd=ROOT, start_new_session=True)  # fmt: skip


def embedded_redis_killed_under_run(total: int = 100_000) -> Row:
    """`mailflow run` on its own: its embedded redis-server SIGKILLed mid-ingest. It restarts
    the server itself; the shipper retries; nobody restarts anything by hand."""
    bodies = make_bodies(total, seed=8, prefix="er")
    data_dir = ROOT / "var" / "faults-run"
    shutil.rmtree(data_dir, ignore_errors=True)
    port = free_port()
    run = _run_command(data_dir, port)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while _ready_status(url) != 200:
            assert run.poll() is None and time.monotonic() < deadline, "mailflow run did not start"
            time.sleep(0.2)
        key = subprocess.run(
            [sys.executable, "-m", "service.cli", "keys", "create", "--tenant", "bench",
             "--scope", "ingest", "--scope", "read"],
            env=dict(os.environ, MAILFLOW_DATA_DIR=str(data_dir), MAILFLOW_REDIS_URL=""),
            capture_output=True, text=True, check=True, cwd=ROOT,
        ).stdout.strip()  # fmt: skip
        shipper = Shipper(url, key, bodies)
        sending = threading.Thread(target=shipper.run)
        sending.start()
        time.sleep(1.0)  # mid-ingest
        pid = int((data_dir / "redis.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        while _ready_status(url) != 200:
            assert time.monotonic() - killed_at < 60, "mailflow run did not restart its Redis"
            time.sleep(0.05)
        back_after = time.monotonic() - killed_at
        sending.join()
        client = redis.Redis.from_url(f"unix://{data_dir / 'redis.sock'}")
        deadline = time.monotonic() + 120
        while _count(client) < shipper.accepted and time.monotonic() < deadline:
            time.sleep(0.1)
        total_counted = _count(client)
        client.close()
    finally:
        os.killpg(run.pid, signal.SIGTERM)
        run.wait(60)
        shutil.rmtree(data_dir, ignore_errors=True)
    return _row("embedded redis-server SIGKILL under `mailflow run`", shipper.accepted,
                total_counted, f"ready again {back_after:.1f} s after the kill (restarted by "
                f"mailflow run); {shipper.retries} retried calls, {shipper.duplicates} "
                "duplicates")  # fmt: skip


SCENARIOS: list[tuple[str, Callable[[], Row | list[Row]]]] = [
    ("worker-kill", worker_sigkills),
    ("redis-kill-always", lambda: redis_sigkill("always")),
    ("redis-kill-everysec", lambda: redis_sigkill("everysec")),
    ("redis-frozen", redis_frozen),
    ("client-kill", client_kills),
    ("workers-2", lambda: several_workers(2)),
    ("workers-3", lambda: several_workers(3)),
    ("writes-refused-oom", lambda: writes_refused("OOM")),
    ("writes-refused-misconf", lambda: writes_refused("MISCONF")),
    ("worker-kill-before-refresh", worker_killed_between_fold_and_refresh),
    ("run-redis-kill", embedded_redis_killed_under_run),
    ("empty-data-dir", empty_data_dir),
]


def main() -> list[Row]:
    from bench.__main__ import markdown_table

    only = set(sys.argv[1:])  # `python -m bench.faults NAME...`: those scenarios only
    rows: list[Row] = []
    for name, scenario in SCENARIOS:
        if only and name not in only:
            continue
        print(f"-- {name}", flush=True)
        try:
            result = scenario()
        finally:
            _stop_workers()
        rows.extend(result if isinstance(result, list) else [result])
        print(rows[-1], flush=True)
    if only:
        print(markdown_table(rows))
        return rows
    table = markdown_table(rows)
    print(table)
    out = ROOT / "bench" / "FAULTS.md"
    out.write_text(f"# mailflow fault runs\n\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
                   f"`make faults`.\n\n{table}")  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
