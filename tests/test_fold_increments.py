"""fold.lua's increments as sent (msgpack): any field text, big counts, and its chunks of fields
come back from the counters exactly as added."""

from __future__ import annotations

import contextlib

import redis

from service.core.fold import EntryIncrements
from service.store import aggregates, keys

TENANT = "acme"
CONSUMER = "worker-1"


def _pending_entry(redis_client, traces: int, clock) -> EntryIncrements:
    """One stream entry read by ``CONSUMER`` (pending: the fold may ack it), adding nothing to
    the daily counters of its own: the increments under test are the extra counters."""
    stream = keys.stream(TENANT)
    entry_id = redis_client.xadd(stream, {"n": traces})
    with contextlib.suppress(redis.ResponseError):  # BUSYGROUP: made by an entry before
        redis_client.xgroup_create(stream, keys.CONSUMER_GROUP, id="0")
    redis_client.xreadgroup(keys.CONSUMER_GROUP, CONSUMER, {stream: ">"})
    day = clock.now.date().isoformat()
    return EntryIncrements(entry_id.decode(), {(day, "inbound\x1f\x1fTLS1.2"): traces},
                           int(clock.now.timestamp() * 1000), traces)  # fmt: skip


def _fold(redis_client, clock, counts: dict[str, int], kind: str = "domains") -> None:
    day = clock.now.date().isoformat()
    extra = aggregates.ExtraCounters(keys.who_counts(TENANT, kind, day),
                                     keys.who_version(TENANT, kind, day), 86_400_000, counts)  # fmt: skip
    result = aggregates.fold(redis_client, TENANT, CONSUMER, [_pending_entry(redis_client, 1, clock)],
                             90, clock.now, extra=lambda entries: [extra])  # fmt: skip
    assert result.entries == 1


def _stored(redis_client, clock, kind: str = "domains") -> dict[str, int]:
    day = clock.now.date().isoformat()
    return {field.decode(): int(n)
            for field, n in redis_client.hgetall(keys.who_counts(TENANT, kind, day)).items()}  # fmt: skip


def test_fields_of_any_text_are_stored_as_sent(redis_client, clock):
    odd = ["outbound\x1fa\tb\x1ft\x1fTLS1.2", "outbound\x1fline\nbreak\x1ft\x1fTLS1.3",
           "inbound\x1fmüller@bücher.example\x1ft\x1fnone", "inbound\x1f\x1ft\x1fTLS1.0",
           "inbound\x1f%d %s\x1fc\x1fPartner 1", "inbound\x1f\"quoted\"\\\x1ft\x1fSSL3",
           "inbound\x1f1\t2\t3\n\x1ft\x1fTLS1.1",
           f"inbound\x1f{'long-user.' * 40}@example.com\x1ft\x1fTLS1.2"]  # fmt: skip
    _fold(redis_client, clock, {field: i + 1 for i, field in enumerate(odd)})
    _fold(redis_client, clock, {field: 10 for field in odd})
    assert _stored(redis_client, clock) == {field: i + 11 for i, field in enumerate(odd)}
    day = clock.now.date().isoformat()
    assert redis_client.hgetall(keys.day_counts(TENANT, day)) == {b"inbound\x1f\x1fTLS1.2": b"2"}


def test_counts_above_32_bits_stay_exact_integers(redis_client, clock):
    # Round sums too: written as %g writes them, they would come out as "1e+08".
    big = {"inbound\x1fa\x1ft\x1fTLS1.2": 2**31 + 1, "inbound\x1fb\x1ft\x1fTLS1.2": 2**33,
           "inbound\x1fc\x1ft\x1fTLS1.2": 2**50 + 3, "inbound\x1fd\x1ft\x1fTLS1.2": 1,
           "inbound\x1fe\x1ft\x1fTLS1.2": 5 * 10**7, "inbound\x1ff\x1ft\x1fTLS1.2": 5 * 10**11}  # fmt: skip
    _fold(redis_client, clock, big)
    _fold(redis_client, clock, {**big, "inbound\x1fd\x1ft\x1fTLS1.2": 2**52})
    day = clock.now.date().isoformat()
    stored = redis_client.hgetall(keys.who_counts(TENANT, "domains", day))
    assert stored == {field.encode(): str(2 * n if n > 1 else 2**52 + 1).encode()
                      for field, n in big.items()}  # fmt: skip
    # Integers as Redis writes them (no exponent, no decimals): HINCRBY takes them.
    key = keys.who_counts(TENANT, "domains", day)
    assert redis_client.hincrby(key, "inbound\x1fc\x1ft\x1fTLS1.2", 1) == 2**51 + 7


def test_every_field_of_several_chunks_is_added(redis_client, clock):
    # Chunks of 2,000 fields per HMGET/HSET: just below, at and past their edges, over two
    # hashes in one call, some fields holding counts already.
    domains = {f"inbound\x1fd{i}.example\x1ft\x1fTLS1.2": i + 1 for i in range(4001)}
    users = {f"outbound\x1fu{i}@example.com\x1ft\x1fTLS1.3": 7 for i in range(2000)}
    thirds = {field for i, field in enumerate(domains) if i % 3 == 0}
    _fold(redis_client, clock, {field: domains[field] for field in thirds})
    _fold(redis_client, clock, {f: 1 for f in list(users)[1999:]}, kind="auth")
    day = clock.now.date().isoformat()
    entry = _pending_entry(redis_client, 1, clock)
    extras = [aggregates.ExtraCounters(keys.who_counts(TENANT, "domains", day),
                                       keys.who_version(TENANT, "domains", day), 86_400_000, domains),
              aggregates.ExtraCounters(keys.who_counts(TENANT, "auth", day),
                                       keys.who_version(TENANT, "auth", day), 86_400_000, users)]  # fmt: skip
    aggregates.fold(redis_client, TENANT, CONSUMER, [entry], 90, clock.now,
                    extra=lambda entries: extras)  # fmt: skip
    assert _stored(redis_client, clock) == {
        field: n * 2 if field in thirds else n for field, n in domains.items()
    }
    assert _stored(redis_client, clock, "auth") == {
        f: 8 if f.startswith("outbound\x1fu1999@") else 7 for f in users
    }
