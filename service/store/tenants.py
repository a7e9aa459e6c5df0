"""Tenant administration: list, describe, reset days of, and delete a tenant's data.

A reset removes the counters of some trace days and makes the trace ids of those days new
again (``dedupe_resets``), so the same logs can be ingested once more, with a better connector
mapping for instance. A delete removes the tenant: its API keys, then every key of its hash tag.

Both hold the tenant's refresh lease while they work, so no worker rebuilds its views or
evaluates it meanwhile, and both refuse (``TenantBusy``) while a worker holds that lease or is
folding traces of the days concerned. A reset is atomic per day (one script call per day); a
reset refused in the middle says which days it did, and may simply be run again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

import redis

from service.core.local_days import local_today
from service.core.traces import FIELD_SEP
from service.store import (
    api_keys,
    keys,
    near_cache,
    refresh_lease,
    tenant_zone,
    worker_signals,
)
from service.store.aggregates import day_lifetime_ms
from service.store.scripts import script

# A reset looks through at most this many unfolded stream entries for the days it resets;
# with more waiting (a worker that is down), it refuses rather than hold Redis to read them.
MAX_WAITING_ENTRIES = 1000
SCAN_BATCH = 500  # keys per SCAN step and per UNLINK


class TenantBusy(Exception):
    """A worker is folding or refreshing the tenant: nothing (more) was changed; retry."""


@dataclass(frozen=True)
class TenantSummary:
    tenant: str
    keys: list[api_keys.KeyRecord]
    messages_per_day: dict[str, int]  # trace day -> messages counted (days with counters)
    data_version: int
    data_as_of_ms: int | None
    waiting_entries: int  # accepted, not yet folded
    reset_days: dict[str, int] = field(default_factory=dict)  # day -> times reset
    time_zone: str = "UTC"  # where its days are counted (store.tenant_zone)

    @property
    def messages(self) -> int:
        return sum(self.messages_per_day.values())

    def as_document(self) -> dict[str, object]:
        """As JSON: the same document for ``mailflow tenants show --json`` and the API."""
        return {
            "tenant": self.tenant,
            "time_zone": self.time_zone,
            "messages": self.messages,
            "days": [{"date": day, "messages": n} for day, n in self.messages_per_day.items()],
            "data_as_of": _iso_ms(self.data_as_of_ms),
            "waiting_batches": self.waiting_entries,
            "reset_days": [{"date": day, "resets": n}
                           for day, n in sorted(self.reset_days.items())],
            "keys": [{"id": r.key_id, "scopes": list(r.scopes), "name": r.name,
                      "created_at": r.created_at, "revoked_at": r.revoked_at}
                     for r in self.keys],
        }  # fmt: skip


@dataclass(frozen=True)
class ResetResult:
    tenant: str
    days: list[str]  # the days reset, in order
    messages_removed: int


@dataclass(frozen=True)
class DeleteResult:
    tenant: str
    api_keys_deleted: int
    keys_deleted: int


def known_tenants(client: redis.Redis) -> list[str]:
    """Every tenant that has ingested or has an API key, sorted."""
    ingested = {_text(member) for member in client.smembers(keys.tenants())}
    keyed = {record.tenant for record in api_keys.all_records(client)}
    return sorted(ingested | keyed)


def summary(client: redis.Redis, tenant: str) -> TenantSummary:
    days = sorted(
        _text(name).rsplit(":", 1)[1]
        for name in _scan(client, keys.tenant_pattern(tenant, "day:*"))
    )
    pipe = client.pipeline(transaction=False)
    for day in days:
        pipe.hvals(keys.day_counts(tenant, day))
    pipe.hmget(keys.meta(tenant), "version", "data_as_of_ms")
    pipe.xlen(keys.stream(tenant))
    pipe.hgetall(keys.dedupe_resets(tenant))
    *per_day, (version, as_of), waiting, resets = pipe.execute()
    return TenantSummary(
        tenant=tenant,
        keys=[r for r in api_keys.all_records(client) if r.tenant == tenant],
        messages_per_day={
            day: sum(int(n) for n in counts) for day, counts in zip(days, per_day, strict=True)
        },
        data_version=int(version or 0),
        data_as_of_ms=int(as_of) if as_of else None,
        waiting_entries=int(waiting),
        reset_days={_text(day): int(n) for day, n in resets.items()},
        time_zone=tenant_zone.stored_zone_name(client, tenant),
    )


def reset_days(
    client: redis.Redis,
    tenant: str,
    start: date,
    end: date,
    now: datetime,
    retention_days: int,
    refresh_seconds: float,
    zone: tzinfo = UTC,
) -> ResetResult:
    """Remove the counters and dedupe memory of trace days ``start``..``end``, one atomic
    script per day; then the cached views, so every report is built again from the counters.
    Trace days are the tenant's local days (``zone``, service.core.local_days)."""
    if end < start:
        raise ValueError("the end day is before the start day")
    if (end - start).days >= retention_days + 1:
        raise ValueError(f"at most {retention_days + 1} days at once (the retention period)")
    days = [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]
    done: list[str] = []
    removed = 0
    with _lease(client, tenant, refresh_seconds):
        try:
            for day in days:
                removed += _reset_day(client, tenant, day, now, retention_days, zone)
                done.append(day)
        except TenantBusy as busy:
            if done:  # say what was done: running it again is safe
                raise TenantBusy(f"{done[0]}..{done[-1]} were reset; {busy}") from None
            raise
        finally:
            if done:
                _forget_old_resets(client, tenant, now, retention_days, zone)
                _renew_connector_registry(client, tenant, date.fromisoformat(done[0]),
                                          date.fromisoformat(done[-1]), now, retention_days,
                                          zone)  # fmt: skip
                near_cache.publish_invalidation(client, keys.dedupe_resets(tenant))
                _drop_derived(client, tenant)
                worker_signals.request_check(client, tenant, 0)  # rebuild views, evaluate
                client.ping()  # the invalidations are in every API process's socket
    return ResetResult(tenant, done, removed)


