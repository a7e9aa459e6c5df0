"""``mailflow migrate``: upgrade a store to the current format, in place, in bounded steps.

``STEPS`` is the ordered registry: each step upgrades one tenant's keys of one kind, a bounded
batch per call (a SCAN with COUNT, a few hundred keys), and says where to go on. The runner
records each tenant's progress per step in Redis (``keys.migration_progress``), so a run that
is killed goes on where it stopped when started again, and a step applied twice to the same
keys leaves them as once (every step is idempotent). The format version is stamped last: until
then the new release refuses the store, the older release keeps serving reads from it.
"""

from service.store.migrations.runner import MigrationReport, pending_steps, run_migrations
from service.store.migrations.steps import STEPS, Step

__all__ = ["STEPS", "MigrationReport", "Step", "pending_steps", "run_migrations"]
