"""Writing accepted traces: dedupe and append in one atomic call per batch."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import redis

from service.core.traces import AcceptedBatch, AcceptedTrace
from service.store import dedupe_resets, keys
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
    key_names = [keys.stream(tenant), *(keys.seen(tenant, day) for day in window.bucket_days)]
    common = [keys.CONSUMER_GROUP, window.bucket_seconds, b"".join(batch.digests)]
    new = -1
    counts: Counter[str] | None = None  # made for ingest_new.lua, used again by ingest.lua
    if len(set(batch.digests)) == len(batch):  # distinct ids: likely all new, counted here
        counts = Counter(batch.counting_keys)
        lines = "\n".join(f"{key}\t{n}" for key, n in counts.items())
        new = _call(client, "ingest_new", key_names,
                    [*common, lines, f"{max(batch.epochs_ms):013d}", *_who_counts(batch)],
                    replication)  # fmt: skip
    if new < 0:
        # Some id is known already, or repeated in the batch: the script takes the known ones
        # off the batch's counts.
        new = _call(client, "ingest", key_names, _exact_argv(batch, window, counts), replication)
    return IngestResult(accepted=new, duplicates=len(batch) - new)


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


def _has_who(batch: AcceptedBatch) -> bool:
    return len(batch.who_keys) == len(batch) and all(batch.who_keys)


def _who_counts(batch: AcceptedBatch) -> list[str]:
    """ingest_new.lua's optional ARGV[6]: the batch's who keys counted (docs/domains.md)."""
    if not _has_who(batch):
        return []
    return ["\n".join(f"{key}\t{n}" for key, n in Counter(batch.who_keys).items())]


def _exact_argv(
    batch: AcceptedBatch, window: DedupeWindow, counts: Counter[str] | None
) -> list[object]:
    """ingest.lua's arguments: the first trace of each id, the batch of those counted with each
    one's line by number, and where its newest time is. ``counts``: the batch's counting keys
    counted already (its ids are distinct)."""
    if len(set(batch.digests)) < len(batch):  # a repeated id: its later traces are duplicates
        first = {digest: at for at, digest in reversed(list(enumerate(batch.digests)))}
        batch, counts = batch.select(sorted(first.values())), None
    lines, key_numbers = _counted(batch.counting_keys, counts)
    who, who_numbers = _counted(batch.who_keys, None) if _has_who(batch) else ("", b"")
    newest = max(batch.epochs_ms)
    at_newest = [at for at, epoch in enumerate(batch.epochs_ms, start=1) if epoch == newest]
    return [keys.CONSUMER_GROUP, window.bucket_seconds, b"".join(batch.digests), lines,
            "".join(map("{:013d}".format, batch.epochs_ms)), who, key_numbers, who_numbers,
            f"{newest:013d}", b"".join(map(_line_numbers(len(batch)).__getitem__,
                                           (at - 1 for at in at_newest)))]  # fmt: skip


def _counted(values: list[str], counts: Counter[str] | None) -> tuple[str, bytes]:
    """ "value TAB count" lines of ``values`` and, per value, the number of its line in 3
    bytes (ingest.lua takes the known traces off the counts by number)."""
    counts = counts if counts is not None else Counter(values)
    numbers = dict(zip(counts, _line_numbers(len(counts)), strict=False))
    lines = "\n".join(f"{value}\t{n}" for value, n in counts.items())
    return lines, b"".join(map(numbers.__getitem__, values))


_LINE_NUMBERS: list[bytes] = []


def _line_numbers(count: int) -> list[bytes]:
    """1, 2, ... in 3 bytes each, at least ``count`` of them (made once, kept)."""
    if len(_LINE_NUMBERS) < count:
        _LINE_NUMBERS.extend(n.to_bytes(3, "big") for n in range(len(_LINE_NUMBERS) + 1,
                                                                 max(count, 8192) + 1))  # fmt: skip
    return _LINE_NUMBERS
