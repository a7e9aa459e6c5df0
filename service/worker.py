"""The worker: fold streams into daily counters, then refresh views of changed tenants.

The loop is flat (see rq): check the stop flag, fold one batch per tenant, refresh what is due,
heartbeat, and wait a little only when there was nothing to do. Signals only set the flag, so a
SIGTERM lets the batch in hand finish. ``burst=True`` runs until the streams are empty, refreshes
every changed tenant at once and returns: tests drive the worker that way, without sleeping.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis

from service.config import Settings
from service.core.fold import EntryIncrements, entry_increments
from service.metrics import METRICS
from service.refresh import EVALUATE_EVERY_SECONDS, evaluate_all, refresh_tenant
from service.store import aggregates, health, keys
from service.store.availability import STORE_UNAVAILABLE, describe, is_unavailable
from service.store.scripts import script

log = logging.getLogger("mailflow.worker")
IDLE_WAIT_SECONDS = 0.05
STORE_RETRY_SECONDS = 0.5
TENANT_LIST_SECONDS = 1.0
HEARTBEAT_SECONDS = 1.0


@dataclass
class WorkerStats:
    entries: int = 0
    traces: int = 0
    skipped: int = 0
    claimed: int = 0
    views_built: int = 0


@dataclass
class Worker:
    client: redis.Redis
    settings: Settings
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    stats: WorkerStats = field(default_factory=WorkerStats)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._tenants: list[str] = []
        self._tenants_read_at = -1e9
        self._last_claim_at: dict[str, float] = {}
        self._changed: set[str] = set()
        self._refreshed_at: dict[str, float] = {}
        self._last_beat = -1e9
        self._instance: str | None = None
        self._evaluated_at = -1e9

    # -- control ---------------------------------------------------------------------------

    def request_stop(self, *_: object) -> None:
        self._stop.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def work(self, burst: bool = False) -> WorkerStats:
        self._instance = health.claim_instance(self.client, self._instance)
        log.info("worker %s started", self.name)
        try:
            while not self._stop.is_set():
                try:
                    folded = self.fold_all()
                    self.refresh_due(force=burst and not folded)
                    self.heartbeat()
                except redis.RedisError as error:
                    # Redis down, stalled, failing over, or refusing writes (OOM, MISCONF,
                    # READONLY): wait and carry on; what was read but not folded stays pending
                    # in the stream and is claimed again.
                    if burst or not is_unavailable(error):
                        raise
                    log.warning("worker %s: %s, retrying in %g s: %s", self.name,
                                describe(error), STORE_RETRY_SECONDS, error)  # fmt: skip
                    self._stop.wait(STORE_RETRY_SECONDS)
                    continue
                if burst and not folded:
                    break
                if not folded:
                    self._stop.wait(IDLE_WAIT_SECONDS)
        finally:
            with contextlib.suppress(*STORE_UNAVAILABLE):  # stopping while Redis is down
                METRICS.flush(self.client)
                if not burst:
                    health.forget_worker(self.client, self.name)
            log.info("worker %s stopped: %s", self.name, self.stats)
        return self.stats

    # -- folding ---------------------------------------------------------------------------

    def tenants(self) -> list[str]:
        now = time.monotonic()
        if now - self._tenants_read_at >= TENANT_LIST_SECONDS:
            self._tenants = sorted(m.decode() for m in self.client.smembers(keys.tenants()))
            self._tenants_read_at = now
        return self._tenants

    def fold_all(self) -> int:
        """One batch per tenant; the number of traces folded."""
        total = 0
        for tenant in self.tenants():
            if self._stop.is_set():
                break
            total += self.fold_tenant(tenant)
        return total

    def fold_tenant(self, tenant: str) -> int:
        started = time.perf_counter()
        entries = self._claim_abandoned(tenant) + self._read_new(tenant)
        if not entries:
            return 0
        result = aggregates.fold(
            self.client, tenant, self.name, entries, self.settings.retention_days
        )
        METRICS.observe("mailflow_fold_duration_seconds", (), time.perf_counter() - started)
        METRICS.inc("mailflow_fold_batches_total")
        METRICS.inc("mailflow_folded_traces_total", (), result.traces)
        self.stats.entries += result.entries
        self.stats.traces += result.traces
        self.stats.skipped += result.skipped
        if result.entries:
            self._changed.add(tenant)
        return result.traces

    def _read_new(self, tenant: str) -> list[EntryIncrements]:
        try:
            reply = self.client.xreadgroup(
                keys.CONSUMER_GROUP, self.name, {keys.stream(tenant): ">"},
                count=self.settings.fold_batch_entries,
            )  # fmt: skip
        except redis.ResponseError as error:
            if "NOGROUP" in str(error):  # registered, but nothing ingested yet
                return []
            raise
        return [_increments(entry_id, data) for _, entries in reply for entry_id, data in entries]

    def _claim_abandoned(self, tenant: str) -> list[EntryIncrements]:
        """Entries a dead consumer read but never acked: take them over (XAUTOCLAIM)."""
        idle = self.settings.claim_idle_seconds
        now = time.monotonic()
        if now - self._last_claim_at.get(tenant, -1e9) < max(idle / 2, 0.5):
            return []
        self._last_claim_at[tenant] = now
        try:
            _, claimed, *_ = self.client.xautoclaim(
                keys.stream(tenant), keys.CONSUMER_GROUP, self.name,
                min_idle_time=int(idle * 1000), start_id="0-0",
                count=self.settings.fold_batch_entries,
            )  # fmt: skip
        except redis.ResponseError as error:
            if "NOGROUP" in str(error):
                return []
            raise
        entries = [_increments(i, d) for i, d in claimed if d]
        self.stats.claimed += len(entries)
        METRICS.inc("mailflow_claimed_entries_total", (), len(entries))
        return entries

    # -- views -----------------------------------------------------------------------------

    def refresh_due(self, force: bool = False) -> None:
        """Rebuild views of changed tenants, each at most every MAILFLOW_REFRESH_SECONDS — by
        all workers together: a marker in Redis keeps a second worker that folded for the same
        tenant from rebuilding it again within the interval (the change waits for the next)."""
        now = time.monotonic()
        interval_ms = int(self.settings.refresh_seconds * 1000)
        for tenant in sorted(self._changed):
            last = self._refreshed_at.get(tenant, -1e9)
            if not force and now - last < self.settings.refresh_seconds:
                continue
            if not force and interval_ms and self.client.exists(keys.refreshed_recently(tenant)):
                continue
            if not self._take_lease(tenant):
                continue  # another worker is refreshing it; our change is in its data too
            try:
                self.stats.views_built += refresh_tenant(
                    self.client, tenant, self.clock(), self.settings
                )
                if interval_ms:
                    self.client.set(keys.refreshed_recently(tenant), self.name, px=interval_ms)
            finally:
                script(self.client, "release_lease")(
                    keys=[keys.refresh_lease(tenant)], args=[self.name]
                )
            self._changed.discard(tenant)
            self._refreshed_at[tenant] = now

    def evaluate_due(self, force: bool = False) -> None:
        """Re-evaluate every tenant now and then even without new mail: a new UTC day, new
        rule settings or connector definitions can open or resolve insights on their own."""
        now = time.monotonic()
        if not force and now - self._evaluated_at < EVALUATE_EVERY_SECONDS:
            return
        evaluate_all(self.client, self.clock(), self.settings, self.name)
        self._evaluated_at = now

    def _take_lease(self, tenant: str) -> bool:
        lease_ms = int(max(self.settings.refresh_seconds * 5, 10) * 1000)
        return bool(self.client.set(keys.refresh_lease(tenant), self.name, nx=True, px=lease_ms))

    def heartbeat(self) -> None:
        now = time.monotonic()
        if now - self._last_beat >= HEARTBEAT_SECONDS:
            health.beat(self.client, self.name, time.time())
            if health.store_instance(self.client) != self._instance:
                log.critical("the store lost its data (instance %s is gone); readiness fails "
                             "until a worker is restarted on purpose", self._instance)  # fmt: skip
            METRICS.flush(self.client)
            self._last_beat = now


def _increments(entry_id: bytes | str, data: dict[bytes, bytes]) -> EntryIncrements:
    entry = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return entry_increments(entry, data)
