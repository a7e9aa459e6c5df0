"""Running the registered steps: per tenant, per step, a bounded batch at a time, recording
where it got so that an interrupted run goes on from there."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import redis

from service.store import keys, store_format, tenants
from service.store.migrations.steps import STEPS, MigrationContext, Step


@dataclass
class MigrationReport:
    from_format: int | None  # None: a new store (stamped at once)
    to_format: int
    batches: int = 0
    finished: bool = False
    done: list[str] = field(default_factory=list)  # "step tenant", in order


def pending_steps(found: int | None) -> list[Step]:
    """The steps that upgrade a store of format ``found`` to the current one, in order."""
    if found is None:
        return []
    return [step for step in STEPS if found <= step.from_format < store_format.CURRENT]


def run_migrations(
    client: redis.Redis,
    today: date,
    retention_days: int,
    max_batches: int | None = None,
    progress: Callable[[str], None] = lambda _line: None,
    dedupe_days: int = 7,
) -> MigrationReport:
    """Upgrade the store to ``store_format.CURRENT``; stop early after ``max_batches`` batches
    (``finished`` is False then: run it again to go on). Raises ``StoreFormatError`` for a
    store of a newer format."""
    found = store_format.read_format(client)
    report = MigrationReport(found, store_format.CURRENT)
    if found is not None and found > store_format.CURRENT:
        raise store_format.StoreFormatError(found)
    context = MigrationContext(client, today, retention_days, dedupe_days)
    steps = pending_steps(found)
    names = tenants.known_tenants(client)
    for step in steps:
        for tenant in names:
            if not _run_step(context, step, tenant, report, max_batches, progress):
                return report
        progress(f"{step.name}: done for {len(names)} tenants ({step.why})")
    for version in sorted({step.from_format for step in steps}):
        store_format.stamp(client, version + 1)
    if found is None:
        store_format.stamp_new(client)
    for step in steps:  # bounded: one key per tenant and step
        for tenant in names:
            client.delete(keys.migration_progress(tenant, step.name))
    report.finished = True
    return report


def _run_step(
    context: MigrationContext,
    step: Step,
    tenant: str,
    report: MigrationReport,
    max_batches: int | None,
    progress: Callable[[str], None],
) -> bool:
    """Run the step for the tenant to its end; False if ``max_batches`` stopped it first."""
    client = context.client
    where = keys.migration_progress(tenant, step.name)
    done, cursor = client.hmget(where, "done", "cursor")
    if done == b"1":
        return True
    position = int(cursor or 0)
    while True:
        if max_batches is not None and report.batches >= max_batches:
            progress(f"{step.name}: stopped for {tenant} after {report.batches} batches")
            return False
        position = step.run(context, tenant, position)
        report.batches += 1
        if position == 0:
            client.hset(where, mapping={"done": 1, "cursor": 0})
            report.done.append(f"{step.name} {tenant}")
            return True
        client.hset(where, "cursor", position)
