"""Writing accepted traces: dedupe and append in one atomic call per batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis

from service.core.traces import AcceptedTrace
from service.store import keys
from service.store.scripts import script


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int


def register_tenant(client: redis.Redis, tenant: str) -> None:
    """Put the tenant on the worker's list. Done before ingesting, so no stream is orphaned."""
    client.sadd(keys.tenants(), tenant)


MAX_DAYS_PER_CALL = 250  # the script indexes seen-sets with one byte


def ingest(
    client: redis.Redis, tenant: str, traces: Sequence[AcceptedTrace], dedupe_seconds: int
) -> IngestResult:
    """Mark ids as seen and append the new traces to the tenant's stream, atomically.

    One script call per batch; only a batch spanning more than 250 days (possible with a long
    retention) is split, by day, into several calls.
    """
    if not traces:
        return IngestResult(0, 0)
    new = 0
    for chunk in _chunks_by_day(traces):
        new += _ingest_chunk(client, tenant, chunk, dedupe_seconds)
    return IngestResult(accepted=new, duplicates=len(traces) - new)


def _chunks_by_day(traces: Sequence[AcceptedTrace]) -> list[Sequence[AcceptedTrace]]:
    days = {trace.day for trace in traces}
    if len(days) <= MAX_DAYS_PER_CALL:
        return [traces]
    ordered = sorted(days)
    groups = [
        set(ordered[i : i + MAX_DAYS_PER_CALL]) for i in range(0, len(ordered), MAX_DAYS_PER_CALL)
    ]
    return [[t for t in traces if t.day in group] for group in groups]


def _ingest_chunk(
    client: redis.Redis, tenant: str, traces: Sequence[AcceptedTrace], dedupe_seconds: int
) -> int:
    seen_keys: dict[str, int] = {}  # seen-set key -> its index in KEYS (1 is the stream)
    indexes = bytearray()
    for trace in traces:
        indexes.append(seen_keys.setdefault(keys.seen(tenant, trace.day), len(seen_keys) + 2))
    digests = b"".join(trace.digest for trace in traces)
    records = b"\n".join(trace.stream_record() for trace in traces)
    argv = [keys.CONSUMER_GROUP, dedupe_seconds, bytes(indexes), digests, records]
    return int(script(client, "ingest")(keys=[keys.stream(tenant), *seen_keys], args=argv))
