"""Two API processes and three worker processes on a cluster, tenants on every master.

Counts are exact; a worker SIGKILLed while it holds unacked entries has them taken over by the
others (XAUTOCLAIM); a tenant's views are rebuilt by one worker at a time (the refresh lease).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import ExitStack
from datetime import UTC, datetime

import orjson

from bench.harness import ROOT, UNLIMITED, gunicorn
from service.config import Settings
from service.store import keys
from service.store.api_keys import create_key
from service.store.connection import connect_url
from service.worker.loop import Worker
from tests.cluster.support import Sender, tenants_on_every_master, total_counted, trace_batches
from tests.conftest import ALL_SCOPES

PER_TENANT = 4000
BATCH = 100


def _poll(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)  # waiting on separate worker processes, which have no burst mode here


def _pending_of(store, tenants: list[str], consumer: str) -> int:
    total = 0
    for tenant in tenants:
        if store.exists(keys.stream(tenant)):
            for row in store.xpending(keys.stream(tenant), keys.CONSUMER_GROUP)["consumers"]:
                if row["name"] == consumer.encode() or row["name"] == consumer:
                    total += int(row["pending"])
    return total


DIES_HOLDING_ENTRIES = """
import os, signal, sys
from service.config import Settings
from service.store.connection import connect
from service.worker.loop import Worker
settings = Settings.from_env()
worker = Worker(connect(settings), settings, name="w0")
for tenant in sys.argv[1:]:
    worker._read_new(tenant)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_two_apis_three_workers_a_killed_worker_exact_counts(cluster):
    tenants = [t for names in tenants_on_every_master(cluster, 2).values() for t in names]
    now = datetime.now(UTC)
    store = connect_url(cluster.url)
    api_keys = {t: create_key(store, t, ALL_SCOPES, "t", now) for t in tenants}
    env = dict(os.environ, MAILFLOW_REDIS_URL=cluster.url, MAILFLOW_LOG_LEVEL="WARNING",
               MAILFLOW_CLAIM_IDLE_SECONDS="1", MAILFLOW_REFRESH_SECONDS="0.5",
                              MAILFLOW_RATE_LIMIT_PER_MINUTE=UNLIMITED,
               MAILFLOW_RATE_LIMIT_INGEST_PER_MINUTE=UNLIMITED)  # fmt: skip
    with ExitStack() as stack:
        apis = [stack.enter_context(gunicorn("service.wsgi:app", env, workers=1, threads=4))
                for _ in range(2)]  # fmt: skip
        senders = {t: Sender() for t in tenants}
        batches = {t: trace_batches(t, PER_TENANT, BATCH, now) for t in tenants}
        deadline = time.monotonic() + 180

        def send_wave(wave: int) -> None:
            def send(tenant: str, which: int) -> None:
                half = len(batches[tenant]) // 2
                chosen = batches[tenant][:half] if wave == 0 else batches[tenant][half:]
                for n, batch in enumerate(chosen):
                    senders[tenant].post(apis[(n + which) % 2], api_keys[tenant], batch, deadline)

            threads = [threading.Thread(target=send, args=(t, i)) for i, t in enumerate(tenants)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        # A backlog first; then a worker process reads its entries of every tenant and is
        # SIGKILLed before it folds them (what a crash mid-batch leaves behind). Three
        # workers start and take those over while the second half arrives.
        send_wave(0)
        subprocess.run([sys.executable, "-c", DIES_HOLDING_ENTRIES, *tenants], env=env,
                       cwd=ROOT, check=False)  # fmt: skip
        held = _pending_of(store, tenants, "w0")
        workers = [subprocess.Popen([sys.executable, "-m", "service.cli", "worker", "--name",
                                     f"w{i}"], env=env, cwd=ROOT) for i in (1, 2, 3)]  # fmt: skip
        stack.callback(_stop_all, workers)
        send_wave(1)
        assert all(len(s.acknowledged) == PER_TENANT for s in senders.values())
        _poll(lambda: all(total_counted(store, t, now) >= PER_TENANT for t in tenants), 120,
              "the surviving workers to fold everything")  # fmt: skip
        assert held > 0
        assert {t: total_counted(store, t, now) for t in tenants} == dict.fromkeys(
            tenants, PER_TENANT
        )
        assert _pending_of(store, tenants, "w0") == 0  # taken over, not left behind

        def snapshots_true() -> bool:
            for n, tenant in enumerate(tenants):
                request = urllib.request.Request(apis[n % 2] + "/api/v1/mailflow/snapshot",
                    headers={"Authorization": f"Bearer {api_keys[tenant]}"})  # fmt: skip
                with urllib.request.urlopen(request, timeout=5) as response:
                    body = orjson.loads(response.read())
                if sum(d["messages"] for d in body["directions"].values()) != PER_TENANT:
                    return False
            return True

        _poll(snapshots_true, 60, "every tenant's views to be rebuilt")
    store.close()


def _stop_all(workers: list[subprocess.Popen]) -> None:
    for process in workers:
        if process.poll() is None:
            process.terminate()
    for process in workers:
        process.wait(30)


def test_one_worker_at_a_time_rebuilds_a_tenants_views(cluster):
    """Two workers on the cluster: the one without the tenant's refresh lease builds nothing."""
    tenant = tenants_on_every_master(cluster)[cluster.masters_now()[0].port][0]
    now = datetime.now(UTC)
    settings = Settings(redis_url=cluster.url, refresh_seconds=0)
    with connect_url(cluster.url) as store:
        from service.core.traces import IngestWindow, normalize_trace
        from service.store import traces as trace_store

        window = IngestWindow.at(now, 90)
        (batch,) = trace_batches(tenant, 50, 50, now)
        trace_store.register_tenant(store, tenant)
        trace_store.ingest(
            store,
            tenant,
            [normalize_trace(t, window) for t in batch],
            trace_store.DedupeWindow(now, 1),
        )
        holder = Worker(store, settings, name="holder")
        other = Worker(store, settings, name="other")
        other.fold_all()
        assert holder._take_lease(tenant)  # holder is rebuilding this tenant right now
        other.refresh_due(force=True)
        assert other.stats.views_built == 0  # it waits its turn; its change stays pending
        store.delete(keys.refresh_lease(tenant))  # the holder finished (or its lease expired)
        other.refresh_due(force=True)
        assert other.stats.views_built > 0
