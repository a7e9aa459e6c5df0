"""The format version of the store: which release's layout of keys and values it holds.

A release that changes what it writes, or how it reads what an older one wrote, raises
``CURRENT`` and adds the steps from the older format to ``service.store.migrations``. Every
process that writes (the API's ingest path, the worker, ``mailflow serve`` and ``run`` before
they start) asks ``require_current`` first: a store of an older format is refused with the
command that upgrades it, instead of being read wrongly or written half in each format.

A store without the version key is either new (nothing of mailflow in it: it is stamped with
``CURRENT``) or was written by 0.1.0, which had no version (format 1). The set of tenants that
ever ingested tells them apart: 0.1.0 wrote it with the first trace it accepted.
"""

from __future__ import annotations

import redis
from redis.client import Pipeline

from service.store import keys

# 1: 0.1.0 (commit 9cb2646), no version key.  2: 0.2.0 (see CHANGELOG.md, docs/operations.md).
CURRENT = 2
UNVERSIONED = 1
UPGRADE_COMMAND = "mailflow migrate"


class StoreFormatError(RuntimeError):
    """The store is not of the format this release reads and writes."""

    def __init__(self, found: int) -> None:
        self.found = found
        if found < CURRENT:
            message = (
                f"the store is of format {found}, written by an older mailflow; this "
                f"release needs format {CURRENT}: run `{UPGRADE_COMMAND}` to upgrade it "
                "in place (reads of the older release may go on meanwhile)"
            )
        else:
            message = (
                f"the store is of format {found}, written by a newer mailflow; this "
                f"release reads format {CURRENT} only: run the newer release"
            )
        super().__init__(message)


def read_format(client: redis.Redis) -> int | None:
    """The store's format version; ``UNVERSIONED`` for 0.1.0 data, None for an empty store."""
    raw = client.get(keys.store_format())
    if raw is not None:
        return int(raw)
    return UNVERSIONED if client.exists(keys.tenants()) else None


def require_current(client: redis.Redis) -> None:
    """Return if the store is of the current format (stamping a new, empty store with it),
    raise ``StoreFormatError`` otherwise."""
    found = read_format(client)
    if found is None:
        stamp_new(client)
        found = read_format(client)
    if found != CURRENT:
        raise StoreFormatError(found if found is not None else CURRENT)


def stamp_new(client: redis.Redis | Pipeline) -> None:
    """Stamp a store that has no version yet with the current one (SET NX: of two processes
    starting on a new store, both stamp the same version; a version there stays)."""
    client.set(keys.store_format(), CURRENT, nx=True)


def stamp(client: redis.Redis, version: int) -> None:
    """Record that the store is now of ``version`` (the last act of a migration)."""
    client.set(keys.store_format(), version)
