"""Converting a tenant's dedupe window from one set per acceptance day to the buckets.

Before ``store.seen_buckets``, a tenant's seen trace ids were one set per UTC acceptance day,
``keys.seen(tenant, day)``, of whole 16-byte digests. ``convert_tenant`` moves them into that
day's buckets in steps of ``STEP`` ids, each one atomic script call (``convert_seen.lua``: the
ids are added to the buckets and removed from the old set together), so it can stop anywhere
(a crash, its ``budget`` spent) and be called again to carry on; the old set is gone when it is
empty. Ids still in an old set are not known to the ingest scripts, so the conversion must end
before the service takes traces again (the store format migration runs it first).

A day whose window is over (no lookup reads it any more) is not converted, only deleted.
The buckets live as ingest would have them live: until the last lookup that reads the day,
plus the margin, a duration from the service's clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import redis

from service.store import keys, seen_buckets
from service.store.scripts import script
from service.store.traces import BUCKET_MARGIN_SECONDS

STEP = 1000  # ids per atomic script call
SCAN_COUNT = 500


@dataclass(frozen=True)
class ConversionProgress:
    moved: int  # ids moved into buckets by this call
    dropped_days: int  # old sets past their window, deleted
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
    moved = dropped = 0
    for day, old_key in _old_sets(client, tenant):
        lifetime_ms = _bucket_ms(day, now, dedupe_days)
        if lifetime_ms <= 0:
            client.delete(old_key)
            dropped += 1
            continue
        while moved < budget:
            step = _move_step(client, tenant, day.isoformat(), old_key, lifetime_ms)
            if not step:
                break
            moved += step
        if moved >= budget:
            return ConversionProgress(moved, dropped, done=not any(_old_sets(client, tenant)))
    return ConversionProgress(moved, dropped, done=True)


def _old_sets(client: redis.Redis, tenant: str) -> Iterator[tuple[date, str]]:
    """The old sets: ``seen:YYYY-MM-DD``, not the buckets (``seen:YYYY-MM-DD:xx``)."""
    pattern = keys.tenant_pattern(tenant, "seen:????-??-??")
    for name in client.scan_iter(match=pattern, count=SCAN_COUNT):
        text = name.decode() if isinstance(name, bytes) else name
        try:
            day = date.fromisoformat(text.rsplit(":", 1)[1])
        except ValueError:
            continue
        if text == keys.seen(tenant, day.isoformat()):
            yield day, text


def _bucket_ms(day: date, now: datetime, dedupe_days: int) -> int:
    """How long the buckets of acceptance ``day`` must still live (as DedupeWindow's)."""
    last_read = datetime.combine(day, time(), UTC) + timedelta(days=dedupe_days + 1)
    seconds = (last_read - now).total_seconds()
    return math.ceil(seconds * 1000) + BUCKET_MARGIN_SECONDS * 1000 if seconds > 0 else 0


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
