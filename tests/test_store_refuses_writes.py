"""A Redis that answers but refuses writes (OOM, MISCONF, READONLY): 503 + Retry-After on every
endpoint that writes (reads still answer), /readyz says why, the worker waits it out, and every acknowledged trace is counted
once Redis takes writes again, with nothing restarted."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from service.app import create_app
from service.config import Settings
from service.store import health
from service.store.api_keys import create_key
from service.store.embedded import EmbeddedRedis
from service.store.local_cluster import LocalCluster
from service.worker.loop import Worker
from tests.conftest import ALL_SCOPES, TEST_SERVER, KeyedClient, free_port
from tests.helpers import make_traces
from tests.test_spine_faults import total_counted


@dataclass
class Refusal:
    """A Redis made to refuse writes for one reason, and the way to make it take them again."""

    code: str  # the error code /readyz names
    url: str
    refuse: Callable[[], None]
    accept: Callable[[], None]


def _out_of_memory(server: EmbeddedRedis, admin: redis.Redis) -> Refusal:
    limit = admin.config_get("maxmemory")["maxmemory"]
    return Refusal("OOM", server.url, lambda: admin.config_set("maxmemory", 1),
                   lambda: admin.config_set("maxmemory", limit))  # fmt: skip


def _failed_persistence(server: EmbeddedRedis, admin: redis.Redis, tmp_path: Path) -> Refusal:
    """A real failed RDB write: BGSAVE into a directory that was removed under Redis."""
    home = str(server.data_dir)

    def refuse() -> None:
        gone = tmp_path / "disk-gone"
        gone.mkdir()
        admin.config_set("save", "3600 1")  # snapshots configured: their failure stops writes
        admin.config_set("dir", str(gone))
        shutil.rmtree(gone)
        admin.bgsave()
        deadline = time.monotonic() + 10
        # BGSAVE forks a child: poll Redis (not our worker) until it has failed.
        while admin.info("persistence")["rdb_bgsave_in_progress"]:
            assert time.monotonic() < deadline, "BGSAVE did not finish"
            time.sleep(0.01)
        assert admin.info("persistence")["rdb_last_bgsave_status"] == "err"

    def accept() -> None:
        admin.config_set("dir", home)
        admin.config_set("save", "")  # no snapshots: a failed one no longer stops writes

    return Refusal("MISCONF", server.url, refuse, accept)


def _replica(server: EmbeddedRedis, admin: redis.Redis) -> Refusal:
    """The old master after a failover: a replica (of a master that is gone) is read-only."""
    return Refusal("READONLY", server.url,
                   lambda: admin.replicaof("127.0.0.1", free_port()),
                   lambda: admin.replicaof("no", "one"))  # fmt: skip


@pytest.fixture(params=["OOM", "MISCONF", "READONLY"])
def refusal(request, redis_server, tmp_path) -> Iterator[Refusal]:
    """OOM on the shared test server (its limit restored after); MISCONF and READONLY on a
    throwaway server of this test, since they change its persistence and its role."""
    if request.param == "OOM":
        if isinstance(redis_server, LocalCluster):
            pytest.skip("CONFIG SET on one node of a cluster")
        server, own = redis_server, False
    else:
        # Valkey (as Redis 7) lets CONFIG SET move `dir` only when protected configs are on.
        protected = ["--enable-protected-configs", "yes"] if TEST_SERVER == "valkey" else []
        server, own = EmbeddedRedis(tmp_path / "redis", port=free_port(), server=TEST_SERVER,
                                    extra_args=protected).start(), True  # fmt: skip
    admin = redis.Redis.from_url(server.url)
    admin.flushall()
    made = {"OOM": lambda: _out_of_memory(server, admin),
            "MISCONF": lambda: _failed_persistence(server, admin, tmp_path),
            "READONLY": lambda: _replica(server, admin)}[request.param]()  # fmt: skip
    try:
        yield made
    finally:
        made.accept()  # idempotent: the test may have done it already
        admin.flushall()
        admin.close()
        if own:
            server.stop()


class _LiftOnWarning(logging.Handler):
    """Sees the worker's warning about the refusal, then lets Redis take writes again: the
    worker's own loop (not a restart) must then fold what it had read."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(logging.WARNING)
        self.refusal = refusal
        self.warnings: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.warnings.append(record.getMessage())
        if len(self.warnings) == 1:
            self.refusal.accept()


