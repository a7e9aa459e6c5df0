"""Per-domain counters: exact for the kept domains, the rest in one row, totals as the snapshot's.

Runs on a single Redis and on a Redis Cluster (see the Makefile's cluster list).
"""

from __future__ import annotations

from collections import Counter

from service.core.who import EXTRAS_PER_NAME, OTHER, UNKNOWN, split_field
from service.store import aggregates, keys
from tests.who_traffic import domain_traffic

TENANT = "default"


def _stored(redis_client, day: str) -> tuple[Counter, dict[str, dict[str, set[str]]]]:
    """Messages per (direction, name) of one day, and each name's hosts."""
    messages: Counter = Counter()
    for raw, count in redis_client.hgetall(keys.who_counts(TENANT, "domains", day)).items():
        direction, name, marker, _ = split_field(raw.decode())
        if marker == "t":
            messages[(direction, name)] += int(count)
    hosts: dict[str, dict[str, set[str]]] = {}
    for direction in ("inbound", "outbound"):
        admitted = redis_client.hgetall(keys.who_names(TENANT, "domains", direction, day))
        hosts[direction] = {name.decode(): set(value.decode().split("\x1f")) - {""}
                            for name, value in admitted.items()}  # fmt: skip
    return messages, hosts


def _snapshot_day(redis_client, day: str) -> Counter:
    counts = aggregates.read_counters(redis_client, TENANT, [day]).days.get(day, {})
    totals: Counter = Counter()
    for field, n in counts.items():
        totals[field.split("\x1f")[0]] += n
    return totals


def test_100k_domains_over_7_days_kept_exact_rest_in_other_totals_as_snapshot(
    client, run_worker, clock, redis_client
):
    limit = 2000
    traces, truth = domain_traffic(100_000, 7, clock.now, per_domain=1)
    for start in range(0, len(traces), 5000):
        response = client.post("/api/v1/traces", json=traces[start : start + 5000])
        assert response.status_code == 202 and response.json["accepted"] == len(
            traces[start : start + 5000]
        )
    run_worker(domain_limit=limit)

    for (day, direction), total in truth.per_day.items():
        messages, _ = _stored(redis_client, day)
        kept = {name: n for (d, name), n in messages.items() if d == direction and name != OTHER}
        distinct = sum(1 for (d, dr, _) in truth.per_domain if (d, dr) == (day, direction))
        assert len(kept) == min(limit, distinct)
        for name, n in kept.items():
            assert n == truth.per_domain[(day, direction, name)], (day, direction, name)
        other = messages[(direction, OTHER)]
        assert other == total - sum(kept.values())
        assert sum(kept.values()) + other == _snapshot_day(redis_client, day)[direction]

    # Sent again: every trace is a duplicate, nothing moves.
    before = {day: _stored(redis_client, day)[0] for day, _ in truth.per_day}
    response = client.post("/api/v1/traces", json=traces[:5000])
    assert response.json["duplicates"] == 5000
    run_worker(domain_limit=limit)
    assert {day: _stored(redis_client, day)[0] for day, _ in truth.per_day} == before


def test_unknown_domains_are_one_row_and_hosts_are_bounded(client, run_worker, clock, redis_client):
    day = clock.now.date().isoformat()
    traces = [{"id": f"u{i}", "timestamp": clock.now.isoformat(), "direction": "inbound",
               "tls_version": "TLS1.2"} for i in range(3)]  # fmt: skip
    traces += [{"id": f"h{i}", "timestamp": clock.now.isoformat(), "direction": "inbound",
                "tls_version": "TLS1.2", "sender_domain": "many.example",
                "remote_host": f"mx{i}.many.example"} for i in range(25)]  # fmt: skip
    assert client.post("/api/v1/traces", json=traces).json["accepted"] == 28
    run_worker()
    messages, hosts = _stored(redis_client, day)
    assert messages[("inbound", UNKNOWN)] == 3
    assert messages[("inbound", "many.example")] == 25
    assert len(hosts["inbound"]["many.example"]) == EXTRAS_PER_NAME
    assert UNKNOWN not in hosts["inbound"]


def test_counters_expire_after_the_domain_retention(client, run_worker, clock, redis_client):
    trace = {"id": "r", "timestamp": clock.now.isoformat(), "direction": "outbound",
             "tls_version": "TLS1.3", "recipient_domain": "kept.example"}  # fmt: skip
    client.post("/api/v1/traces", json=[trace])
    run_worker(domain_retention_days=3)
    day = clock.now.date().isoformat()
    ttl = redis_client.pttl(keys.who_counts(TENANT, "domains", day))
    names_ttl = redis_client.pttl(keys.who_names(TENANT, "domains", "outbound", day))
    # Until the end of the 4th day from the day's midnight, measured from the injected clock.
    expected = aggregates.day_lifetime_ms(day, 3, clock.now)
    assert expected - 60_000 < ttl <= expected
    assert expected - 60_000 < names_ttl <= expected


def test_a_worker_remembers_admissions_and_refusals_exactly(client, clock, redis_client, settings):
    from dataclasses import replace
    from datetime import timedelta

    from tests.worker_loop import LoopDriver

    loop = LoopDriver(redis_client, replace(settings, domain_limit=2), clock)
    day = clock.now.date().isoformat()

    def send(batch: str, domains: list[str]) -> None:
        traces = [{"id": f"{batch}-{d}-{i}", "timestamp": clock.now.isoformat(),
                   "direction": "outbound", "tls_version": "TLS1.2", "recipient_domain": d,
                   "remote_host": f"mx{i}.{d}"} for d in domains for i in range(2)]  # fmt: skip
        assert client.post("/api/v1/traces", json=traces).status_code == 202
        loop.run(timedelta(seconds=3))

    send("one", ["a.example", "b.example", "c.example"])
    send("two", ["a.example", "c.example", "d.example"])  # a known, c refused, d new and refused
    messages, hosts = _stored(redis_client, day)
    assert messages[("outbound", "a.example")] == 4
    assert messages[("outbound", "b.example")] == 2
    assert messages[("outbound", OTHER)] == 6
    assert set(hosts["outbound"]) == {"a.example", "b.example"}
    assert hosts["outbound"]["a.example"] == {"mx0.a.example", "mx1.a.example"}


def test_a_batch_of_known_and_new_traces_counts_only_the_new_ones(
    client, run_worker, clock, redis_client
):
    def trace(i: int, domain: str) -> dict:
        return {"id": f"mix{i}", "timestamp": clock.now.isoformat(), "direction": "inbound",
                "tls_version": "TLS1.2", "sender_domain": domain}  # fmt: skip

    first = [trace(i, "a.example") for i in range(3)]
    assert client.post("/api/v1/traces", json=first).json["accepted"] == 3
    # Known ids again, a repeated new id, and new ones: the per-trace script path.
    mixed = [*first, trace(3, "b.example"), trace(3, "b.example"), trace(4, "a.example")]
    answer = client.post("/api/v1/traces", json=mixed).json
    assert (answer["accepted"], answer["duplicates"]) == (2, 4)
    run_worker()
    messages, _ = _stored(redis_client, clock.now.date().isoformat())
    assert messages[("inbound", "a.example")] == 4
    assert messages[("inbound", "b.example")] == 1
