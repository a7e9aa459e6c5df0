"""GET /api/v1/domains and /api/v1/auth-clients: exact rows, (other) rows, pages, CSV, series."""

from __future__ import annotations

import csv
import io
from collections import Counter

from tests.who_traffic import all_domain_rows, domain_traffic


def test_100k_domains_report_exact_kept_rows_other_row_and_snapshot_totals(
    client, run_worker, clock
):
    limit = 1500
    traces, truth = domain_traffic(100_000, 7, clock.now, per_domain=2, seed=3)
    for start in range(0, len(traces), 5000):
        assert client.post("/api/v1/traces", json=traces[start : start + 5000]).status_code == 202
    run_worker(domain_limit=limit)

    rows = all_domain_rows(client, "days=7&limit=1000&sort=domain")
    assert len({(r["direction"], r["domain"]) for r in rows}) == len(rows)  # each row once
    kept = [r for r in rows if r["row"] == "domain"]
    assert len(kept) == limit * 14  # every day and direction is past its limit
    messages: Counter = Counter()
    day_of = {(direction, domain): day for day, direction, domain in truth.per_domain}
    for row in kept:
        key = (day_of[(row["direction"], row["domain"])], row["direction"], row["domain"])
        assert row["messages"] == truth.per_domain[key]
        for version, share in row["tls"].items():
            assert share["messages"] == truth.per_version[(*key, version)]
        assert round(sum(s["percent"] for s in row["tls"].values()), 1) == 100.0
        messages[row["direction"]] += row["messages"]
    snapshot = client.get("/api/v1/mailflow/snapshot?days=7").json["directions"]
    for direction in ("inbound", "outbound"):
        total = sum(n for (_, d), n in truth.per_day.items() if d == direction)
        (other,) = [r for r in rows if r["direction"] == direction and r["row"] == "other"]
        assert other["domain"] == "(other domains)"
        assert other["messages"] == total - messages[direction]
        assert messages[direction] + other["messages"] == snapshot[direction]["messages"] == total


def _mix(clock) -> list[dict]:
    now = clock.now.isoformat()
    plan = [("outbound", "old.example", "TLSv1", 6), ("outbound", "old.example", "TLS1.2", 4),
            ("outbound", "plain.example", None, 9), ("outbound", "good.example", "TLS1.3", 30),
            ("inbound", "sender.example", "TLS1.2", 5)]  # fmt: skip
    traces = []
    for direction, domain, version, count in plan:
        for i in range(count):
            trace = {"id": f"{domain}-{version}-{i}", "timestamp": now, "direction": direction,
                     "tls_version": version, "remote_host": f"mx.{domain}"}  # fmt: skip
            trace["recipient_domain" if direction == "outbound" else "sender_domain"] = domain
            if domain == "old.example":
                trace.update(connector="Partner A", connector_type="partner")
            traces.append(trace)
    return traces