def test_writes_refused_are_503_then_counted_once_redis_takes_them(refusal, clock, closing):
    admin = closing(redis.Redis.from_url(refusal.url))
    app = closing(create_app({"redis_url": refusal.url, "CLOCK": clock}))
    key = create_key(admin, "default", ALL_SCOPES, "k", clock.now)
    web = type("Web", (KeyedClient,), {"default_key": key})(app)
    health.claim_instance(admin, None)  # the store's id, as after a worker's first start
    traces, _ = make_traces(400, clock.now, seed=12)
    assert web.post("/api/v1/traces", json=traces[:200]).status_code == 202

    refusal.refuse()
    # Reads answer from what is stored (tests/test_reads_at_memory_limit.py); writes are 503.
    for read in ("/api/v1/mailflow/snapshot", "/api/v1/connectors?days=30"):
        assert web.get(read).status_code == 200, (refusal.code, read)
    for answer in (web.post("/api/v1/traces", json=traces[200:]),
                   web.put("/api/v1/insight-rules/inbound-partner-tls10", json={"enabled": True})):  # fmt: skip
        assert answer.status_code == 503, (refusal.code, answer.request.path, answer.data)
        assert answer.mimetype == "application/problem+json"
        assert answer.headers["Retry-After"].isdigit()
        assert answer.json["type"] == "/problems/store-refuses-writes"
    ready = web.get("/readyz")
    assert ready.status_code == 503 and ready.headers["Retry-After"]
    assert ready.json["checks"]["redis"].startswith(f"redis refuses writes: {refusal.code}")

    # The worker's real loop: it logs, waits, and keeps going (it used to exit on OOM).
    lift = _LiftOnWarning(refusal)
    worker_log = logging.getLogger("mailflow.worker")
    worker_log.addHandler(lift)
    worker = Worker(closing(redis.Redis.from_url(refusal.url)),
                    Settings(redis_url=refusal.url, claim_idle_seconds=0), clock=clock,
                    sleep=lambda seconds: clock.advance(seconds=seconds))  # fmt: skip
    try:
        # Redis still refuses when the loop starts; it returns once it has folded the traces
        # (or after 10 minutes of its clock, which would fail below).
        deadline = clock.now + timedelta(minutes=10)
        stats = worker.work(until=lambda: worker.stats.traces >= 200 or clock.now > deadline)
    finally:
        worker_log.removeHandler(lift)
    assert lift.warnings and f"redis refuses writes: {refusal.code}" in lift.warnings[0]
    assert stats.traces == 200
    assert total_counted(admin, "default", clock) == 200

    # Redis takes writes again: the API too, with no restart; nothing counted twice.
    assert web.post("/api/v1/traces", json=traces[200:]).status_code == 202
    assert web.post("/api/v1/traces", json=traces[:200]).json["duplicates"] == 200
    Worker(admin, Settings(redis_url=refusal.url), clock=clock).work(burst=True)
    assert total_counted(admin, "default", clock) == 400
    assert web.get("/readyz").json["checks"]["redis"] == "ok"


def test_traces_stored_before_a_refused_worker_signal_are_a_202(
    redis_server, redis_client, clock, closing, run_worker
):
    """Redis may start refusing writes between the ingest script and the signal to the workers.
    The traces are stored by then: the answer is the 202 (a 503 would make the client resend
    what is already counted), and the worker's sweep finds the tenant without the signal."""
    if isinstance(redis_server, LocalCluster):
        pytest.skip("an ACL user is set on one server")
    # A user that may use every key of mailflow but the signal set: its SADD there is refused
    # (NOPERM), as a write refused from that moment on would be.
    redis_client.acl_setuser(
        "nosignal", enabled=True, passwords=["+pw"], commands=["+@all"], channels=["*"],
        keys=["mf:{*", "mf:tenants", "mf:metrics", "mf:apikeys", "mf:instance", "mf:worker*",
              "mf:cursor-secret", "mf:store:format"],
    )  # fmt: skip
    try:
        url = redis_server.url.replace("redis://", "redis://nosignal:pw@", 1)
        app = closing(create_app({"redis_url": url, "CLOCK": clock}))
        key = create_key(redis_client, "default", ALL_SCOPES, "k", clock.now)
        web = type("Web", (KeyedClient,), {"default_key": key})(app)
        traces, _ = make_traces(50, clock.now, seed=21)
        answer = web.post("/api/v1/traces", json=traces)
        assert answer.status_code == 202, answer.data
        assert answer.json["accepted"] == 50
        assert not redis_client.exists("mf:tenants:new-entries")  # the signal was refused
        run_worker()
        assert total_counted(redis_client, "default", clock) == 50
    finally:
        redis_client.acl_deluser("nosignal")
