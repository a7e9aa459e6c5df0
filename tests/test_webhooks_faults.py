"""Webhooks through crashes: a notifier SIGKILLed while a post is in flight, then Redis
killed and restarted on its AOF: every event still arrives, in order, and the only duplicate
is a retry of the same webhook-id."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import redis

from service.app import create_app
from service.config import Settings
from service.store import keys
from service.store.api_keys import create_key
from service.store.embedded import EmbeddedRedis
from service.worker.loop import Worker
from service.worker.notifier import LEASE_MS, Notifier
from tests.conftest import ALL_SCOPES, KeyedClient, free_port
from tests.helpers import post_batches
from tests.webhook_receiver import receiver

_ids = itertools.count()
LOOPBACK = "127.0.0.0/8"


@pytest.fixture
def private_redis(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis", port=free_port(), fsync="always").start()
    yield server
    server.stop()


def _mail(clock, connector):
    return [{"id": f"f{next(_ids)}", "timestamp": clock.now.isoformat(), "direction": "inbound",
             "connector": connector, "connector_type": "partner",
             "tls_version": "TLS1.0" if n < 12 else "TLS1.2"} for n in range(100)]  # fmt: skip


def test_sigkill_mid_delivery_and_a_redis_restart_lose_nothing(private_redis, clock, closing):
    settings = Settings(redis_url=private_redis.url, webhook_allow_networks=LOOPBACK)
    client = closing(redis.Redis.from_url(private_redis.url))
    app = closing(create_app({"redis_url": private_redis.url, "CLOCK": clock,
                              "webhook_allow_networks": LOOPBACK}))  # fmt: skip
    key = create_key(client, "default", ALL_SCOPES, "t", clock.now)
    api = type("C", (KeyedClient,), {"default_key": key})(app)
    with receiver(hold=True) as target:
        made = api.post("/api/v1/webhooks", json={"url": target.url})
        assert made.status_code == 201, made.json
        target.secrets.append(made.json["secret"])
        for connector in ("P1", "P2", "P3"):
            post_batches(api, _mail(clock, connector))
        Worker(client, settings, clock=clock).work(burst=True)
        assert client.llen(keys.webhook_outbox("default")) == 3

        env = dict(os.environ, MAILFLOW_REDIS_URL=private_redis.url,
                   MAILFLOW_WEBHOOK_ALLOW_NETWORKS=LOOPBACK, MAILFLOW_LOG_LEVEL="WARNING")  # fmt: skip
        doomed = subprocess.Popen([sys.executable, "-m", "service.cli", "notifier"], env=env)
        try:
            assert target.arrived.wait(60), "the notifier posted nothing"
        finally:
            doomed.send_signal(signal.SIGKILL)
            doomed.wait()
        target.release.set()  # the receiver answers 200 to a notifier that is gone

        private_redis.kill()
        private_redis.start()  # the AOF (fsync always) is replayed
        after = closing(redis.Redis.from_url(private_redis.url))
        queued = {k.decode() for k in after.hkeys(keys.webhook_deliveries("default"))}
        assert len(queued) == 3 and after.llen(keys.webhook_outbox("default")) == 0
        # The killed notifier leased its post on the real clock: past the lease, it is due.
        real_now = datetime.now(UTC) + timedelta(milliseconds=LEASE_MS + 1000)
        clock.now = max(clock.now, real_now)
        deadline = clock.now + timedelta(hours=1)
        Notifier(after, settings, clock=clock,
                 sleep=lambda _: clock.advance(seconds=5)).work(
            until=lambda: {r.webhook_id for r in target.delivered()} >= queued
            or clock.now >= deadline)  # fmt: skip

    assert all(r.verified for r in target.received)
    ids = [r.webhook_id for r in target.received]
    assert set(ids) == queued, "every event arrived, and nothing else"
    assert ids[0] == ids[1], "the post in flight at the kill was sent again, same id"
    first_arrivals = list(dict.fromkeys(ids))
    sequences = [next(r.json["data"]["sequence"] for r in target.received if r.webhook_id == i)
                 for i in first_arrivals]  # fmt: skip
    assert sequences == sorted(sequences), "in order"
    assert len(ids) == 4, "one duplicate: the retry of the post the kill interrupted"
