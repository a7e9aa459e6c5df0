"""A tenant at the documented limits, and how long each Redis script runs on it.

At the limits a tenant has MAILFLOW_MAX_CONNECTORS named connectors (half inbound, half
outbound) that each carried every TLS version on every day of the retention period, and so
many insights that every inbound partner connector raises one. Its daily counters are written
here directly, in the layout the fold leaves (one hash per UTC day, one field per direction,
connector, type and TLS version, each day's data version); then every read the service makes
on it — the connector report per connector and per day, its CSV, the TLS flyout, the
snapshot, one connector's report, an insight evaluation, the insight feed, and ingesting and
folding a batch of 5,000 traces naming every connector — runs through the service's own
functions, while Redis's SLOWLOG records every command that takes 1 ms or more.

``script_durations`` returns the longest duration per command (EVALSHA named by its script),
in microseconds. Run: ``.venv/bin/python -m bench.at_limits`` (starts a private Redis).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import redis

from bench.harness import embedded_server
from service.config import Settings
from service.core.tls import TLS_VERSIONS
from service.core.traces import AcceptedBatch, IngestWindow, counter_field, normalize_trace
from service.core.windows import Window
from service.reports import builders, connector_detail
from service.store import connector_registry, insights_store, keys
from service.store import traces as trace_store
from service.store.views import put_view
from service.worker.evaluate import evaluate_tenant
from service.worker.loop import Worker

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TENANT = "atlimits"
# Commands faster than this are not logged. Logging every command (0) would log each command
# a script makes too, and that logging itself lengthens the script it measures.
THRESHOLD_MICROS = 1000


def connector_names(connectors: int) -> list[tuple[str, str, str]]:
    """(direction, name, type) of the tenant's connectors: half inbound, half outbound."""
    return [("inbound" if n % 2 == 0 else "outbound", f"connector {n:05d}",
             "partner" if n % 4 < 2 else "onpremises") for n in range(connectors)]  # fmt: skip


def populate(client: redis.Redis, tenant: str, now: datetime, connectors: int, days: int) -> None:
    """Every connector with every TLS version on every day of ``days`` ending ``now``'s."""
    today = now.astimezone(UTC).date()
    fields = {
        counter_field(direction, name, kind, tls): (30 if tls == "TLS1.0" else 100)
        for direction, name, kind in connector_names(connectors)
        for tls in TLS_VERSIONS
    }
    version = 0
    for back in range(days):
        day = (today - timedelta(days=back)).isoformat()
        version += 1
        pipe = client.pipeline(transaction=False)
        items = list(fields.items())
        for at in range(0, len(items), 5000):
            pipe.hset(keys.day_counts(tenant, day),
                      mapping=dict(items[at : at + 5000]))  # fmt: skip
        pipe.set(keys.day_version(tenant, day), version)
        pipe.execute()
    client.hset(
        keys.meta(tenant),
        mapping={"version": version, "data_as_of_ms": int(now.timestamp() * 1000)},
    )


def _sha_names() -> dict[str, str]:
    folder = resources.files("service.store").joinpath("lua")
    return {
        hashlib.sha1(entry.read_text().encode()).hexdigest(): entry.name.removesuffix(".lua")
        for entry in folder.iterdir()
        if entry.name.endswith(".lua")
    }


def _node_client(client: redis.Redis, tenant: str) -> tuple[Callable[..., object], object]:
    """A way to run a command on the node holding the tenant's slot (cluster or not)."""
    if isinstance(client, redis.RedisCluster):
        node = client.get_node_from_key(keys.meta(tenant))
        return (lambda *args: client.execute_command(*args, target_nodes=node)), node
    return client.execute_command, None


class SlowLog:
    """Every command's duration on the tenant's node while in use, as SLOWLOG records it."""

    def __init__(self, client: redis.Redis, tenant: str) -> None:
        self.run, _ = _node_client(client, tenant)
        self.names = _sha_names()

    def __enter__(self) -> SlowLog:
        self.run("CONFIG", "SET", "slowlog-max-len", 100_000)
        self.run("CONFIG", "SET", "slowlog-log-slower-than", THRESHOLD_MICROS)
        self.run("SLOWLOG", "RESET")
        return self

    def __exit__(self, *_: object) -> None:
        self.entries = self.run("SLOWLOG", "GET", self.run("SLOWLOG", "LEN"))
        self.run("CONFIG", "SET", "slowlog-log-slower-than", 10_000)
        self.run("CONFIG", "SET", "slowlog-max-len", 128)
        self.run("SLOWLOG", "RESET")

    def longest(self) -> dict[str, int]:
        """Command (a script by its name) -> its longest duration in microseconds. Commands a
        script runs are logged too, each on its own: the script's own entry is its total."""
        longest: dict[str, int] = {}
        for entry in self.entries:  # type: ignore[attr-defined]
            duration, args = int(entry[2]), [bytes(a).decode(errors="replace")
                                             for a in entry[3][:2]]  # fmt: skip
            name = args[0].upper()
            if name in ("EVALSHA", "EVAL"):
                name = self.names.get(args[1], f"script {args[1][:8]}")
            if name in ("SLOWLOG", "CONFIG"):
                continue
            longest[name] = max(longest.get(name, 0), duration)
        return longest


