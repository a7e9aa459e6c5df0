"""What tells the workers where there is work, kept in Redis so no worker's death loses it.

- Tenants with new stream entries (a set): the API adds a tenant after its ingest script
  appended; a worker removes it *before* reading the stream. Either the removal comes first and
  the mark stays for the next read, or the append came before the removal and so before the
  read: an entry is never left unsignalled. A slow sweep of every stream catches a mark lost
  with a crashed API process.
- Tenants to check (a sorted set, tenant -> due epoch ms): a worker marks a tenant after
  reading entries and before folding them, so a fold that commits and then loses its worker
  still has a mark; a PUT of rules or definitions marks its tenant due now (or keeps an earlier
  fold's mark, due within a refresh interval). The checking
  worker compares the data version with the one the views include (``tenant_state``) and
  removes the mark only when nothing is behind and nothing is in flight.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import redis

from service.store import keys
from service.store.scripts import script


def signal_new_entries(client: redis.Redis, tenant: str) -> None:
    """Called after the tenant's stream was appended to (never before: see the module doc)."""
    client.sadd(keys.tenants_with_entries(), tenant)


def take_tenants_with_entries(client: redis.Redis, limit: int) -> list[str]:
    """Remove and return up to ``limit`` signalled tenants; the caller reads their streams."""
    popped = client.spop(keys.tenants_with_entries(), limit)
    return sorted(m.decode() if isinstance(m, bytes) else m for m in popped or ())


def request_check(client: redis.Redis, tenant: str, due_ms: int) -> None:
    """Mark the tenant to be checked from ``due_ms`` on (0: now, whatever a worker's clock)."""
    script(client, "mark_check")(keys=[keys.tenants_to_check()], args=[tenant, due_ms])


def request_evaluation(client: redis.Redis, tenant: str) -> None:
    """New rule settings or connector definitions: a worker evaluates the tenant at its next
    pass, or, when a fold's mark is already there (due one refresh interval after the fold),
    when that mark is due: within MAILFLOW_REFRESH_SECONDS either way (mark_check.lua only
    raises a score, so that a check in progress never removes a newer mark)."""
    request_check(client, tenant, 0)


def due_checks(client: redis.Redis, now_ms: float, limit: int) -> list[tuple[str, float]]:
    """Tenants whose check is due at ``now_ms``, with the score each was read with."""
    due = client.zrangebyscore(keys.tenants_to_check(), "-inf", now_ms, start=0, num=limit,
                               withscores=True)  # fmt: skip
    return [(m.decode() if isinstance(m, bytes) else m, float(s)) for m, s in due]


def finish_check(client: redis.Redis, tenant: str, score: float) -> bool:
    """Remove the mark read with ``score``; False if it was marked again meanwhile."""
    return bool(script(client, "finish_check")(keys=[keys.tenants_to_check()],
                                               args=[tenant, repr(score)]))  # fmt: skip


@dataclass(frozen=True)
class TenantState:
    version: int  # the data version (folds, connector definitions)
    rules_version: int
    views_version: int  # a data version the precomputed views include
    pending: int  # stream entries read by some worker, not yet folded
    evaluation_marker: str | None

    @property
    def views_behind(self) -> bool:
        return self.views_version < self.version


def tenant_state(client: redis.Redis, tenant: str) -> TenantState:
    version, rules, built, pending, marker = script(client, "tenant_state")(
        keys=[keys.meta(tenant), keys.views_built_version(tenant), keys.stream(tenant),
              keys.insight_evaluated(tenant)],
        args=[keys.CONSUMER_GROUP],
    )  # fmt: skip
    text = marker.decode() if isinstance(marker, bytes) else marker
    return TenantState(int(version), int(rules), int(built), int(pending), text or None)


def record_views_built(client: redis.Redis, tenant: str, version: int) -> None:
    """The tenant's views now include data version ``version`` (read before building)."""
    client.set(keys.views_built_version(tenant), version)


def all_tenants(client: redis.Redis) -> Iterable[str]:
    return sorted(m.decode() for m in client.smembers(keys.tenants()))
