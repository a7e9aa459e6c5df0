"""Where the dedupe window keeps a trace id: a small integer set per acceptance day and digest
prefix.

A trace id's 16-byte digest (salted after a reset, see ``dedupe_resets``) is cut in two: the
first 7 bits name one of 128 buckets of the acceptance day (``keys.seen_bucket``), and its
bytes 8..15, read as a signed 64-bit integer, are the member kept there. Redis keeps a set of
integers as an ``intset`` (a sorted array, 8 bytes a member, binary search) while it holds at
most ``set-max-intset-entries`` members; a bigger one becomes a listpack or a hash table, as
exact and two to five times bigger (docs/redis-versions.md). 71 bits of the digest decide
whether an id is known: docs/internals.md gives the chance of a false "duplicate".

Why 128 buckets a day: every bucket of every day of the window is a key the call passes and a
command the script runs, so fewer, bigger buckets make a batch cheaper to look up, until an
insertion into a big intset (a memmove of half of it) costs more. Measured with
``bench.dedupe_memory`` against 64 and 256: 128 was the fastest at 200,000 and at 1,000,000
ids in the window.

The ingest scripts receive, per batch, the bucket keys of only the prefixes the batch holds
(every key they touch is in KEYS, all under the tenant's hash tag), and per trace the index of
its prefix among them.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import redis

from service.store import keys

PREFIX_BITS = 7  # the digest's first bits: they name the bucket
PREFIXES = 1 << PREFIX_BITS  # buckets per acceptance day
_TO_PREFIX = bytes(byte >> (8 - PREFIX_BITS) for byte in range(256))
# The embedded server's ``set-max-intset-entries`` (Redis's default: 512): a bucket holds 1/128
# of a tenant's ids of one day, so 4,096 keeps every bucket an intset up to ~480,000 ids per
# tenant and day, where the default stops at ~55,000. Bigger intsets cost more per insert (a
# sorted array: a memmove of half of it, 16 KiB here), so not more.
SEEN_BUCKET_INTSET_ENTRIES = 4096
_MEMBER = struct.Struct("<8xq")  # of a 16-byte digest: bytes 8..15, a signed 64-bit integer


@dataclass(frozen=True)
class SeenLookup:
    """A batch's ids as the ingest scripts take them.

    ``key_names``: per window day (today's first, as ``DedupeWindow.bucket_days``), the bucket
    of each prefix the batch holds, in one order. ``ids``: ARGV of the scripts, "n LF", then n
    bytes (each trace's prefix index in that order), then the n members separated by spaces.
    ``distinct``: no two traces of the batch share a member, so the ids are distinct and the
    fast path may count the batch (two ids with one member and two prefixes, ~never, only
    send the batch down the exact path)."""

    key_names: list[bytes]
    ids: bytes
    distinct: bool


def split(digests: Sequence[bytes]) -> tuple[bytes, list[int]]:
    """Each digest's bucket prefix (one byte each) and the member kept in that bucket."""
    blob = b"".join(digests)
    if len(blob) != 16 * len(digests):
        raise ValueError("trace id digests are 16 bytes")
    return blob[::16].translate(_TO_PREFIX), [member for (member,) in _MEMBER.iter_unpack(blob)]


def lookup(tenant: str, digests: Sequence[bytes], bucket_days: Sequence[str]) -> SeenLookup:
    prefixes, members = split(digests)
    present = sorted(set(prefixes))
    if len(present) < PREFIXES:  # renumber the prefixes present 0..len-1
        order = bytearray(256)  # a translation table: one byte for each byte
        for index, prefix in enumerate(present):
            order[prefix] = index
        prefixes = prefixes.translate(order)
    chosen = tuple(present)
    key_names = [name for day in bucket_days for name in _day_keys(tenant, day, chosen)]
    text = " ".join(map(str, members)).encode()
    distinct = len(set(members)) == len(members)  # else the exact path: as exact, slower
    return SeenLookup(key_names, b"%d\n" % len(members) + prefixes + text, distinct)


@lru_cache(maxsize=4096)
def _day_keys(tenant: str, day: str, present: tuple[int, ...]) -> list[bytes]:
    # Encoded once: redis-py packs a bytes argument in half the time of a str, and a batch
    # of 5,000 passes 128 bucket names per day of the window.
    return [keys.seen_bucket(tenant, day, prefix).encode() for prefix in present]


def day_buckets(tenant: str, day: str) -> list[str]:
    """Every bucket key of one acceptance day (most exist only once ids were accepted)."""
    return [keys.seen_bucket(tenant, day, prefix) for prefix in range(PREFIXES)]


def memory_usage(client: redis.Redis, tenant: str, days: Sequence[str]) -> int:
    """Bytes the buckets of these acceptance days take (``MEMORY USAGE``): the benchmarks'."""
    return sum(client.memory_usage(name, samples=0) or 0
               for day in days for name in day_buckets(tenant, day))  # fmt: skip
