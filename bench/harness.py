"""Starting the real processes a benchmark measures: embedded Redis, gunicorn, workers, wrk."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from bench.process_cpu import processes
from service.config import Settings
from service.store.api_keys import create_key
from service.store.embedded import EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parents[1]
UNLIMITED = str(10**9)


@dataclass
class Stack:
    redis_url: str
    client: redis.Redis
    env: dict[str, str]
    data_dir: Path


def embedded_server() -> str:
    """The embedded server the benchmarks start: MAILFLOW_EMBEDDED_SERVER, as `mailflow run`."""
    return Settings.from_env().embedded_server


@contextmanager
def redis_stack(fsync: str = "everysec", server_name: str | None = None) -> Iterator[Stack]:
    """An embedded Redis in a temp dir, and the environment every process of the run shares.
    ``server_name``: one of EMBEDDED_SERVERS; None: the configured one (``embedded_server``)."""
    data_dir = Path(tempfile.mkdtemp(prefix="mailflow-bench-"))
    server = EmbeddedRedis(
        data_dir / "redis", fsync=fsync, port=free_port(), server=server_name or embedded_server()
    ).start()
    env = dict(os.environ, MAILFLOW_REDIS_URL=server.url, MAILFLOW_LOG_LEVEL="WARNING",
               MAILFLOW_RATE_LIMIT_PER_MINUTE=UNLIMITED,
               MAILFLOW_RATE_LIMIT_INGEST_PER_MINUTE=UNLIMITED)  # fmt: skip
    try:
        yield Stack(server.url, redis.Redis.from_url(server.url), env, data_dir)
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def gunicorn_command(app: str, port: int, workers: int, threads: int) -> list[str]:
    """mailflow's own gunicorn settings for every app measured, so that only the app differs."""
    return [
        sys.executable, "-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}",
        "--config", "python:service.gunicorn_conf", "--workers", str(workers),
        "--threads", str(threads), "--access-logfile", "/dev/null", "--log-level", "warning",
    ]  # fmt: skip


SERVER_PIDS: dict[str, int] = {}  # base URL -> gunicorn master pid


def tree_cpu_seconds(pid: int) -> float:
    """CPU (user + system) used so far by a process and its children (gunicorn's workers)."""
    return sum(seconds for found, (parent, seconds, _) in processes().items()
               if pid in (found, parent))  # fmt: skip


@contextmanager
def gunicorn(app: str, env: dict[str, str], workers: int = 2, threads: int = 4) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(gunicorn_command(app, port, workers, threads), env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    SERVER_PIDS[url] = process.pid
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn {app} did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(20)


@contextmanager
def workers(env: dict[str, str], count: int = 1) -> Iterator[list[subprocess.Popen]]:
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "service.cli", "worker", "--name", f"bench-{i}"],
            env=env,
            cwd=ROOT,
        )  # fmt: skip
        for i in range(count)
    ]
    try:
        yield processes
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)


def make_key(stack: Stack, tenant: str = "bench") -> str:
    from datetime import UTC, datetime

    return create_key(stack.client, tenant, ("read", "ingest", "admin"), "bench", datetime.now(UTC))


def ensure_wrk() -> str | None:
    """wrk from Debian's packages; installed on first use when we may (root), else None."""
    found = shutil.which("wrk")
    if found or os.geteuid() != 0:
        return found
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return shutil.which("wrk")


@dataclass
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int


def run_wrk(url: str, seconds: int, connections: int, headers: dict[str, str],
            rate: int | None = None) -> WrkResult:  # fmt: skip
    wrk = ensure_wrk()
    if wrk is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    command = [wrk, "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(command + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return WrkResult(rps, _latency(output, "50%"), _latency(output, "99%"),
                     int(non_2xx.group(1)) if non_2xx else 0)  # fmt: skip


def _latency(output: str, percentile: str) -> float:
    match = re.search(rf"{re.escape(percentile)}\s+([\d.]+)(us|ms|s)\b", output)
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