def exercise(client: redis.Redis, tenant: str, now: datetime, settings: Settings) -> None:
    """Every read the service makes on a tenant, at its longest window (the retention)."""
    today = now.astimezone(UTC).date()
    window = Window(today - timedelta(days=settings.retention_days - 1), today)
    for group_by in ("connector", "day"):
        view, version = builders.build_connector_rows_view(client, tenant, window, group_by)
        put_view(client, tenant, "connectors", (group_by, "limits"), view, version, 60)
    builders.build_connector_rows_view(client, tenant, window, "connector")  # the sums cached
    builders.build_tls_view(client, tenant, window, now, None)
    builders.build_snapshot_view(client, tenant, window, now)
    connector_detail.connector_detail_view(client, tenant, "inbound", "connector 00000", window,
                                          now, 60)  # fmt: skip
    evaluate_tenant(client, tenant, now, settings.retention_days)  # opens every insight
    client.hincrby(keys.meta(tenant), "version", 1)  # as a fold does
    evaluate_tenant(client, tenant, now, settings.retention_days)  # measures them again
    page = insights_store.read_feed(client, tenant, 0, 1000, "active", None)
    assert page.documents, "the tenant at the limits raises insights"
    insights_store.read_feed(client, tenant, 0, 1000, None, None)
    ingest_and_fold(client, tenant, now, settings)


def ingest_and_fold(client: redis.Redis, tenant: str, now: datetime, settings: Settings) -> None:
    """A batch of MAILFLOW_MAX_BATCH traces naming every connector: admitted, ingested (first
    new, then all repeated), folded and refreshed by a worker in burst mode."""
    window = IngestWindow.at(now, settings.retention_days)
    names = connector_names(settings.max_connectors)
    traces = []
    for n in range(settings.max_batch):
        direction, name, kind = names[n % len(names)]
        record = {"id": f"limits-{n}", "timestamp": now.isoformat(), "direction": direction,
                  "connector": name, "connector_type": kind,
                  "tls_version": TLS_VERSIONS[n % len(TLS_VERSIONS)]}  # fmt: skip
        traces.append(normalize_trace(record, window))
    batch = AcceptedBatch.of(traces)
    refused = connector_registry.admit(client, tenant, batch, settings.max_connectors,
                                       window.earliest.date(), 86400)  # fmt: skip
    assert not refused
    trace_store.register_tenant(client, tenant)
    dedupe = trace_store.DedupeWindow(now, settings.dedupe_days)
    trace_store.ingest(client, tenant, batch, dedupe)
    trace_store.ingest(client, tenant, batch, dedupe)  # all duplicates
    Worker(client, settings, clock=lambda: now).work(burst=True)


def measure() -> dict[str, int]:
    """The longest duration (µs) per command at the limits, on a private Redis."""
    from service.store.embedded import EmbeddedRedis, free_port

    settings = Settings()
    with tempfile.TemporaryDirectory() as folder:
        server = EmbeddedRedis(Path(folder), port=free_port(), server=embedded_server())
        server.start()
        client = redis.Redis.from_url(server.url)
        try:
            populate(client, TENANT, NOW, settings.max_connectors, settings.retention_days)
            with SlowLog(client, TENANT) as log:
                exercise(client, TENANT, NOW, settings)
            return log.longest()
        finally:
            client.close()
            server.stop()


def main() -> list[dict[str, object]]:
    """Rows for ``python -m bench``: the longest scripts first."""
    longest = measure()
    rows: list[dict[str, object]] = [
        {"command": name, "longest ms": round(micros / 1000, 1)}
        for name, micros in sorted(longest.items(), key=lambda kv: -kv[1])
    ]
    for row in rows:
        print(f"{row['command']:24} {row['longest ms']:8} ms")
    return rows


if __name__ == "__main__":
    main()
