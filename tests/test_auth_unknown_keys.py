"""Unknown key ids: a miss is remembered (no Redis round trip the second time), a key created
afterwards works at once, and an unknown id costs what a known one does."""

from __future__ import annotations

import secrets

import pytest
import redis

from service.core.api_keys import hash_secret, parse_key
from service.store import api_keys, near_cache

SNAPSHOT = "/api/v1/mailflow/snapshot"


@pytest.fixture(autouse=True)
def single_redis(request):
    # On Redis Cluster there is no near cache (its pub/sub would reach one node): every key
    # lookup, known or unknown, is one round trip, and commands are counted per node.
    if request.config.getoption("--redis-mode") == "cluster":
        pytest.skip("the near cache, and so remembered misses, exist on a single Redis only")


def commands_run(client: redis.Redis) -> int:
    """Commands the test Redis has executed so far, not counting these INFO calls."""
    stats = client.info("commandstats")
    return sum(v["calls"] for name, v in stats.items() if name != "cmdstat_info")


def cost_of_get(app_client, redis_client: redis.Redis, key: str) -> tuple[int, int]:
    """(status, Redis commands) of one snapshot request with ``key``."""
    before = commands_run(redis_client)
    status = app_client.get(SNAPSHOT, headers={"Authorization": f"Bearer {key}"}).status_code
    return status, commands_run(redis_client) - before


def warm_up(app_client) -> None:
    """A first request of the app's own: connections made, near cache subscribed."""
    for _ in range(2):
        assert app_client.get(SNAPSHOT).status_code == 200


def a_key(key_id: str) -> tuple[str, str]:
    secret = secrets.token_urlsafe(32)
    return f"mf_{key_id}_{secret}", secret


def test_an_unknown_key_id_costs_one_lookup_and_a_key_created_after_works_at_once(
    client, redis_client, clock
):
    warm_up(client)
    key, secret = a_key("0123456789abcdef")
    assert cost_of_get(client, redis_client, key) == (401, 1)
    assert cost_of_get(client, redis_client, key) == (401, 0)  # the miss is remembered

    api_keys.save(redis_client, "0123456789abcdef", hash_secret(secret), "default", ["read"],
                  "created after the miss", clock.now.isoformat())  # fmt: skip
    status, _ = cost_of_get(client, redis_client, key)
    assert status == 200


def test_unknown_and_known_key_ids_cost_the_same_round_trips(client, redis_client, make_key):
    warm_up(client)
    known_id = parse_key(make_key("default", "read"))[0]
    wrong_secret_of_known, _ = a_key(known_id)
    unknown, _ = a_key("fedcba9876543210")
    known_costs = [cost_of_get(client, redis_client, wrong_secret_of_known) for _ in range(3)]
    unknown_costs = [cost_of_get(client, redis_client, unknown) for _ in range(3)]
    assert known_costs == unknown_costs == [(401, 1), (401, 0), (401, 0)]


def test_remembered_misses_are_bounded_and_never_push_out_known_records(redis_client):
    cache = near_cache.NearCache(max_entries=10, max_absent=5).start(redis_client)
    try:
        generation = cache.generation()
        cache.put("known", "record", generation)
        for n in range(50):
            cache.put_absent(f"unknown-{n}", generation)
        assert cache.get("known") == "record"
        assert [cache.get(f"unknown-{n}") for n in range(45, 50)] == [near_cache.ABSENT] * 5
        assert cache.get("unknown-0") is None  # the oldest misses made room
    finally:
        cache.stop()
