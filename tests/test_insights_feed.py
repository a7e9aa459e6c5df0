"""The insight feed a SIEM polls: every transition exactly once, in order, while insights change."""

from __future__ import annotations

import random

from tests.helpers import post_batches
from tests.test_insights_lifecycle import mail


class Poller:
    """A SIEM: follows next_cursor, remembers every (id, state, sequence) it was shown."""

    def __init__(self, client, limit: int) -> None:
        self.client, self.limit, self.cursor = client, limit, None
        self.events: list[tuple[str, str, int]] = []

    def page(self) -> bool:
        query = {"state": "all", "limit": self.limit}
        if self.cursor:
            query["cursor"] = self.cursor
        body = self.client.get("/api/v1/insights", query_string=query).json
        self.events += [(i["id"], i["state"], i["sequence"]) for i in body["items"]]
        self.cursor = body["next_cursor"]
        return body["has_more"]

    def drain(self) -> None:
        while self.page():
            pass


def flapping_day(client, clock, run_worker, rng, connectors=12):
    traces = []
    for n in range(connectors):
        traces += mail(clock, f"Partner {n:02d}", 100, rng.choice((0, 0, 12, 40)))
    post_batches(client, traces)
    run_worker()


def final_states(client):
    body = client.get("/api/v1/insights", query_string={"state": "all", "limit": 1000}).json
    return {i["id"]: (i["state"], i["sequence"]) for i in body["items"]}


def test_poller_between_evaluations_sees_every_transition_once(client, clock, run_worker):
    rng, poller = random.Random(5), Poller(client, limit=3)
    for _ in range(10):
        flapping_day(client, clock, run_worker, rng)
        poller.drain()
        clock.advance(days=1)
    final = final_states(client)
    resolved = sum(1 for state, _ in final.values() if state == "resolved")
    assert len(final) > 5 and resolved > 3  # the scenario really flaps
    # Every insight was detected once and resolved at most once: that many transitions.
    assert len(poller.events) == len(final) + resolved
    sequences = [s for _, _, s in poller.events]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
    for insight_id, (state, _) in final.items():
        states = [st for i, st, _ in poller.events if i == insight_id]
        assert states == (["active", "resolved"] if state == "resolved" else ["active"])
    assert poller.events[-1][2] == max(s for _, s in final.values())


def test_poller_paging_while_insights_change_misses_and_repeats_nothing(client, clock,
                                                                        run_worker):  # fmt: skip
    rng, poller = random.Random(8), Poller(client, limit=2)
    for _ in range(8):
        flapping_day(client, clock, run_worker, rng)
        poller.page()  # one page only: evaluations keep landing between the poller's pages
        clock.advance(days=1)
    poller.drain()
    final = final_states(client)
    seen = poller.events
    assert len(set(seen)) == len(seen)  # nothing repeated
    sequences = [s for _, _, s in seen]
    assert sequences == sorted(sequences)  # in order
    last_seen = {}
    for insight_id, state, sequence in seen:
        assert last_seen.get(insight_id, ("active", 0))[0] == "active"  # never after resolved
        last_seen[insight_id] = (state, sequence)
    assert last_seen == final  # nothing missed: the poller ends with the true state of each


def test_updated_after_then_cursor(client, clock, run_worker):
    post_batches(client, mail(clock, "A", 100, 20))
    run_worker()
    cutoff = clock.now.isoformat()
    clock.advance(hours=1)
    post_batches(client, mail(clock, "B", 100, 20) + mail(clock, "C", 100, 20))
    run_worker()
    body = client.get("/api/v1/insights", query_string={"updated_after": cutoff}).json
    assert sorted(i["connector"]["name"] for i in body["items"]) == ["B", "C"]
    # Two transitions in one evaluation, the same millisecond: told apart by the sequence.
    assert body["items"][0]["updated_at"] == body["items"][1]["updated_at"]
    assert body["items"][0]["sequence"] + 1 == body["items"][1]["sequence"]
    query = {"updated_after": cutoff, "cursor": body["next_cursor"]}
    again = client.get("/api/v1/insights", query_string=query).json
    assert again["items"] == [] and again["has_more"] is False
    post_batches(client, mail(clock, "D", 100, 20))
    run_worker()
    query["cursor"] = again["next_cursor"]
    later = client.get("/api/v1/insights", query_string=query).json
    assert [i["connector"]["name"] for i in later["items"]] == ["D"]
    naive = client.get("/api/v1/insights?updated_after=2026-11-27T10:00:00")
    assert naive.status_code == 422  # RFC 3339 needs an offset


def test_insights_etag_and_bad_cursor(client, clock, run_worker):
    post_batches(client, mail(clock, "A", 100, 20))
    run_worker()
    first = client.get("/api/v1/insights")
    assert len(first.json["items"]) == 1
    same = client.get("/api/v1/insights", headers={"If-None-Match": first.headers["ETag"]})
    assert same.status_code == 304
    cursor = first.json["next_cursor"]
    assert client.get(f"/api/v1/insights?state=resolved&cursor={cursor}").status_code == 400
    assert client.get("/api/v1/insights?cursor=garbage").status_code == 400
    assert client.get("/api/v1/insights?limit=1001").status_code == 422
    assert client.get("/api/v1/insights?state=open").status_code == 422
