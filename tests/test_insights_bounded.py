"""The insight feed's reads and retention do bounded work after months of resolved insights.

Listing ``state=active`` used to scan the whole feed, and retention looked at the feed's first
100 entries and stopped at the first old active insight, so resolved insights behind it were
kept forever. Transitions are made here by the store's own ``apply_findings`` (what the worker
calls) with findings built by hand, so thousands of them take a second.
"""

from __future__ import annotations

from datetime import timedelta

import redis

from service.core.insight_rules import RULES
from service.core.insights import Finding
from service.core.timestamps import rfc3339
from service.store import insights_store, keys

TENANT = "default"
RULE = RULES["inbound-partner-tls10"]


def finding(clock, name: str) -> Finding:
    today = clock.now.date()
    return Finding(RULE, "inbound", name, "partner", today - timedelta(days=6), today, 100, 20)


class Evaluations:
    """Evaluations of one tenant, each with the next data version."""

    def __init__(self, client: redis.Redis, clock) -> None:
        self.client, self.clock, self.version = client, clock, 0

    def apply(self, names: list[str]) -> int:
        self.version += 1
        return insights_store.apply_findings(
            self.client, TENANT, [finding(self.clock, n) for n in names], self.clock.now,
            rfc3339(self.clock.now), self.version, f"m{self.version}", retention_days=90,
        )  # fmt: skip


def command_calls(client: redis.Redis) -> int:
    """Commands the tenant's Redis node has run so far (scripts' own calls included)."""
    if isinstance(client, redis.RedisCluster):
        node = client.get_node_from_key(keys.insights(TENANT))
        stats = client.info("commandstats", target_nodes=node)
    else:
        stats = client.info("commandstats")
    return sum(int(v["calls"]) for v in stats.values())


def test_active_listing_reads_only_active_insights(redis_client, clock):
    evaluations = Evaluations(redis_client, clock)
    evaluations.apply(["old active"])  # the oldest entry of the feed, active all along
    for month in range(4):  # 2,000 insights opened and resolved behind it
        evaluations.apply(["old active", *(f"p{month}-{n}" for n in range(500))])
        evaluations.apply(["old active"])
    evaluations.apply(["old active", "new active"])
    before = command_calls(redis_client)
    page = insights_store.read_feed(redis_client, TENANT, 0, 100, "active", None)
    work = command_calls(redis_client) - before
    assert [d["connector"]["name"] for d in page.documents] == ["old active", "new active"]
    assert not page.more
    assert work < 20, f"{work} commands to list 2 active insights among 2,002"


def test_old_resolved_insights_behind_an_old_active_one_are_forgotten(redis_client, clock):
    evaluations = Evaluations(redis_client, clock)
    evaluations.apply(["old active"])
    evaluations.apply(["old active", *(f"gone{n}" for n in range(1000))])
    evaluations.apply(["old active"])  # 1,000 resolved, behind the active one in the feed
    clock.advance(days=91)  # past the 90 days of retention
    for _ in range(3):  # bounded steps per evaluation; a few evaluations reach them all
        evaluations.apply(["old active", "recent"])
    everything = insights_store.read_feed(redis_client, TENANT, 0, 1000, None, None)
    names = sorted(d["connector"]["name"] for d in everything.documents)
    assert names == ["old active", "recent"]
    assert redis_client.hlen(keys.insights(TENANT)) == 2


def test_a_filtered_listing_does_bounded_work_per_call(redis_client, clock):
    """``updated_after`` later than every insight: no page may scan the whole feed."""
    evaluations = Evaluations(redis_client, clock)
    for round_ in range(3):
        evaluations.apply([f"r{round_}-{n}" for n in range(1000)])
        evaluations.apply([])
    future_ms = int((clock.now + timedelta(days=1)).timestamp() * 1000)
    before = command_calls(redis_client)
    page = insights_store.read_feed(redis_client, TENANT, 0, 100, None, future_ms)
    work = command_calls(redis_client) - before
    assert page.documents == []
    assert work < 2500, f"{work} commands for one page"
    after, pages = page.last_sequence, 1
    while page.more:  # following the cursor still walks the whole feed, to its end
        page = insights_store.read_feed(redis_client, TENANT, after, 100, None, future_ms)
        after, pages = page.last_sequence, pages + 1
        assert page.documents == [] and pages < 50


def test_insights_stored_before_the_indexes_are_indexed_by_the_next_evaluations(
    redis_client, clock
):
    evaluations = Evaluations(redis_client, clock)
    evaluations.apply(["kept active"])
    evaluations.apply(["kept active", *(f"old{n}" for n in range(1200))])
    evaluations.apply(["kept active"])
    # As a store written before the indexes existed holds them: no index, no index marks.
    redis_client.delete(keys.insight_active_feed(TENANT), keys.insight_resolved(TENANT))
    redis_client.hdel(keys.insight_evaluated(TENANT), "indexed", "active_indexed", "index_from")
    page = insights_store.read_feed(redis_client, TENANT, 0, 100, "active", None)
    assert [d["connector"]["name"] for d in page.documents] == ["kept active"]  # the old way
    clock.advance(days=91)
    for _ in range(4):  # indexing and forgetting, both in bounded steps
        evaluations.apply(["kept active"])
    assert redis_client.hlen(keys.insights(TENANT)) == 1
    page = insights_store.read_feed(redis_client, TENANT, 0, 100, "active", None)
    assert [d["connector"]["name"] for d in page.documents] == ["kept active"]
    assert redis_client.zcard(keys.insight_active_feed(TENANT)) == 1


def test_an_older_evaluation_between_the_calls_of_a_newer_never_undoes_it(redis_client, clock):
    """Evaluations are applied in several calls; two may interleave. The older one must neither
    resolve what the newer found holding nor overwrite the newer measurement."""

    def evaluation(version: int) -> insights_store.Evaluation:
        return insights_store.Evaluation(redis_client, TENANT, clock.now, rfc3339(clock.now),
                                         version, f"m{version}", 90)  # fmt: skip

    a, b = finding(clock, "A"), finding(clock, "B")
    older, newer = evaluation(5), evaluation(6)
    assert older.hold([a]) == 1
    assert newer.hold([a, b]) == 1  # B opens
    assert older.close([a.condition]) == 0  # B is not the older one's to resolve
    assert newer.close([a.condition, b.condition]) == 0
    active = insights_store.read_feed(redis_client, TENANT, 0, 100, "active", None).documents
    assert sorted(d["connector"]["name"] for d in active) == ["A", "B"]
    assert older.hold([a]) == -1  # and once the newer one is stored, the older is dropped
