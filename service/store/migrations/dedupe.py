"""The place of the dedupe step in the upgrade from format 1 (0.1.0).

0.1.0 kept the digests of accepted trace ids in ``seen:<day>`` sets by the day each trace
names; the dedupe store of 0.2.0 changes how they are kept. Its own module converts them; this
step calls that conversion for one bounded batch of one tenant. Until it is wired here the
step does nothing, and ids accepted by 0.1.0 may be accepted once more by 0.2.0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.store.migrations.steps import MigrationContext


def convert_seen_ids(context: MigrationContext, tenant: str, cursor: int) -> int:
    """Convert the tenant's seen trace ids to the dedupe format of 0.2.0 (to be wired).

    The dedupe store's conversion belongs here: one bounded batch from ``cursor`` (a SCAN of
    ``seen:*``), returning the next cursor, 0 when done, idempotent.
    """
    del context, tenant, cursor
    return 0