def test_filters_sort_csv_etag_and_series(client, run_worker, clock):
    assert client.post("/api/v1/traces", json=_mix(clock)).status_code == 202
    run_worker()

    body = client.get("/api/v1/domains").json
    assert [r["domain"] for r in body["rows"]] == [
        "good.example",
        "old.example",
        "plain.example",
        "sender.example",
    ]  # -messages
    old = next(r for r in body["rows"] if r["domain"] == "old.example")
    assert old["tls"]["TLS1.0"] == {"messages": 6, "percent": 60.0}
    assert old["connectors"] == [{"name": "Partner A", "messages": 10}]
    assert old["remote_hosts"] == ["mx.old.example"]

    names = lambda q: [r["domain"] for r in client.get(f"/api/v1/domains?{q}").json["rows"]]  # noqa: E731
    assert names("min_none_percent=50") == ["plain.example"]
    assert names("min_tls10_percent=60") == ["old.example"]
    assert names("min_tls10_percent=60.1") == []
    assert names("direction=inbound") == ["sender.example"]
    assert names("name=PL") == ["plain.example"]
    assert names("sort=domain") == ["good.example", "old.example", "plain.example",
                                    "sender.example"]  # fmt: skip
    assert names("sort=-TLS1.0&direction=outbound")[0] == "old.example"
    assert client.get("/api/v1/domains?sort=nonsense").status_code == 422
    assert client.get("/api/v1/domains?days=31").status_code == 422  # domain retention: 30

    first = client.get("/api/v1/domains")
    again = client.get("/api/v1/domains", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304

    exported = client.get("/api/v1/domains?format=csv")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    table = list(csv.reader(io.StringIO(exported.get_data(as_text=True))))
    assert table[0][:3] == ["Direction", "Domain", "No TLS %"]
    assert ["outbound", "old.example", "0.0", "60.0", "0.0", "40.0", "0.0", "10", "Partner A",
            "mx.old.example"] in [row[:10] for row in table]  # fmt: skip

    series = client.get("/api/v1/domains/outbound/old.example?days=3").json
    assert [day["messages"] for day in series["series"]] == [0, 0, 10]
    assert series["messages"] == 10 and series["tls"]["TLS1.0"]["percent"] == 60.0
    assert client.get("/api/v1/domains/outbound/nothing.example").status_code == 404
    assert client.get("/api/v1/domains/sideways/old.example").status_code == 404


def test_pages_hold_while_mail_arrives(client, run_worker, clock):
    assert client.post("/api/v1/traces", json=_mix(clock)).status_code == 202
    run_worker()
    first = client.get("/api/v1/domains?limit=2&sort=domain").json
    more = [dict(t, id=t["id"] + "-late") for t in _mix(clock)]
    assert client.post("/api/v1/traces", json=more).status_code == 202
    run_worker()
    second = client.get(f"/api/v1/domains?limit=2&sort=domain&cursor={first['next_cursor']}")
    assert second.status_code == 200
    rows = first["rows"] + second.json["rows"]
    assert [r["domain"] for r in rows] == ["good.example", "old.example", "plain.example",
                                           "sender.example"]  # fmt: skip
    assert [r["messages"] for r in rows] == [30, 10, 9, 5]  # the pinned version's numbers
    wrong = client.get(f"/api/v1/domains?limit=2&cursor={first['next_cursor']}")
    assert wrong.status_code == 400


def test_blocked_mail_is_not_counted_per_domain_so_totals_stay_the_snapshots(
    client, run_worker, clock
):
    """A message blocked for a TLS policy was not delivered: the snapshot does not count it,
    so neither may its recipient domain's row (on both ingest paths: a clean batch takes the
    fast one, a batch with one bad record the exact one)."""
    now = clock.now.isoformat()
    delivered = [{"id": f"ok-{i}", "timestamp": now, "direction": "outbound",
                  "tls_version": "TLS1.2", "recipient_domain": "strict.example"}
                 for i in range(3)]  # fmt: skip
    blocked = [{"id": f"blocked-{i}", "timestamp": now, "direction": "outbound",
                "tls_version": None, "recipient_domain": "strict.example", "outcome": "blocked",
                "blocked_reason": "TLS is required, but was not offered by host"}
               for i in range(2)]  # fmt: skip
    assert client.post("/api/v1/traces", json=delivered + blocked[:1]).status_code == 202
    bad = {"id": "bad", "timestamp": now}  # refused; the rest of its batch goes the exact way
    response = client.post("/api/v1/traces", json=[*blocked[1:], bad])
    assert response.status_code == 202 and response.json["accepted"] == 1
    run_worker()

    (row,) = client.get("/api/v1/domains?days=1").json["rows"]
    assert (row["domain"], row["messages"]) == ("strict.example", 3)
    assert row["tls"]["TLS1.2"]["messages"] == 3
    snapshot = client.get("/api/v1/mailflow/snapshot?days=1").json["directions"]
    assert snapshot["outbound"]["messages"] == 3
