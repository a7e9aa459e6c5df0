"""The TLS flyout: per direction and version, and per day, against an independent truth."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta

from tests.helpers import make_traces, post_batches


def test_flyout_matches_truth_per_direction_and_day(client, clock, run_worker):
    traces, truth = make_traces(4000, clock.now, seed=3, days=7)
    post_batches(client, traces)
    run_worker()
    per_day = defaultdict(Counter)
    from service.core.tls import canonical_tls_version

    for t in traces:
        day = t["timestamp"][:10]
        per_day[day][(t["direction"], canonical_tls_version(t["tls_version"]))] += 1
    for direction_filter in (None, "inbound", "outbound"):
        query = {"direction": direction_filter} if direction_filter else {}
        body = client.get("/api/v1/mailflow/tls", query_string=query).json
        directions = [direction_filter] if direction_filter else ["inbound", "outbound"]
        assert sorted(body["directions"]) == sorted(directions)
        for direction in directions:
            summary = body["directions"][direction]
            total = sum(c for (d, _), c in truth.items() if d == direction)
            assert summary["messages"] == total
            for version, share in summary["tls"].items():
                assert share["messages"] == truth[(direction, version)]
                assert abs(share["percent"] - 100 * truth[(direction, version)] / total) <= 0.1
            assert round(sum(s["percent"] for s in summary["tls"].values()), 1) == 100.0
        assert len(body["series"]) == 7
        for entry in body["series"]:
            for direction in directions:
                day = entry["directions"][direction]
                expected = {v: c for (d, v), c in per_day[entry["date"]].items() if d == direction}
                assert day["messages"] == sum(expected.values())
                for version, share in day["tls"].items():
                    assert share["messages"] == expected.get(version, 0)


def test_flyout_window_and_etag(client, clock, run_worker):
    traces, _ = make_traces(200, clock.now, seed=5, days=3)
    post_batches(client, traces)
    run_worker()
    first = client.get("/api/v1/mailflow/tls?days=30")
    assert first.status_code == 200 and len(first.json["series"]) == 30
    assert (
        client.get(
            "/api/v1/mailflow/tls?days=30", headers={"If-None-Match": first.headers["ETag"]}
        ).status_code
        == 304
    )
    days = [(clock.now - timedelta(days=back)).date().isoformat() for back in (7, 6, 5)]
    start = client.get(f"/api/v1/mailflow/tls?start={days[0]}&end={days[2]}").json
    assert [d["date"] for d in start["series"]] == days
    assert client.get("/api/v1/mailflow/tls?direction=up").status_code == 422
    old = [(clock.now - timedelta(days=back)).date().isoformat() for back in (87, 86)]
    empty = client.get(f"/api/v1/mailflow/tls?start={old[0]}&end={old[1]}").json
    assert empty["directions"]["inbound"]["messages"] == 0


def test_flyout_and_snapshot_agree(client, clock, run_worker):
    traces, _ = make_traces(500, clock.now, seed=6)
    post_batches(client, traces)
    run_worker()
    tls = client.get("/api/v1/mailflow/tls").json
    snapshot = client.get("/api/v1/mailflow/snapshot").json
    assert tls["directions"] == snapshot["directions"]
