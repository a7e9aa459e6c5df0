"""Writing accepted traces: dedupe and append in one atomic call per batch."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from service.core.traces import AcceptedBatch, AcceptedTrace
from service.store import keys
from service.store.cluster import write_replicated
from service.store.scripts import script


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int


@dataclass(frozen=True)
class Replication:
    """How many replicas must hold a write before it is acknowledged (0: the master's word)."""

    replicas: int = 0
    timeout_ms: int = 500


NO_WAIT = Replication()


def register_tenant(client: redis.Redis, tenant: str, replication: Replication = NO_WAIT) -> None:
    """Put the tenant on the worker's list. Done before ingesting, so no stream is orphaned.

    Repeated with every ingest call (one O(1) SADD), so a registration lost with a failed-over
    master is made again by the tenant's next call. With ``replication`` it is confirmed by the
    replicas of the registry's own master, which on a cluster is not the tenant's."""
    if replication.replicas:
        write_replicated(client, keys.tenants(), ("SADD", keys.tenants(), tenant),
                         replication.replicas, replication.timeout_ms)  # fmt: skip
    else:
        client.sadd(keys.tenants(), tenant)


MAX_DAYS_PER_CALL = 250  # the script indexes seen-sets with one byte


def ingest(
    client: redis.Redis,
    tenant: str,
    traces: AcceptedBatch | Sequence[AcceptedTrace],
    dedupe_seconds: int,
    replication: Replication = NO_WAIT,
) -> IngestResult:
    """Mark ids as seen and append the new traces to the tenant's stream, atomically.

    One script call per batch (two when ``ingest_new.lua`` finds a known id and declines);
    only a batch spanning more than 250 days (possible with a long retention) is split, by
    day, into several calls. With ``replication.replicas`` the call returns only once that
    many replicas hold the batch (else ``NotReplicated``: the caller answers 503 and the
    client's retry is deduplicated).
    """
    batch = traces if isinstance(traces, AcceptedBatch) else AcceptedBatch.of(traces)
    if not batch:
        return IngestResult(0, 0)
    new = 0
    for chunk in _chunks_by_day(batch):
        new += _ingest_chunk(client, tenant, chunk, dedupe_seconds, replication)
    return IngestResult(accepted=new, duplicates=len(batch) - new)


def _chunks_by_day(batch: AcceptedBatch) -> list[AcceptedBatch]:
    days = set(batch.days)
    if len(days) <= MAX_DAYS_PER_CALL:
        return [batch]
    ordered = sorted(days)
    groups = [
        set(ordered[i : i + MAX_DAYS_PER_CALL]) for i in range(0, len(ordered), MAX_DAYS_PER_CALL)
    ]
    return [batch.select(i for i, day in enumerate(batch.days) if day in group)
            for group in groups]  # fmt: skip


def _ingest_chunk(
    client: redis.Redis,
    tenant: str,
    batch: AcceptedBatch,
    dedupe_seconds: int,
    replication: Replication,
) -> int:
    seen_keys: dict[str, int] = {}  # seen-set key -> its index in KEYS (1 is the stream)
    index_of_day: dict[str, int] = {}
    for day in batch.days:
        if day not in index_of_day:
            index_of_day[day] = seen_keys.setdefault(keys.seen(tenant, day), len(seen_keys) + 2)
    key_names = [keys.stream(tenant), *seen_keys]
    indexes = bytes(map(index_of_day.__getitem__, batch.days))
    digests = b"".join(batch.digests)
    common = [keys.CONSUMER_GROUP, dedupe_seconds, indexes, digests]
    if len(set(batch.digests)) == len(batch):  # distinct ids: likely all new, counted here
        counts = Counter(batch.counting_keys)
        lines = "\n".join(f"{key}\t{n}" for key, n in counts.items())
        added = _call(client, "ingest_new", key_names,
                      [*common, lines, f"{max(batch.epochs_ms):013d}"], replication)  # fmt: skip
        if added >= 0:
            return added
    # Some id is known already, or repeated in the batch: the script counts trace by trace.
    per_trace = ["\n".join(batch.counting_keys), "".join(map("{:013d}".format, batch.epochs_ms))]
    return _call(client, "ingest", key_names, [*common, *per_trace], replication)


def _call(
    client: redis.Redis,
    name: str,
    key_names: list[str],
    argv: list[object],
    replication: Replication,
) -> int:
    ingest_script = script(client, name)
    if not replication.replicas:
        return int(ingest_script(keys=key_names, args=argv))
    command = ("EVALSHA", ingest_script.sha, len(key_names), *key_names, *argv)
    return int(write_replicated(client, key_names[0], command, replication.replicas,
                                replication.timeout_ms, ingest_script.script))  # fmt: skip
