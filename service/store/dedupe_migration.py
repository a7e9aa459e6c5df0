"""Converting a tenant's dedupe window from 0.1.0's seen-sets to the buckets.

0.1.0 kept a tenant's seen trace ids in one set per day *named by the traces' own timestamps*,
``keys.seen(tenant, day)``, of whole 16-byte digests, each set expiring the dedupe window after
its last addition. The day in such a set's name says nothing about when its ids were accepted
(a log of last month read yesterday lands in last month's set), so the set's remaining lifetime
is what says how long its ids must still be known.

``convert_tenant`` moves the ids into the buckets of the migration's own acceptance day (the
buckets every lookup reads for the whole dedupe window from now on), in steps of ``STEP`` ids,
each one atomic script call (``convert_seen.lua``: the ids are added to the buckets and removed
from the old set together), so it can stop anywhere (a crash, its ``budget`` spent) and be
called again to carry on; the old set is gone when it is empty. The buckets then live at least
as long as the old set would have (never shorter than they already do), so an id is known
exactly as long as 0.1.0 promised. Ids still in an old set are not known to the ingest scripts,
so the conversion must end before the service takes traces again: the store format migration
runs it (``migrations/dedupe.py``) while the new release refuses ingest.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time

import redis

from service.store import keys, seen_buckets
from service.store.scripts import script
from service.store.traces import BUCKET_MARGIN_SECONDS, DedupeWindow

STEP = 1000  # ids per atomic script call
SCAN_COUNT = 500


@dataclass(frozen=True)
class ConversionProgress:
    moved: int  # ids moved into buckets by this call
    sets: int  # old sets emptied (and so gone) by this call
    done: bool  # no old set is left


def convert_tenant(
    client: redis.Redis,
    tenant: str,
    now: datetime,
    dedupe_days: int,
    budget: int = 1_000_000,
) -> ConversionProgress:
    """Move at most about ``budget`` ids (rounded up to a step) of ``tenant``'s old seen-sets
    into buckets; call again until ``done``."""
    today = DedupeWindow(now, dedupe_days).bucket_days[0]
    moved = emptied = 0
    for old_key in _old_sets(client, tenant):
        lifetime_ms = _lifetime_ms(client, old_key, now, dedupe_days)
        if lifetime_ms is None:  # expired between the scan and now
            continue
        while moved < budget:
            step = _move_step(client, tenant, today, old_key, lifetime_ms)
            if not step:
                emptied += 1
                break
            moved += step
        if moved >= budget:
            left = any(_old_sets(client, tenant))
            return ConversionProgress(moved, emptied, done=not left)
    return ConversionProgress(moved, emptied, done=True)


def _old_sets(client: redis.Redis, tenant: str) -> Iterator[str]:
    """The old sets: ``seen:YYYY-MM-DD``, not the buckets (``seen:YYYY-MM-DD:xx``)."""
    pattern = keys.tenant_pattern(tenant, "seen:????-??-??")
    for name in client.scan_iter(match=pattern, count=SCAN_COUNT):
        yield name.decode() if isinstance(name, bytes) else name


def _lifetime_ms(client: redis.Redis, old_key: str, now: datetime, dedupe_days: int) -> int | None:
    """How long the ids of ``old_key`` must stay known: as long as the set would have lived,
    plus the buckets' margin. A set without an expiry (0.1.0 always set one) is kept for the
    whole window of today's buckets, counted from today's midnight (a little longer: harmless).
    None: the set is gone."""
    remaining = int(client.pttl(old_key))
    if remaining == -2:
        return None
    if remaining == -1:
        midnight = datetime.combine(now.astimezone(UTC).date(), time(), UTC)
        return DedupeWindow(midnight, dedupe_days).bucket_seconds * 1000
    return remaining + BUCKET_MARGIN_SECONDS * 1000


def _move_step(client: redis.Redis, tenant: str, day: str, old_key: str, lifetime_ms: int) -> int:
    """One atomic step: up to STEP ids of ``old_key`` into buckets. 0: the set is gone."""
    found = [bytes(m) for m in client.srandmember(old_key, STEP) or []]
    if not found:
        return 0
    digests = [m for m in found if len(m) == 16]
    strays = [m for m in found if len(m) != 16]  # not a digest: nothing to keep
    if strays:
        client.srem(old_key, *strays)
    if not digests:
        return len(strays)
    prefixes, members = seen_buckets.split(digests)
    present = sorted(set(prefixes))
    order = {prefix: i for i, prefix in enumerate(present)}
    index = bytes(order[p] for p in prefixes)
    bucket_keys = [keys.seen_bucket(tenant, day, p) for p in present]
    moved = script(client, "convert_seen")(
        keys=[old_key, *bucket_keys],
        args=[lifetime_ms, b"".join(digests), index, *members],
    )
    return int(moved) + len(strays)