def _reset_day(
    client: redis.Redis, tenant: str, day: str, now: datetime, retention_days: int,
    zone: tzinfo = UTC,
) -> int:  # fmt: skip
    # The resets hash outlives every day it names: no trace of an older day can be accepted.
    life_ms = max(day_lifetime_ms(day, retention_days, now, zone),
                  (retention_days + 1) * 86_400_000)  # fmt: skip
    versions = keys.day_version_keys(tenant, day)
    names = [keys.stream(tenant), keys.meta(tenant), keys.day_version(tenant, day),
             keys.dedupe_resets(tenant), *keys.day_counter_keys(tenant, day), *versions]  # fmt: skip
    removed, waiting = script(client, "reset_day")(
        keys=names, args=[day, life_ms, MAX_WAITING_ENTRIES, len(versions)]
    )
    if int(removed) < 0:
        raise TenantBusy(
            f"{int(waiting)} ingested batches of {tenant} are waiting to be folded, some of "
            f"them for {day}: wait for the worker (is one running?) and run the reset again"
        )
    return int(removed)


def _forget_old_resets(
    client: redis.Redis, tenant: str, now: datetime, retention: int, zone: tzinfo = UTC
) -> None:
    """Drop the generations of days no trace may name any more (older than retention)."""
    first = (local_today(now, zone) - timedelta(days=retention)).isoformat()
    old = [d for d in client.hkeys(keys.dedupe_resets(tenant)) if _text(d) < first]
    if old:
        client.hdel(keys.dedupe_resets(tenant), *old)


def _renew_connector_registry(
    client: redis.Redis, tenant: str, first: date, last: date, now: datetime, retention: int,
    zone: tzinfo = UTC,
) -> None:  # fmt: skip
    """Connectors last seen on the reset days are seen only on the days kept: their newest day
    moves back to the newest kept day with their counters, or they are forgotten, so a new
    mapping's connectors are not refused for the old mapping's (MAILFLOW_MAX_CONNECTORS)."""
    registry = keys.connector_registry(tenant)
    affected = {_text(m) for m in client.zrangebyscore(registry, first.toordinal(),
                                                       last.toordinal())}  # fmt: skip
    if not affected:
        return
    newest: dict[str, int] = {}
    earliest = local_today(now, zone) - timedelta(days=retention)
    day = first - timedelta(days=1)
    while day >= earliest and len(newest) < len(affected):  # newest day first: one read each
        for counter in client.hkeys(keys.day_counts(tenant, day.isoformat())):
            member = FIELD_SEP.join(_text(counter).split(FIELD_SEP, 2)[:2])
            if member in affected:
                newest.setdefault(member, day.toordinal())
        day -= timedelta(days=1)
    pipe = client.pipeline(transaction=True)
    for member in affected:
        if member in newest:
            pipe.zadd(registry, {member: newest[member]}, xx=True)
        else:
            pipe.zrem(registry, member)
    pipe.execute()


