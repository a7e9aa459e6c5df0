"""The dedupe step of the upgrade from format 1 (0.1.0).

0.1.0 kept the digests of accepted trace ids in ``seen:<day>`` sets by the day each trace
names; 0.2.0 keeps them in small integer-set buckets per acceptance day (``seen_buckets``).
``dedupe_migration`` converts them; this step runs one bounded batch of it for one tenant.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import TYPE_CHECKING

from service.store import dedupe_migration

if TYPE_CHECKING:
    from service.store.migrations.steps import MigrationContext

IDS_PER_BATCH = 100_000  # one batch: about 100 atomic steps of 1,000 ids


def convert_seen_ids(context: MigrationContext, tenant: str, cursor: int) -> int:
    """Move the tenant's seen trace ids into the buckets 0.2.0's ingest scripts read.

    Without it, an id 0.1.0 accepted would be accepted once more (counted twice) by 0.2.0.
    The cursor only says "not done yet": the old sets shrink as ids move, so a batch that
    runs again after an interruption carries on from what is left.
    """
    del cursor
    # The acceptance day is the service clock's; the migration knows its day, not its time.
    now = datetime.combine(context.today, time(), UTC)
    progress = dedupe_migration.convert_tenant(
        context.client, tenant, now, context.dedupe_days, budget=IDS_PER_BATCH
    )
    return 0 if progress.done else 1
