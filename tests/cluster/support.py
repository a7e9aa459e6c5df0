"""Shared by the cluster tests: tenants placed on chosen masters, HTTP ingest with retries."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import orjson
from redis.cluster import key_slot
from werkzeug.serving import make_server

from service.app import create_app
from service.store import aggregates, keys
from service.store.connection import Client
from service.store.local_cluster import LocalCluster


def tenants_on_every_master(cluster: LocalCluster, per_master: int = 1) -> dict[int, list[str]]:
    """Tenant names whose hash tag lands on each master: master port -> tenants."""
    placed: dict[int, list[str]] = {n.port: [] for n in cluster.masters_now()}
    number = 0
    while any(len(names) < per_master for names in placed.values()):
        name = f"tenant{number}"
        number += 1
        port = cluster.master_of_slot(key_slot(keys.stream(name).encode())).port
        if len(placed[port]) < per_master:
            placed[port].append(name)
    return placed


def total_counted(client: Client, tenant: str, today: datetime, days: int = 8) -> int:
    names = [(today.date() - timedelta(days=i)).isoformat() for i in range(days)]
    snapshot = aggregates.read_counters(client, tenant, names)
    return sum(sum(day.values()) for day in snapshot.days.values())


@contextmanager
def serve(overrides: dict[str, Any]) -> Iterator[str]:
    """The real app in a real HTTP server on a free port, in a thread of the test process."""
    server = make_server("127.0.0.1", 0, create_app(overrides), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@dataclass
class Sender:
    """Posts batches, retrying each until a 202 (503s and dropped connections are retried, as a
    client should): what it records as acknowledged was answered 202."""

    acknowledged: set[str] = field(default_factory=set)
    statuses: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def post(self, url: str, key: str, batch: list[dict[str, Any]], deadline: float) -> None:
        parsed = urlparse(url)
        body = orjson.dumps(batch)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        while True:
            if time.monotonic() > deadline:
                raise AssertionError("a batch was never acknowledged")
            connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
            try:
                connection.request("POST", "/api/v1/traces", body, headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except OSError:
                status = 0
            finally:
                connection.close()
            with self.lock:
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if status == 202:
                    self.acknowledged.update(trace["id"] for trace in batch)
                    return
            assert status in (0, 503), f"unexpected status {status}"
            time.sleep(0.05)  # a client's back-off before its retry, not a wait for the system


def trace_batches(prefix: str, total: int, size: int, now: datetime) -> list[list[dict[str, Any]]]:
    versions = ("TLSv1.2", "TLSv1.3", "TLSv1", None)
    traces = [
        {"id": f"{prefix}-{i}", "timestamp": (now - timedelta(minutes=i % 600)).isoformat(),
         "direction": ("inbound", "outbound")[i % 2], "tls_version": versions[i % 4]}
        for i in range(total)
    ]  # fmt: skip
    return [traces[i : i + size] for i in range(0, total, size)]
