"""Exactly-once counting: a known TLS mix in, the same numbers out; resends change nothing."""

from __future__ import annotations

from datetime import timedelta

from service.core.tls import TLS_VERSIONS
from service.store import keys
from tests.helpers import make_traces, post_batches


def _snapshot_counts(client) -> dict[tuple[str, str], int]:
    body = client.get("/api/v1/mailflow/snapshot").json
    return {
        (direction, version): share["messages"]
        for direction, summary in body["directions"].items()
        for version, share in summary["tls"].items()
    }


def test_ten_thousand_traces_are_counted_exactly_and_resending_counts_nothing(
    client, run_worker, clock
):
    traces, truth = make_traces(10_000, clock.now, seed=11)

    assert post_batches(client, traces) == {"accepted": 10_000, "duplicates": 0, "rejected": 0}
    run_worker()
    counts = _snapshot_counts(client)
    for direction in ("inbound", "outbound"):
        for version in TLS_VERSIONS:
            assert counts[(direction, version)] == truth[(direction, version)], (direction, version)

    again = post_batches(client, traces)
    assert again == {"accepted": 0, "duplicates": 10_000, "rejected": 0}
    run_worker()
    assert _snapshot_counts(client) == counts


def test_percentages_sum_to_exactly_100_and_match_the_counts(client, run_worker, clock):
    traces, truth = make_traces(3_001, clock.now, seed=5)
    post_batches(client, traces)
    run_worker()
    body = client.get("/api/v1/mailflow/snapshot").json
    for direction, summary in body["directions"].items():
        total = sum(n for (d, _), n in truth.items() if d == direction)
        assert summary["messages"] == total
        percents = [share["percent"] for share in summary["tls"].values()]
        assert round(sum(percents), 1) == 100.0
        for version, share in summary["tls"].items():
            exact = 100 * truth[(direction, version)] / total
            assert abs(share["percent"] - exact) <= 0.1
        assert summary["encrypted_messages"] == total - truth[(direction, "none")]
        assert summary["encrypted_percent"] == round(100 - summary["tls"]["none"]["percent"], 1)


def test_duplicates_inside_one_batch_count_once(client, run_worker, clock):
    trace = {"id": "same", "timestamp": clock.now.isoformat(), "direction": "inbound",
             "tls_version": "TLSv1.2"}  # fmt: skip
    response = client.post("/api/v1/traces", json=[trace, trace, trace])
    assert response.status_code == 202
    assert (response.json["accepted"], response.json["duplicates"]) == (1, 2)
    run_worker()
    assert _snapshot_counts(client)[("inbound", "TLS1.2")] == 1


def test_traces_without_id_are_deduplicated_by_content(client, run_worker, clock):
    trace = {"timestamp": clock.now.isoformat(), "direction": "outbound", "tls_version": None,
             "sender_domain": "Example.ORG"}  # fmt: skip
    same_content = dict(trace, sender_domain="example.org")
    first = client.post("/api/v1/traces", json=[trace]).json
    second = client.post("/api/v1/traces", json=[same_content]).json
    assert (first["accepted"], second["duplicates"]) == (1, 1)


def test_ndjson_and_gzip_bodies_are_accepted(client, run_worker, clock):
    import gzip

    import orjson

    traces, truth = make_traces(200, clock.now, seed=3)
    ndjson = b"\n".join(orjson.dumps(t) for t in traces) + b"\n"
    response = client.post(
        "/api/v1/traces", data=gzip.compress(ndjson),
        headers={"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"},
    )  # fmt: skip
    assert response.status_code == 202
    assert response.json["accepted"] == 200
    wrapped = client.post("/api/v1/traces", json={"traces": traces})
    assert wrapped.json["duplicates"] == 200
    run_worker()
    assert sum(_snapshot_counts(client).values()) == sum(truth.values())


def test_the_snapshot_is_served_from_cache_with_an_etag(client, run_worker, clock):
    traces, _ = make_traces(50, clock.now, seed=2)
    post_batches(client, traces)
    run_worker()
    first = client.get("/api/v1/mailflow/snapshot")
    assert first.status_code == 200 and first.headers["ETag"]
    unchanged = client.get(
        "/api/v1/mailflow/snapshot", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert unchanged.status_code == 304
    post_batches(client, make_traces(5, clock.now, seed=9, prefix="new")[0])
    run_worker()
    changed = client.get(
        "/api/v1/mailflow/snapshot", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert changed.status_code == 200
    assert changed.json["directions"] != first.json["directions"]


def test_an_empty_window_gives_zeros(client):
    body = client.get("/api/v1/mailflow/snapshot?days=30").json
    for summary in body["directions"].values():
        assert summary["messages"] == 0 and summary["encrypted_percent"] == 0.0
        assert all(s == {"messages": 0, "percent": 0.0} for s in summary["tls"].values())
    assert body["data_as_of"] is None


def test_the_fold_records_the_data_version_of_each_day_it_changes(
    client, run_worker, clock, redis_client
):
    def fold_one_trace(n: int, days_back: int) -> None:
        post_batches(client, [{"id": f"v{n}", "direction": "inbound", "tls_version": "TLSv1.2",
                               "timestamp": (clock.now - timedelta(days=days_back)).isoformat()}])  # fmt: skip
        run_worker()

    def day_key(make, days_back: int) -> str:
        return make("default", (clock.now.date() - timedelta(days=days_back)).isoformat())

    fold_one_trace(0, 5)
    untouched = redis_client.get(day_key(keys.day_version, 5))
    fold_one_trace(1, 0)
    fold_one_trace(2, 30)
    version = redis_client.hget(keys.meta("default"), "version")
    assert int(untouched) < int(version)
    assert redis_client.get(day_key(keys.day_version, 30)) == version
    assert int(redis_client.get(day_key(keys.day_version, 0))) < int(version)  # folded before
    assert redis_client.get(day_key(keys.day_version, 5)) == untouched
    for days_back in (0, 5, 30):  # the version lives exactly as long as the day's counters
        expires = redis_client.ttl(day_key(keys.day_version, days_back))
        assert abs(expires - redis_client.ttl(day_key(keys.day_counts, days_back))) <= 1
