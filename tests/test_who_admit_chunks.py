"""A fold that admits thousands of new names at once (a day's first batch from a big tenant)."""

from __future__ import annotations

from service.core.traces import IngestWindow, normalize_trace
from service.core.who import DOMAINS
from service.store import keys
from service.store import traces as trace_store
from service.store.traces import DedupeWindow


def test_one_batch_of_5000_new_domains_is_folded_and_every_name_kept(
    redis_client, run_worker, clock
):
    window = IngestWindow.at(clock.now, 90)
    batch = [normalize_trace({"id": f"new{n}", "timestamp": clock.now.isoformat(),
                              "direction": "outbound", "tls_version": "TLS1.2",
                              "recipient_domain": f"new{n}.example",
                              "remote_host": f"mx.new{n}.example"}, window)
             for n in range(5000)]  # fmt: skip
    trace_store.register_tenant(redis_client, "default")
    trace_store.ingest(redis_client, "default", batch, DedupeWindow(clock.now, 1))

    assert run_worker().traces == 5000

    day = clock.now.date().isoformat()
    kept = redis_client.hgetall(keys.who_names("default", DOMAINS.name, "outbound", day))
    assert len(kept) == 5000
    assert kept[b"new4999.example"] == b"mx.new4999.example"
