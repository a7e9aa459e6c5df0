"""The worker: fold streams into daily counters, then refresh views of changed tenants.

The loop is flat (see rq): check the stop flag, fold what is signalled, refresh what is due,
check marked tenants, evaluate on schedule, heartbeat, and wait a little only when there was
nothing to do. Signals only set the flag, so a SIGTERM lets the batch in hand finish.
``burst=True`` runs until the streams are empty, refreshes every changed tenant at once,
evaluates what is due and returns: tests drive the worker that way, without sleeping.

Where the work is lives in Redis (``store.worker_signals``), not in a worker's memory: an
idle worker reads the set of tenants with new entries and the due checks (two commands per
wait), every stream only on a slow sweep, and a worker killed between fold and refresh leaves
a mark another worker acts on within MAILFLOW_REFRESH_SECONDS. Every schedule runs on the
injected clock, and ``sleep`` and ``until`` let a test drive the real loop without waiting.
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
from service.core.local_days import tenant_now, today_of
from service.reports.who_rows import sum_stale_days
from service.store import (
    health,
    insights_store,
    keys,
    refresh_lease,
    tenant_zone,
    who_counters,
    worker_signals,
)
from service.store.availability import describe, is_unavailable
from service.telemetry.metrics import METRICS
from service.worker.evaluate import is_due_given, settings_or_day_changed
from service.worker.refresh import (
    EVALUATE_EVERY_SECONDS,
    evaluate_all,
    evaluate_tenant_now,
    refresh_tenant,
)

log = logging.getLogger("mailflow.worker")
IDLE_WAIT_SECONDS = 0.05
STORE_RETRY_SECONDS = 0.5
TENANT_LIST_SECONDS = 1.0
HEARTBEAT_SECONDS = 1.0
# Every stream is read (and abandoned entries claimed) this often even without a signal: a
# signal dies with an API process that crashed between its append and its SADD.
SWEEP_SECONDS = 30.0
SIGNALLED_PER_LOOP = 1000  # tenants with new entries taken per loop
CHECKS_PER_LOOP = 100  # due tenant checks taken per loop
# A tenant's views are rebuilt no sooner than REFRESH_DUTY times its last rebuild after it,
# so rebuilds take at most a 1/(REFRESH_DUTY + 1) share of a worker (at the per-domain limit
# with mail for past days, one costs seconds); and while its folds fall behind its mail, at
# most every BACKLOG_REFRESH_INTERVALS refresh intervals: then the counters are behind.
REFRESH_DUTY = 6
BACKLOG_REFRESH_INTERVALS = 5
# A tenant's per-name sums are summed in slices of about this many fields, other tenants
# served between them (``who_rows.sum_stale_days``); at most SLICES_PER_REBUILD per rebuild.
VIEW_SLICE_FIELDS = 100_000
SLICES_PER_REBUILD = 8


@dataclass
class WorkerStats:
    entries: int = 0
    traces: int = 0
    skipped: int = 0
    claimed: int = 0
    views_built: int = 0
    checks: int = 0  # marked tenants checked
    evaluations: int = 0  # evaluations a check found due
    evaluation_passes: int = 0  # passes over every tenant (evaluate_all)
    view_slices: int = 0  # slices of per-name sums done ahead of a rebuild
    rebuild_seconds: float = 0.0  # time spent rebuilding views and their slices (its clock)


@dataclass
class Worker:
    client: redis.Redis
    settings: Settings
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    stats: WorkerStats = field(default_factory=WorkerStats)
    # How the loop waits when idle (default: on the stop flag). A test passes one that moves
    # its injected clock instead, so the loop's schedules run without real waiting.
    sleep: Callable[[float], object] | None = None
    # Called after each committed fold, before any refresh: fault tests stop a worker there.
    after_fold: Callable[[str], None] | None = None
    view_slice_fields: int = VIEW_SLICE_FIELDS

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._sleep: Callable[[float], object] = self.sleep or self._stop.wait
        self._tenants: list[str] = []
        self._tenants_read_at = -1e9
        self._last_claim_at: dict[str, float] = {}
        self._changed: set[str] = set()
        self._to_read: set[str] = set()  # signalled tenants taken from Redis, not yet read
        self._refreshed_at: dict[str, float] = {}  # on the injected clock, epoch seconds
        self._swept_at = -1e18
        self._last_beat = -1e9
        self._instance: str | None = None
        self._evaluated_at: datetime | None = None
        self._zones = tenant_zone.ZoneCache(self.client, clock=self._now)  # tenants' local days
        self._backlog: set[str] = set()  # tenants whose folds fall behind their mail
        self._slices: dict[str, int] = {}  # tenants with a sliced rebuild under way: slices
        self._rebuild_seconds: dict[str, float] = {}  # what each one's last rebuild took
        self._slice_seconds: dict[str, float] = {}  # what the slices of one under way took
        self._settings_read_at: dict[str, float] = {}  # waiting tenants' rule settings read

    # -- control ---------------------------------------------------------------------------

    def request_stop(self, *_: object) -> None:
        self._stop.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def work(self, burst: bool = False, until: Callable[[], bool] | None = None) -> WorkerStats:
        """Run until stopped (``request_stop``), until ``until()`` holds (checked before each
        pass), or with ``burst`` until nothing is left to fold."""
        log.info("worker %s started", self.name)
        try:
            while not self._stop.is_set() and not (until is not None and until()):
                try:
                    if self._instance is None:
                        # Inside the retry: a worker that starts on a new store while Redis
                        # refuses writes waits for it like every other pass, never exits.
                        self._instance = health.claim_instance(self.client, None)
                    folded = self.fold_all() if burst else self.fold_signalled()
                    sliced = self.refresh_due(force=burst and not folded)
                    self.check_due(force=burst and not folded)
                    self.evaluate_due(force=burst and not folded)
                    self.heartbeat()
                except redis.RedisError as error:
                    # Redis down, stalled, failing over, or refusing writes (OOM, MISCONF,
                    # READONLY): wait and carry on; what was read but not folded stays pending
                    # in the stream and is claimed again.
                    if burst or not is_unavailable(error):
                        raise
                    log.warning("worker %s: %s, retrying in %g s: %s", self.name,
                                describe(error), STORE_RETRY_SECONDS, error)  # fmt: skip
                    self._sleep(STORE_RETRY_SECONDS)
                    continue
                if burst and not folded:
                    break
                if not folded and not sliced:
                    self._sleep(IDLE_WAIT_SECONDS)
        finally:
            # Stopping while Redis is down or refuses writes: the flush and the goodbye are
            # best effort (the heartbeat goes stale by itself), the stop must not fail.
            with contextlib.suppress(redis.RedisError):
                METRICS.flush(self.client)
                if not burst:
                    health.forget_worker(self.client, self.name)
            log.info("worker %s stopped: %s", self.name, self.stats)
        return self.stats

    def _now(self) -> float:
        """The injected clock in epoch seconds: every schedule of the loop runs on it."""
        return self.clock().timestamp()

    # -- folding ---------------------------------------------------------------------------

    def tenants(self) -> list[str]:
        now = time.monotonic()
        if now - self._tenants_read_at >= TENANT_LIST_SECONDS:
            self._tenants = list(worker_signals.all_tenants(self.client))
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

    def fold_signalled(self) -> int:
        """One batch per tenant signalled with new entries, and on the slow sweep per tenant,
        after claiming abandoned entries; the number of traces folded."""
        now = self._now()
        if now - self._swept_at >= self._sweep_seconds():
            self._swept_at = now
            self._last_claim_at.clear()  # the sweep claims for every tenant
            self._tenants = sorted(worker_signals.all_tenants(self.client))
            self._tenants_read_at = time.monotonic()
            self._to_read.update(self._tenants)
            claim = True
        else:
            claim = False
        # Removed from Redis before the read (see worker_signals); kept here until read, so
        # a Redis error in the middle does not drop the rest.
        self._to_read.update(
            worker_signals.take_tenants_with_entries(self.client, SIGNALLED_PER_LOOP)
        )
        total = 0
        for tenant in sorted(self._to_read):
            if self._stop.is_set():
                break
            if tenant in self._slices:
                # Its views are summed in slices: folding meanwhile would change the days
                # being summed. It is read again once they are built (a few passes).
                continue
            total += self.fold_tenant(tenant, claim=claim)
            self._to_read.discard(tenant)
        return total

    def _sweep_seconds(self) -> float:
        # Often enough that an abandoned entry waits about MAILFLOW_CLAIM_IDLE_SECONDS.
        return min(SWEEP_SECONDS, max(self.settings.claim_idle_seconds / 2, 0.5))

    def fold_tenant(self, tenant: str, claim: bool = True) -> int:
        started = time.perf_counter()
        claimed = self._claim_abandoned(tenant) if claim else []
        new = self._read_new(tenant)
        if len(new) >= self.settings.fold_batch_entries:
            # More may wait: signal it again, so this or another worker reads on.
            worker_signals.signal_new_entries(self.client, tenant)
        entries = claimed + new
        if not entries:
            self._backlog.discard(tenant)
            return 0
        # Marked after the read (the entries are pending) and before the fold: if this
        # worker dies after the fold commits, another one finds the views behind the data.
        due_ms = int((self._now() + self.settings.refresh_seconds) * 1000)
        worker_signals.request_check(self.client, tenant, due_ms)
        result = who_counters.fold(
            self.client, tenant, self.name, entries, self.settings, self.clock(),
            self._zones.zone(tenant),
        )  # fmt: skip
        if self.after_fold is not None:
            self.after_fold(tenant)
        # Behind: a full batch read, or more entries arrived meanwhile than this fold took
        # (folded entries leave the stream, so its length is what waits).
        if len(new) >= self.settings.fold_batch_entries or self.client.xlen(
            keys.stream(tenant)
        ) > len(entries):
            self._backlog.add(tenant)
        else:
            self._backlog.discard(tenant)
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

    def refresh_due(self, force: bool = False) -> int:
        """Rebuild views of changed tenants, each at most every MAILFLOW_REFRESH_SECONDS — by
        all workers together: a marker in Redis keeps a second worker that folded for the same
        tenant from rebuilding it again within the interval (the change waits for the next).
        The number of slices done of rebuilds that go on at the next pass."""
        sliced = 0
        now = self._now()
        interval_ms = int(self.settings.refresh_seconds * 1000)
        for tenant in sorted(self._changed):
            last = self._refreshed_at.get(tenant, -1e18)
            if not force and now - last < self.settings.refresh_seconds:
                continue
            if not force and self._rebuild_waits(tenant, now - last):
                if now - self._settings_read_at.get(tenant, -1e18) >= self.settings.refresh_seconds:
                    self._settings_read_at[tenant] = now
                    marker, _, rules_version = insights_store.evaluation_marker(self.client, tenant)
                    self._evaluate_while_waiting(tenant, marker, rules_version)
                continue
            if not force and interval_ms and self._refreshed_recently(tenant, now, interval_ms):
                continue
            if not self._take_lease(tenant):
                continue  # another worker is refreshing it; our change is in its data too
            try:
                if not force and self._sliced(tenant):
                    sliced += 1
                    continue  # the rebuild comes at a later pass
                self.stats.views_built += self._rebuild(tenant)
                if interval_ms:
                    self.client.set(keys.refreshed_recently(tenant), int(now * 1000),
                                    px=interval_ms)  # fmt: skip
            finally:
                self._release_lease(tenant)
            self._changed.discard(tenant)
            self._refreshed_at[tenant] = now
        return sliced

    def _rebuild(self, tenant: str) -> int:
        # Timed on the injected clock, like every schedule of the loop (the real one in use).
        started = self._now()
        built = refresh_tenant(self.client, tenant, self.clock(), self.settings,
                               self._zones.zone(tenant))  # fmt: skip
        took = self._now() - started
        self.stats.rebuild_seconds += took
        self._rebuild_seconds[tenant] = took + self._slice_seconds.pop(tenant, 0.0)
        self._slices.pop(tenant, None)  # a forced rebuild ends a sliced one too
        return built

    def _rebuild_waits(self, tenant: str, since_rebuild: float) -> bool:
        """Whether a changed tenant's views wait longer than the refresh interval (see
        REFRESH_DUTY and BACKLOG_REFRESH_INTERVALS): its folds go first."""
        wait = (REFRESH_DUTY + 1) * self._rebuild_seconds.get(tenant, 0.0)
        if tenant in self._backlog:
            wait = max(wait, BACKLOG_REFRESH_INTERVALS * self.settings.refresh_seconds)
        return since_rebuild < wait

    def _evaluate_while_waiting(self, tenant: str, marker: str | None, rules_version: int) -> None:
        """New rule settings or a new (local) day are evaluated at once, not kept waiting by a
        tenant's rebuild (each waiting tenant's settings are read once per refresh interval);
        new data alone is evaluated with the rebuild."""
        zone = self._zones.zone(tenant)
        now = tenant_now(self.clock(), zone)
        if settings_or_day_changed(marker, rules_version, now) and self._take_lease(tenant):
            try:
                self.stats.evaluations += 1
                evaluate_tenant_now(self.client, tenant, self.clock(), self.settings, zone)
            finally:
                self._release_lease(tenant)

    def _sliced(self, tenant: str) -> bool:
        """One slice of the tenant's per-name sums, when they need more than what is left of
        one (the caller holds the lease): whether its rebuild waits for a later pass. Other
        tenants fold and refresh between slices, so a tenant at the per-domain limit holds
        the others for one slice, not for its whole cold rebuild."""
        done = self._slices.get(tenant, 0)
        today = today_of(tenant_now(self.clock(), self._zones.zone(tenant)))
        started = self._now()
        if done < SLICES_PER_REBUILD and sum_stale_days(self.client, tenant, today,
                                                        self.view_slice_fields):  # fmt: skip
            took = self._now() - started
            self.stats.rebuild_seconds += took
            self._slice_seconds[tenant] = self._slice_seconds.get(tenant, 0.0) + took
            self._slices[tenant] = done + 1
            self.stats.view_slices += 1
            return True
        # Done, or at the cap (days that keep changing, or sums Redis refused to keep): the
        # rebuild sums what is left itself.
        self._slices.pop(tenant, None)
        return False

    def _refreshed_recently(self, tenant: str, now: float, interval_ms: int) -> bool:
        # The marker holds the refresh time on the workers' clock; its expiry only cleans up.
        raw = self.client.get(keys.refreshed_recently(tenant))
        try:
            return raw is not None and 0 <= now * 1000 - int(raw) < interval_ms
        except ValueError:
            return False

    def check_due(self, force: bool = False) -> None:
        """Check the tenants marked in Redis whose time has come (``force``: all of them):
        rebuild views behind the data version, evaluate when rules or definitions changed."""
        now = self._now()
        due_before = float("inf") if force else now * 1000
        for tenant, score in worker_signals.due_checks(self.client, due_before,
                                                       CHECKS_PER_LOOP):  # fmt: skip
            if self._stop.is_set():
                break
            self.check_tenant(tenant, score, force)

    def check_tenant(self, tenant: str, score: float, force: bool = False) -> None:
        self.stats.checks += 1
        state = worker_signals.tenant_state(self.client, tenant)
        zone = self._zones.zone(tenant)
        evaluation_due = is_due_given(state.evaluation_marker, state.version,
                                      state.rules_version, tenant_now(self.clock(), zone))  # fmt: skip
        if (
            state.views_behind
            and not force
            and self._rebuild_waits(tenant, self._now() - self._refreshed_at.get(tenant, -1e18))
        ):
            self._changed.add(tenant)  # rebuilt by refresh_due when its wait is over
            self._check_again(tenant)
            self._evaluate_while_waiting(tenant, state.evaluation_marker, state.rules_version)
            return
        if state.views_behind or evaluation_due:
            if not self._take_lease(tenant):
                self._check_again(tenant)  # the holder may have read the data before
                return
            try:
                if state.views_behind and not force and self._sliced(tenant):
                    self._changed.add(tenant)  # refresh_due goes on at the next pass
                    self._check_again(tenant)
                    return
                if state.views_behind:
                    self.stats.views_built += self._rebuild(tenant)
                    self._refreshed_at[tenant] = self._now()
                else:
                    self.stats.evaluations += 1
                    evaluate_tenant_now(self.client, tenant, self.clock(), self.settings, zone)
            finally:
                self._release_lease(tenant)
            state = worker_signals.tenant_state(self.client, tenant)
        if state.pending or state.views_behind:
            self._check_again(tenant)  # a fold in flight, or one during our rebuild
        else:
            worker_signals.finish_check(self.client, tenant, score)

    def _check_again(self, tenant: str) -> None:
        due_ms = int((self._now() + self.settings.refresh_seconds) * 1000)
        worker_signals.request_check(self.client, tenant, due_ms)

    def evaluate_due(self, force: bool = False) -> None:
        """Re-evaluate every tenant every EVALUATE_EVERY_SECONDS and at each quarter hour (so
        at every midnight, UTC or a tenant's local one: every zone's offset is a multiple of
        15 minutes), even without new mail: a new day, rule settings or connector definitions
        can open or resolve insights on their own (a PUT also marks its tenant, checked at
        once)."""
        now = self.clock()
        last = self._evaluated_at
        if (not force and last is not None
                and _quarter_hour(last) == _quarter_hour(now)
                and (now - last).total_seconds() < EVALUATE_EVERY_SECONDS):  # fmt: skip
            return
        self.stats.evaluation_passes += 1
        evaluate_all(self.client, now, self.settings, self.name, self._zones.zone,
                     refreshing=self._changed)  # fmt: skip
        self._evaluated_at = now

    def _take_lease(self, tenant: str) -> bool:
        return refresh_lease.take(self.client, tenant, self.name, self.settings.refresh_seconds)

    def _release_lease(self, tenant: str) -> None:
        refresh_lease.release(self.client, tenant, self.name)

    def heartbeat(self) -> None:
        now = time.monotonic()
        if now - self._last_beat >= HEARTBEAT_SECONDS:
            health.beat(self.client, self.name, time.time())
            if health.store_instance(self.client) != self._instance:
                log.critical("the store lost its data (instance %s is gone); readiness fails "
                             "until a worker is restarted on purpose", self._instance)  # fmt: skip
            METRICS.flush(self.client)
            self._last_beat = now


def _quarter_hour(moment: datetime) -> int:
    """Which quarter hour since the epoch ``moment`` is in: a new one starts at every
    midnight of every time zone."""
    return int(moment.timestamp() // 900)


def _increments(entry_id: bytes | str, data: dict[bytes, bytes]) -> EntryIncrements:
    entry = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return entry_increments(entry, data)
