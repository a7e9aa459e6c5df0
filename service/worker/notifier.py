"""The notifier: turns insight transitions into webhook deliveries and sends them.

A loop like the worker's (``work``; ``burst`` for tests), in its own process (``mailflow
notifier``, started by ``mailflow run``) so that a receiver that takes its full 10 s never
holds up folding. Each pass, per tenant with subscriptions:

1. fan out: the outbox's transitions become one delivery per matching subscription
   (``webhooks_store.enqueue``: once, however often it runs), and yesterday's digest is made;
2. claim: the first delivery of each due subscription queue is leased and posted on a thread
   pool. A tenant has at most PER_TENANT_IN_FLIGHT posts at once and the process at most
   MAX_IN_FLIGHT, and the loop never waits for a post: a slow receiver of one tenant holds one
   of its tenant's slots, not the others;
3. record: each answer is stored with what follows (delivered, retried later, failed; a
   subscription disabled), and the next delivery of that queue becomes due.

Only a queue's first delivery is ever sent, so deliveries to one subscription arrive in the
order of their transitions, a later one waiting while an earlier one is retried. A notifier
that dies mid-post leaves the lease to run out: the same delivery, with the same
``webhook-id``, is sent again (at least once; a duplicate is only ever that retry).
Schedules run on the injected clock; the ``webhook-timestamp`` header is the real time, since
receivers compare it with their own clocks to refuse replays.
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import redis

from service.config import Settings
from service.core import webhook_delivery as rules
from service.core import webhook_payloads as payloads
from service.core import webhook_signing
from service.core.timestamps import rfc3339
from service.core.webhook_targets import (
    Resolver,
    TargetPolicy,
    TargetRefused,
    resolve_target,
    system_resolver,
)
from service.reports.insight_feed import public
from service.store import webhooks_store
from service.store.availability import describe, is_unavailable
from service.telemetry.metrics import METRICS
from service.worker.webhook_sender import TIMEOUT_SECONDS, Answer, post

log = logging.getLogger("mailflow.notifier")
MAX_IN_FLIGHT = 16
PER_TENANT_IN_FLIGHT = 2
LEASE_MS = int((TIMEOUT_SECONDS + 20) * 1000)  # a post's longest time, and a margin
IDLE_WAIT_SECONDS = 0.2
STORE_RETRY_SECONDS = 0.5
TENANT_LIST_SECONDS = 1.0
RELEASED_PER_PASS = 50  # detections a quiet period deferred, queued per tenant and pass


@dataclass
class NotifierStats:
    fanned_out: int = 0  # deliveries made from transitions
    attempts: int = 0
    delivered: int = 0
    retries: int = 0  # attempts that will be tried again
    failed: int = 0


@dataclass
class _InFlight:
    tenant: str
    subscription: dict[str, Any]
    record: dict[str, Any]
    future: Future[tuple[Answer, bool]]


@dataclass
class Notifier:
    client: redis.Redis
    settings: Settings
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    resolver: Resolver = system_resolver
    tls: ssl.SSLContext | None = None  # None: the system's trust store
    sleep: Callable[[float], object] | None = None
    rng: random.Random = field(default_factory=random.Random)
    stats: NotifierStats = field(default_factory=NotifierStats)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._sleep: Callable[[float], object] = self.sleep or self._stop.wait
        self._pool: ThreadPoolExecutor | None = None  # one per run of ``work``
        self._in_flight: dict[tuple[str, str], _InFlight] = {}
        self._tenants: list[str] = []
        self._tenants_read_at = -1e9
        self._digests_checked: dict[str, str] = {}  # tenant -> the day its digests were made
        self.policy = TargetPolicy.parse(self.settings.webhook_allow_networks,
                                         self.settings.webhook_allow_http)  # fmt: skip

    def request_stop(self, *_: object) -> None:
        self._stop.set()

    def work(self, burst: bool = False, until: Callable[[], bool] | None = None) -> NotifierStats:
        """Run until stopped, until ``until()`` holds, or with ``burst`` until nothing is due
        and nothing in flight. Posts in flight at the end are waited for and recorded."""
        self._pool = ThreadPoolExecutor(MAX_IN_FLIGHT, thread_name_prefix="webhook")
        try:
            while not self._stop.is_set() and not (until is not None and until()):
                try:
                    busy = self.step()
                except redis.RedisError as error:
                    if burst or not is_unavailable(error):
                        raise
                    log.warning("notifier: %s, retrying in %g s: %s", describe(error),
                                STORE_RETRY_SECONDS, error)  # fmt: skip
                    self._sleep(STORE_RETRY_SECONDS)
                    continue
                if burst and not busy and not self._in_flight:
                    break
                if not busy:
                    self._wait()
        finally:
            self._finish()
        return self.stats

    def _wait(self) -> None:
        if self._in_flight:  # real I/O: wait for the first answer, not for the clock
            wait([f.future for f in self._in_flight.values()], IDLE_WAIT_SECONDS,
                 FIRST_COMPLETED)  # fmt: skip
        else:
            self._sleep(IDLE_WAIT_SECONDS)

    def _finish(self) -> None:
        try:
            wait([f.future for f in self._in_flight.values()])
            self.collect()
        except redis.RedisError as error:  # the lease runs out: sent again, same id
            log.warning("notifier stopping: answers not recorded (%s)", describe(error))
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            self._pool = None
            METRICS.flush(self.client)

    # -- one pass --------------------------------------------------------------------------

    def step(self) -> bool:
        """One pass over every tenant: record answers, fan out, send; whether it did anything."""
        busy = self.collect() > 0
        for tenant in self.tenants():
            if self._stop.is_set():
                break
            busy = self.fan_out(tenant) > 0 or busy
            busy = self.send_due(tenant) > 0 or busy
        return busy

    def tenants(self) -> list[str]:
        now = time.monotonic()
        if now - self._tenants_read_at >= TENANT_LIST_SECONDS:
            self._tenants = webhooks_store.webhook_tenants(self.client)
            self._tenants_read_at = now
        return self._tenants

    def _noise(self, now: datetime) -> webhooks_store.NoiseControl:
        return webhooks_store.NoiseControl(self.settings.webhook_daily_cap,
                                           self.settings.webhook_quiet_minutes * 60_000,
                                           now.date().isoformat())  # fmt: skip

    def fan_out(self, tenant: str) -> int:
        """Turn the tenant's outbox into deliveries (a bounded number per pass)."""
        now = self.clock().astimezone(UTC)
        made = self._make_digests(tenant, now)
        made += webhooks_store.release_deferred(self.client, tenant, int(now.timestamp() * 1000),
                                                RELEASED_PER_PASS)  # fmt: skip
        entries = webhooks_store.outbox_head(self.client, tenant, webhooks_store.OUTBOX_PER_PASS)
        if not entries:
            return made
        subscriptions = webhooks_store.list_subscriptions(self.client, tenant)
        now_ms, now_text = int(now.timestamp() * 1000), rfc3339(now)
        for raw in entries:
            entry = orjson.loads(raw)
            kind, insight = entry["event"], public(entry["insight"])
            at = datetime.fromtimestamp(entry["at_ms"] / 1000, UTC)
            envelope = payloads.event(kind, rfc3339(at), insight)
            planned = [webhooks_store.Planned(
                sub["id"], did := webhooks_store.delivery_id(sub["id"], insight["id"], kind),
                rules.new_delivery(did, sub["id"], envelope, now_text, now_ms),
                entry.get("condition", ""), insight["id"],
            ) for sub in subscriptions if rules.matches(sub, kind, insight)]  # fmt: skip
            count = webhooks_store.enqueue(self.client, tenant, raw, planned, now_ms,
                                           self._noise(now))  # fmt: skip
            if count < 0:
                break  # another notifier is fanning this tenant out
            made += count
        self.stats.fanned_out += made
        return made

    def _make_digests(self, tenant: str, now: datetime) -> int:
        """Once a day per tenant: a digest to each subscription that held events back."""
        today = now.date().isoformat()
        if self._digests_checked.get(tenant) == today or not self.settings.webhook_daily_cap:
            return 0
        self._digests_checked[tenant] = today
        yesterday = (now - timedelta(days=1)).date().isoformat()
        made = 0
        now_ms, now_text = int(now.timestamp() * 1000), rfc3339(now)
        for sub in webhooks_store.list_subscriptions(self.client, tenant):
            if not sub["enabled"]:
                continue  # what it held back that day is not news once it is enabled again
            counts = webhooks_store.day_counts(self.client, tenant, sub["id"], yesterday)
            held = counts.get("held", 0)
            if not held or not webhooks_store.mark_digest_made(self.client, tenant, sub["id"],
                                                               yesterday):  # fmt: skip
                continue
            envelope = payloads.event(payloads.DIGEST, now_text,
                                      {"day": yesterday, "count": held,
                                       "cap": self.settings.webhook_daily_cap})  # fmt: skip
            did = webhooks_store.delivery_id(sub["id"], yesterday, payloads.DIGEST)
            record = rules.new_delivery(did, sub["id"], envelope, now_text, now_ms)
            made += max(webhooks_store.enqueue(
                self.client, tenant, None, [webhooks_store.Planned(sub["id"], did, record)],
                now_ms, self._noise(now)), 0)  # fmt: skip
        return made

    def send_due(self, tenant: str) -> int:
        """Post the first delivery of each due queue of the tenant, within its slots."""
        slots = PER_TENANT_IN_FLIGHT - sum(1 for t, _ in self._in_flight if t == tenant)
        slots = min(slots, MAX_IN_FLIGHT - len(self._in_flight))
        if slots <= 0:
            return 0
        now = self.clock()
        now_ms = int(now.timestamp() * 1000)
        started = 0
        for sub_id in webhooks_store.due_subscriptions(self.client, tenant, now_ms,
                                                       slots + PER_TENANT_IN_FLIGHT):  # fmt: skip
            if started >= slots:
                break
            if (tenant, sub_id) in self._in_flight:
                continue
            subscription = webhooks_store.get_subscription(self.client, tenant, sub_id)
            if subscription is None or not subscription["enabled"]:
                webhooks_store.pause(self.client, tenant, sub_id)  # its queue waits
                continue
            claimed = webhooks_store.claim(self.client, tenant, sub_id, now_ms, LEASE_MS)
            if claimed is None:
                continue
            _, record = claimed
            assert self._pool is not None, "send_due runs inside work()"
            future = self._pool.submit(self._attempt, subscription, record, now)
            self._in_flight[(tenant, sub_id)] = _InFlight(tenant, subscription, record, future)
            started += 1
        return started

    def _attempt(
        self, subscription: dict[str, Any], record: dict[str, Any], now: datetime
    ) -> tuple[Answer, bool]:
        """Runs on the pool: resolve and check the URL, render, sign, post. (answer, refused)"""
        try:
            target = resolve_target(subscription["url"], self.policy, self.resolver)
            body = payloads.render(subscription["format"], record["envelope"],
                                   self.settings.webhook_public_url)  # fmt: skip
            headers = webhook_signing.headers(active_secrets(subscription, now), record["id"],
                                              int(time.time()), body)  # fmt: skip
            return post(target, body, headers, tls=self.tls), False
        except TargetRefused as refusal:
            return Answer(None, 0, error=f"refused: {refusal}"), True
        except Exception as error:  # noqa: BLE001 - one bad delivery must not stop the loop
            # Not retried: the same record would fail the same way at every attempt.
            log.exception("webhook delivery %s could not be sent", record.get("id"))
            return Answer(None, 0, error=f"not sent: {type(error).__name__}"), True

    def collect(self) -> int:
        """Record every finished post; how many."""
        done = [(k, f) for k, f in self._in_flight.items() if f.future.done()]
        for key, flight in done:
            answer, refused = flight.future.result()
            self._record(flight, answer, refused)
            del self._in_flight[key]
        return len(done)

    def _record(self, flight: _InFlight, answer: Answer, refused: bool) -> None:
        now = self.clock()
        now_ms, now_text = int(now.timestamp() * 1000), rfc3339(now)
        record = flight.record
        record["attempt_count"] += 1
        record["attempts"].append({"at": now_text, "status_code": answer.status,
                                   "latency_ms": answer.latency_ms, "error": answer.error})  # fmt: skip
        answered = rules.FAILED if refused else rules.outcome(answer.status)
        step = rules.next_step(answered, record["attempt_count"], record["created_ms"], now_ms,
                               self.settings.webhook_retry_days,
                               rules.retry_after_seconds(answer.retry_after, now),
                               self.rng)  # fmt: skip
        record.update(status=step.status, last_status_code=answer.status,
                      latency_ms=answer.latency_ms, next_attempt_at=None if step.retry_at_ms
                      is None else rfc3339(datetime.fromtimestamp(step.retry_at_ms / 1000, UTC)))  # fmt: skip
        pending = step.status == "pending"
        disable = None
        if step.disable:
            disable = (step.disable, rules.disabled_insight(
                uuid.uuid4().hex, flight.subscription, record, step.disable, now_text))  # fmt: skip
        webhooks_store.record_attempt(self.client, flight.tenant, record, not pending,
                                      step.retry_at_ms or now_ms, (now_text, now_ms), disable)  # fmt: skip
        self.stats.attempts += 1
        self.stats.delivered += step.status == "delivered"
        self.stats.retries += pending
        self.stats.failed += step.status == "failed"
        METRICS.inc("mailflow_webhook_deliveries_total", (("outcome", step.status),))
        METRICS.observe("mailflow_webhook_delivery_duration_seconds", (),
                        answer.latency_ms / 1000)  # fmt: skip
        if step.disable:
            log.warning("webhook %s of tenant %s disabled: %s", record["subscription_id"],
                        flight.tenant, step.disable)  # fmt: skip


def active_secrets(subscription: dict[str, Any], now: datetime) -> list[str]:
    """The secrets a delivery is signed with: the current one, and a rotated-out one while its
    grace period runs."""
    found = [subscription["secret"]]
    previous = subscription.get("previous_secret")
    if previous and subscription.get("previous_secret_until_ms", 0) > now.timestamp() * 1000:
        found.append(previous)
    return found
