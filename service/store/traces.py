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


def ingest(
    client: redis.Redis, tenant: str, traces: Sequence[AcceptedTrace], dedupe_seconds: int
) -> IngestResult:
    """Mark ids as seen and append the new traces to the tenant's stream, atomically."""
    if not traces:
        return IngestResult(0, 0)
    seen_keys: dict[str, int] = {}
    argv: list[object] = [keys.CONSUMER_GROUP, dedupe_seconds]
    for trace in traces:
        index = seen_keys.setdefault(keys.seen(tenant, trace.day), len(seen_keys) + 2)
        argv += (index, trace.digest, trace.stream_record())
    new = int(script(client, "ingest")(keys=[keys.stream(tenant), *seen_keys], args=argv))
    return IngestResult(accepted=new, duplicates=len(traces) - new)
