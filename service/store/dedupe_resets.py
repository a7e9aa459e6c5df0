"""Dedupe after a reset: the trace ids of a reset day count once more.

The seen-buckets remember digests of trace ids by the day they were ACCEPTED, not by the day the
trace names (see ``store.traces.DedupeWindow``), so the ids of one trace day cannot be picked
out of them. A reset instead bumps that trace day's generation (``keys.dedupe_resets``); a
trace of a day with generation ``g > 0`` is deduplicated under its digest keyed with ``g``.
Ids sent before the reset are therefore unknown once, and known again after that ingest.

Read per ingest call through the near cache (a reset publishes the key), so a tenant that was
never reset costs no round trip once its API process has seen the empty hash.
"""

from __future__ import annotations

import dataclasses
from hashlib import blake2b

import redis

from service.core.traces import AcceptedBatch
from service.store import keys, near_cache


def generations(client: redis.Redis, tenant: str) -> dict[str, int]:
    """Trace day -> its reset generation, for the days ever reset within retention."""
    key = keys.dedupe_resets(tenant)

    def load() -> dict[str, int]:
        return {_text(day): int(n) for day, n in client.hgetall(key).items()}

    found = near_cache.read_through(client, key, load)
    return found if isinstance(found, dict) else {}


def salted(batch: AcceptedBatch, reset: dict[str, int]) -> AcceptedBatch:
    """``batch`` with the digests of traces on reset days keyed by their day's generation."""
    if not reset or not any(day in reset for day in batch.days):
        return batch
    digests = [
        blake2b(digest, digest_size=16, key=f"reset:{reset[day]}".encode()).digest()
        if day in reset
        else digest
        for day, digest in zip(batch.days, batch.digests, strict=True)
    ]
    return dataclasses.replace(batch, digests=digests)  # every other column as it is


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
