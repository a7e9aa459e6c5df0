"""Writing accepted traces: dedupe and append in one atomic call per batch."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import redis

from service.core.traces import AcceptedBatch, AcceptedTrace
from service.store import dedupe_resets, keys, seen_buckets, store_format
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
    replicas of the registry's own master, which on a cluster is not the tenant's.

    The registry without a format version is what a store of 0.1.0 looks like, so the first
    registration of a new store stamps it (callers check the format first: ``store_format``)."""
    if replication.replicas:
        write_replicated(client, keys.tenants(), ("SADD", keys.tenants(), tenant),
                         replication.replicas, replication.timeout_ms)  # fmt: skip
        store_format.stamp_new(client)
    else:
        pipe = client.pipeline(transaction=False)
        pipe.sadd(keys.tenants(), tenant)
        store_format.stamp_new(pipe)
        pipe.execute()


BUCKET_MARGIN_SECONDS = 3600  # a seen-bucket outlives its last lookup by this much


@dataclass(frozen=True)
class DedupeWindow:
    """How long an id stays one trace: ``days`` after its first acceptance, at ``accepted_at``.

    Ids are remembered in seen-buckets named by the UTC day of their ACCEPTANCE on the service's
    clock, never by the day their timestamp names: a resend with another timestamp (a log read
    again with another ``--timezone``) is the same trace. A lookup reads today's bucket and the
    ``days`` before it, so an id is known for at least ``days`` after its first acceptance and
    at most one day longer. Found ids are not added again: a resend does not extend the window.
    """

    accepted_at: datetime
    days: int

    @property
    def bucket_days(self) -> list[str]:
        """The UTC days whose buckets a lookup reads: today's first (new ids go there), then
        the ``days`` before it, then tomorrow's: around midnight an API host whose clock runs
        a little ahead may already have written there (absent the rest of the day: one EXISTS).
        """
        today = self.accepted_at.astimezone(UTC).date()
        days = [today - timedelta(days=n) for n in range(self.days + 1)]
        return [day.isoformat() for day in (*days, today + timedelta(days=1))]

    @property
    def bucket_seconds(self) -> int:
        """How long today's bucket must live: until no lookup reads it (``days`` after today
        ends), plus a margin so a Redis clock running a little fast never drops it early.
        A duration from the service's clock: Redis's own clock never decides what is known."""
        today = datetime.combine(self.accepted_at.astimezone(UTC).date(), time(), UTC)
        last_read = today + timedelta(days=self.days + 1)
        return math.ceil((last_read - self.accepted_at).total_seconds()) + BUCKET_MARGIN_SECONDS


def ingest(
    client: redis.Redis,
    tenant: str,
    traces: AcceptedBatch | Sequence[AcceptedTrace],
    window: DedupeWindow,
    replication: Replication = NO_WAIT,
) -> IngestResult:
    """Mark ids as seen and append the new traces to the tenant's stream, atomically.

    One script call per batch (two when ``ingest_new.lua`` finds a known id and declines).
    With ``replication.replicas`` the call returns only once that many replicas hold the batch
    (else ``NotReplicated``: the caller answers 503 and the client's retry is deduplicated).
    """
    batch = traces if isinstance(traces, AcceptedBatch) else AcceptedBatch.of(traces)
    if not batch:
        return IngestResult(0, 0)
    batch = dedupe_resets.salted(batch, dedupe_resets.generations(client, tenant))
    seen = seen_buckets.lookup(tenant, batch.digests, window.bucket_days)
    key_names: list[str | bytes] = [keys.stream(tenant), *seen.key_names]
    common = [keys.CONSUMER_GROUP, window.bucket_seconds, seen.ids]
    new = -1
    if seen.distinct:  # distinct ids: likely all new, counted here
        counts = Counter(batch.counting_keys)
        lines = "\n".join(f"{key}\t{n}" for key, n in counts.items())
        new = _call(client, "ingest_new", key_names,
                    [*common, lines, f"{max(batch.epochs_ms):013d}", *_who_counts(batch)],
                    replication)  # fmt: skip
    if new < 0:
        # Some id is known already, or repeated in the batch: the script counts trace by trace.
        per_trace = ["\n".join(batch.counting_keys),
                     "".join(map("{:013d}".format, batch.epochs_ms)), *_who_lines(batch)]  # fmt: skip
        new = _call(client, "ingest", key_names, [*common, *per_trace], replication)
    return IngestResult(accepted=new, duplicates=len(batch) - new)


def _call(
    client: redis.Redis,
    name: str,
    key_names: Sequence[str | bytes],
    argv: list[object],
    replication: Replication,
) -> int:
    ingest_script = script(client, name)
    if not replication.replicas:
        return int(ingest_script(keys=key_names, args=argv))
    command = ("EVALSHA", ingest_script.sha, len(key_names), *key_names, *argv)
    stream = key_names[0]  # the tenant's stream, a str; the seen-buckets after it are bytes
    assert isinstance(stream, str)
    return int(write_replicated(client, stream, command, replication.replicas,
                                replication.timeout_ms, ingest_script.script))  # fmt: skip


def _has_who(batch: AcceptedBatch) -> bool:
    return len(batch.who_keys) == len(batch) and all(batch.who_keys)


def _who_counts(batch: AcceptedBatch) -> list[str]:
    """ingest_new.lua's optional ARGV[6]: the batch's who keys counted (docs/domains.md)."""
    if not _has_who(batch):
        return []
    return ["\n".join(f"{key}\t{n}" for key, n in Counter(batch.who_keys).items())]


def _who_lines(batch: AcceptedBatch) -> list[str]:
    """ingest.lua's optional ARGV[6]: one who key per trace."""
    return ["\n".join(batch.who_keys)] if _has_who(batch) else []