def _drop_derived(client: redis.Redis, tenant: str) -> None:
    """Cached views, report pins and cached sums of days: all rebuilt from the counters."""
    for kind in ("view:*", "pin:*", "blocksum:*"):
        for batch in _batches(_scan(client, keys.tenant_pattern(tenant, kind))):
            client.unlink(*batch)
            near_cache.publish_invalidation(client, *batch)


def set_time_zone(client: redis.Redis, tenant: str, name: str) -> tuple[str, str]:
    """Set the zone the tenant's days are counted in from now on (ValueError: not a known
    IANA zone); (the zone before, the zone now). Traces already folded keep their days. The
    cached views go, and the worker is asked to evaluate and rebuild at once, so "today"
    moves with the zone at the next request."""
    before, after = tenant_zone.store_zone(client, tenant, name)
    if before != after:
        _drop_derived(client, tenant)
        worker_signals.request_check(client, tenant, 0)
        client.ping()  # the invalidations are in every API process's socket
    return before, after


def delete_tenant(client: redis.Redis, tenant: str, refresh_seconds: float) -> DeleteResult:
    """Delete the tenant's API keys, then every key of its hash tag, in bounded batches."""
    _refuse_if_folding(client, tenant)
    if _lease_holder(client, tenant) is not None:
        raise TenantBusy(f"a worker is refreshing {tenant}'s views: run the delete again")
    # Keys first: once they are gone (the PING below), no new request writes to the tenant.
    records = [r for r in api_keys.all_records(client) if r.tenant == tenant]
    api_keys.delete(client, (record.key_id for record in records))
    deleted = 0
    with _lease(client, tenant, refresh_seconds) as lease_key:
        # Atomic against a worker's read: a stream a worker holds entries of is never deleted.
        if int(script(client, "drop_stream")(keys=[keys.stream(tenant)],
                                             args=[keys.CONSUMER_GROUP])):  # fmt: skip
            raise TenantBusy(f"a worker is folding {tenant}'s traces: run the delete again")
        for batch in _batches(_scan(client, keys.tenant_pattern(tenant))):
            batch = [name for name in batch if name != lease_key]
            if batch:
                deleted += int(client.unlink(*batch))
                near_cache.publish_invalidation(client, *batch)
        client.srem(keys.tenants(), tenant)
        client.srem(keys.tenants_with_entries(), tenant)
        client.zrem(keys.tenants_to_check(), tenant)
        client.incr(keys.time_zones_version())  # its zone went with it: workers forget theirs
    client.ping()
    return DeleteResult(tenant, len(records), deleted)


def _refuse_if_folding(client: redis.Redis, tenant: str) -> None:
    try:
        pending = client.xpending(keys.stream(tenant), keys.CONSUMER_GROUP)
    except redis.ResponseError:  # no stream or no group: nothing is being folded
        return
    if int(pending["pending"]):
        raise TenantBusy(f"a worker is folding {tenant}'s traces: run the command again")


def _lease_holder(client: redis.Redis, tenant: str) -> str | None:
    holder = client.get(keys.refresh_lease(tenant))
    return None if holder is None else _text(holder)


@contextmanager
def _lease(client: redis.Redis, tenant: str, refresh_seconds: float) -> Iterator[str]:
    """Hold the tenant's refresh lease for the duration (its key), or refuse: TenantBusy."""
    holder = f"admin:{uuid.uuid4().hex}"
    if not refresh_lease.take(client, tenant, holder, refresh_seconds):
        raise TenantBusy(f"a worker is refreshing {tenant}'s views: run the command again")
    try:
        yield keys.refresh_lease(tenant)
    finally:
        refresh_lease.release(client, tenant, holder)


def _scan(client: redis.Redis, pattern: str) -> Iterator[str]:
    for name in client.scan_iter(match=pattern, count=SCAN_BATCH):
        yield _text(name)


def _batches(names: Iterator[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    for name in names:
        batch.append(name)
        if len(batch) == SCAN_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _iso_ms(epoch_ms: int | None) -> str | None:
    if epoch_ms is None:
        return None
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="seconds")
