"""The tenant's distinct connectors, bounded: a new connector beyond the limit is refused.

Every report and insight evaluation costs work in proportion to a tenant's connectors (rows
times days), so one tenant sending thousands of distinct connector names would make every
script on its slot slow, and Redis serves every tenant from one thread. The registry keeps the
(direction, name) of each named connector the tenant sends (the connector report's row
identity; the internet rows are not counted) with the newest day it was sent for, and admits
a batch's connectors in one atomic script call, so concurrent batches never exceed the limit.
A connector whose newest day left the retention window has no counters in any report window
any more, and is forgotten; its place is free again.
"""

from __future__ import annotations

from datetime import date

import redis

from service.core.traces import FIELD_SEP, RECORD_SEP, AcceptedBatch
from service.store import keys
from service.store.scripts import script


def connector_of(counting_key: str) -> str | None:
    """``direction\\x1fname`` of a trace's counting key, None for mail without a connector."""
    direction, name, _ = counting_key.split(RECORD_SEP, 1)[1].split(FIELD_SEP, 2)
    return f"{direction}{FIELD_SEP}{name}" if name else None


def admit(
    client: redis.Redis,
    tenant: str,
    batch: AcceptedBatch,
    limit: int,
    oldest_day: date,
    lifetime_seconds: int,
) -> set[str]:
    """Admit the batch's connectors; the set of those refused (``direction\\x1fname``)."""
    newest: dict[str, int] = {}
    ordinals: dict[str, int] = {}
    # A counting key is "day RS direction FS connector FS type FS tls": a batch has few
    # distinct ones however many traces it holds. New connectors are admitted in batch order.
    for counting_key in dict.fromkeys(batch.counting_keys):  # distinct, in batch order
        connector = connector_of(counting_key)
        if connector is None:
            continue
        day = counting_key.split(RECORD_SEP, 1)[0]
        ordinal = ordinals.get(day)
        if ordinal is None:
            ordinal = ordinals[day] = date.fromisoformat(day).toordinal()
        if newest.get(connector, 0) < ordinal:
            newest[connector] = ordinal
    if not newest:
        return set()
    args: list[str | int] = [limit, oldest_day.toordinal(), lifetime_seconds]
    for connector, ordinal in newest.items():
        args += (connector, ordinal)
    refused = script(client, "admit_connectors")(keys=[keys.connector_registry(tenant)], args=args)
    return {name.decode() for name in refused}
