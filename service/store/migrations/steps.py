"""The registry of migration steps, in the order they run, from the format each upgrades.

A step is a function ``(context, tenant, cursor) -> next cursor``: it does one bounded batch of
one tenant's work from ``cursor`` (0 at first) and returns where the next batch starts, 0 when
the tenant is done. Steps must be idempotent: a batch may run again after an interruption.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import redis

from service.store import keys, near_cache, worker_signals
from service.store.cluster import node_client
from service.store.migrations import dedupe

SCAN_COUNT = 500
DAYS_PER_BATCH = 31


@dataclass(frozen=True)
class MigrationContext:
    client: redis.Redis
    today: date  # the service's clock (injected), never Redis's
    retention_days: int
    dedupe_days: int = 7  # MAILFLOW_DEDUPE_DAYS


StepFunction = Callable[[MigrationContext, str, int], int]


@dataclass(frozen=True)
class Step:
    name: str  # also the name of its progress key: never rename a released step
    from_format: int  # the step belongs to the upgrade from this format to the next one
    run: StepFunction

    @property
    def why(self) -> str:
        return (self.run.__doc__ or "").strip().splitlines()[0]


def _scan(context: MigrationContext, tenant: str, cursor: int, kind: str) -> tuple[int, list[str]]:
    """One SCAN batch of the tenant's keys matching ``kind``, on the node of its slot."""
    pattern = keys.tenant_pattern(tenant, kind)
    node = node_client(context.client, keys.meta(tenant))
    next_cursor, names = node.scan(cursor, match=pattern, count=SCAN_COUNT)
    return int(next_cursor), [n.decode() if isinstance(n, bytes) else n for n in names]


def drop_previous_caches(context: MigrationContext, tenant: str, cursor: int) -> int:
    """Drop the report views, window sums and pinned pages 0.1.0 cached.

    They are derived from the daily counters, which stay; the new release computes them again
    in its own layout when first asked (or when the worker refreshes the tenant). Answers from
    a cache written by older code could lack what the new release adds. The older API may
    cache them again while it still serves: the new release reads those too (tested), and
    they expire by themselves.
    """
    next_cursor, names = _scan(context, tenant, cursor, "*")
    stale = [n for n in names if n.split(":", 3)[2] in ("view", "blocksum", "pin")]
    if stale:
        context.client.unlink(*stale)
        near_cache.publish_invalidation(context.client, *stale)
    return next_cursor


def register_connectors(context: MigrationContext, tenant: str, cursor: int) -> int:
    """Fill the tenant's registry of distinct connectors from its daily counters.

    0.2.0 admits at most MAILFLOW_MAX_CONNECTORS distinct named connectors per tenant, counted
    in ``connectors:known`` with the newest day each was sent for; 0.1.0 kept no such registry.
    Without it, the connectors already in the reports would not count against the limit, and
    a tenant could end above it. Only days in retention are read (the others left the
    reports), ``DAYS_PER_BATCH`` of them per batch, named, not scanned for.
    """
    span = context.retention_days + 2  # today, the retention days before it, and tomorrow
    first = context.today.toordinal() - context.retention_days
    ordinals = range(first + cursor, first + min(cursor + DAYS_PER_BATCH, span))
    pipe = context.client.pipeline(transaction=False)
    for ordinal in ordinals:
        pipe.hkeys(keys.day_counts(tenant, date.fromordinal(ordinal).isoformat()))
    newest: dict[str, int] = {}
    for ordinal, fields in zip(ordinals, pipe.execute(), strict=True):
        for field in fields:
            direction, connector, _ = (field.decode() if isinstance(field, bytes) else field
                                       ).split("\x1f", 2)  # fmt: skip
            if connector:  # mail without a connector is not counted
                newest[f"{direction}\x1f{connector}"] = ordinal  # days in order: the newest
    if newest:
        registry = keys.connector_registry(tenant)
        pipe = context.client.pipeline(transaction=False)
        pipe.zadd(registry, newest, gt=True)  # a newer day already there stays
        pipe.expire(registry, (context.retention_days + 1) * 86400)  # as admit_connectors.lua
        pipe.execute()
    done = cursor + DAYS_PER_BATCH
    return done if done < span else 0


def signal_workers(context: MigrationContext, tenant: str, cursor: int) -> int:
    """Tell the workers about each tenant: entries waiting in its stream, views to rebuild.

    0.2.0 workers learn of new stream entries from ``tenants:new-entries`` and of tenants to
    refresh and evaluate from ``tenants:check``, which 0.1.0 did not write: traces it accepted
    and did not fold yet would wait for the slow sweep, and views and insights (with their new
    indexes) would wait for the next trace.
    """
    if context.client.xlen(keys.stream(tenant)):
        worker_signals.signal_new_entries(context.client, tenant)
    worker_signals.request_check(context.client, tenant, 0)
    return 0


STEPS: tuple[Step, ...] = (
    Step("drop-previous-caches", 1, drop_previous_caches),
    Step("register-connectors", 1, register_connectors),
    # The seen trace ids: remembered by the day a trace names in 0.1.0, by the day it was
    # accepted in 0.2.0 (see keys.seen and migrations/dedupe.py).
    Step("convert-seen-ids", 1, dedupe.convert_seen_ids),
    Step("signal-workers", 1, signal_workers),
)
