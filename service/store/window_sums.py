"""A window's daily counters summed, from cached sums of runs of days where they are valid.

The per-connector report needs every counter field of every day of its window added up: read
day by day, 90 days of 500 connectors is some 115,000 fields each time the report is built.
Here the runs of days that ``core.sum_plan`` picks are summed once and the sum kept in Redis,
stamped with the newest data version among its days (the fold records each day's). A later
read reuses a sum while its stamp still holds and sums it again when any of its days changed,
in the same atomic call that reads the rest, so the result is always exactly the sum of every
day as it is now.
"""

from __future__ import annotations

import redis

from service.core.sum_plan import CachedRun, Part, plan_window_sum
from service.core.windows import Window
from service.store import keys
from service.store.connectors_store import ReportCounters, definitions_from_flat
from service.store.scripts import script


def read_window_sum(client: redis.Redis, tenant: str, window: Window) -> ReportCounters:
    """Every counter field of ``window`` summed over its days, with the data version and the
    connector definitions read in the same call; ``packed`` holds the one summed string."""
    days = window.days
    key_names = [keys.meta(tenant), keys.connector_definitions(tenant)]
    key_names += [keys.day_counts(tenant, day) for day in days]
    key_names += [keys.day_version(tenant, day) for day in days]
    args: list[str | int] = [len(days)]
    for part in plan_window_sum(window):
        _encode(part, days, tenant, key_names, args)
    version, as_of, flat, packed = script(client, "read_window_sum")(keys=key_names, args=args)
    return ReportCounters(
        version=int(version),
        data_as_of_ms=int(as_of) if as_of else None,
        definitions=definitions_from_flat(flat),
        packed=[packed.decode()],
    )


def _encode(
    part: Part, days: list[str], tenant: str, key_names: list[str], args: list[str | int]
) -> None:
    """Append ``part`` in the script's plan syntax (see read_window_sum.lua), parts of a run
    after it."""
    if not isinstance(part, CachedRun):
        args.append(f"d {part + 1}")
        return
    key_names.append(keys.block_sum(tenant, days[part.first], days[part.last]))
    key, at = len(key_names), len(args)  # the run is KEYS[key] and ARGV[at + 1]
    args.append("")  # the run's own entry, once the size of its parts is known
    for inner in part.parts:
        _encode(inner, days, tenant, key_names, args)
    args[at] = (f"r {key} {part.first + 1} {part.last + 1} {part.life_seconds * 1000} "
                f"{len(args) - at - 1}")  # fmt: skip
