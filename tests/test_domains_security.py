"""The transport security split of the per-domain (and per-user) report: exact per kept domain,
the rest in `(other domains)`, totals equal to the snapshot's; the `min_unauthenticated_percent`
filter, the sort on each split column, the CSV columns, the per-day series, and a reset."""

from __future__ import annotations

import csv
import io
from collections import Counter

from service.store import keys
from tests.who_traffic import all_domain_rows, domain_traffic

CLASSES = ("dane", "mta-sts", "authenticated", "encrypted", "none")


def _classes(row: dict) -> dict[str, int]:
    assert list(row["security"]) == list(CLASSES)
    return {c: row["security"][c]["messages"] for c in CLASSES}


def test_class_split_is_exact_per_kept_domain_the_rest_in_other_and_totals_the_snapshots(
    client, run_worker, clock
):
    limit = 300
    traces, truth = domain_traffic(6000, 3, clock.now, per_domain=3, seed=11, classes=True)
    for number, start in enumerate(range(0, len(traces), 2000)):
        batch = traces[start : start + 2000]
        if number % 2:  # one refused record sends the batch the exact way; the others go fast
            batch = [*batch, {"id": "refused", "timestamp": clock.now.isoformat()}]
        assert client.post("/api/v1/traces", json=batch).status_code == 202
    run_worker(domain_limit=limit)

    rows = all_domain_rows(client, "days=3&limit=1000&sort=domain")
    kept = [r for r in rows if r["row"] == "domain"]
    assert len(kept) == limit * 6  # every day and direction is past its limit
    day_of = {(direction, domain): day for day, direction, domain, _ in truth.per_class}
    kept_classes: dict[str, Counter[str]] = {"inbound": Counter(), "outbound": Counter()}
    for row in kept:
        key = (day_of[(row["direction"], row["domain"])], row["direction"], row["domain"])
        assert _classes(row) == {c: truth.per_class[(*key, c)] for c in CLASSES}, key
        assert round(sum(s["percent"] for s in row["security"].values()), 1) == 100.0
        kept_classes[row["direction"]].update(_classes(row))
    snapshot = client.get("/api/v1/mailflow/snapshot?days=3").json["directions"]
    for direction in ("inbound", "outbound"):
        total = Counter()
        for (_, d, _, klass), n in truth.per_class.items():
            if d == direction:
                total[klass] += n
        assert all(total[c] for c in CLASSES)  # not vacuous: every class was sent
        (other,) = [r for r in rows if r["direction"] == direction and r["row"] == "other"]
        assert _classes(other) == {c: total[c] - kept_classes[direction][c] for c in CLASSES}
        in_rows = Counter()
        for row in rows:
            if row["direction"] == direction:
                in_rows.update(_classes(row))
        classes = snapshot[direction]["security"]["classes"]
        assert {c: in_rows[c] for c in CLASSES} == {c: total[c] for c in CLASSES}
        assert {c: classes[c]["messages"] for c in CLASSES} == {c: total[c] for c in CLASSES}


def _trace(clock, n: int, direction: str, domain: str, version: str | None, **fields) -> dict:
    trace = {"id": f"{domain}-{n}", "timestamp": clock.now.isoformat(), "direction": direction,
             "tls_version": version, **fields}  # fmt: skip
    trace["recipient_domain" if direction == "outbound" else "sender_domain"] = domain
    return trace


def _mix(clock) -> list[dict]:
    """Domains whose classes are known by construction (docs/transit-security.md's table)."""
    plan = [
        # domain, direction, version, fields, messages
        ("dane.example", "outbound", "TLS1.2", {"tls_policy": "dane"}, 4),
        ("sts.example", "outbound", "TLS1.3", {"tls_policy": "mta-sts", "tls_auth": "verified"}, 3),
        ("sts.example", "outbound", "TLS1.3", {"tls_policy": "may"}, 1),
        ("mixed.example", "outbound", "TLS1.2", {"tls_auth": "verified"}, 2),
        ("mixed.example", "outbound", "TLS1.2", {"tls_auth": "untrusted"}, 1),
        ("mixed.example", "outbound", None, {}, 1),
        ("plain.example", "outbound", None, {}, 5),
        ("opp.example", "inbound", "TLS1.3", {}, 6),
    ]  # fmt: skip
    traces = []
    for domain, direction, version, fields, count in plan:
        for _ in range(count):
            traces.append(_trace(clock, len(traces), direction, domain, version, **fields))
    return traces


def test_split_columns_filter_sort_csv_and_series(client, run_worker, clock):
    assert client.post("/api/v1/traces", json=_mix(clock)).status_code == 202
    run_worker()

    rows = {r["domain"]: r for r in client.get("/api/v1/domains").json["rows"]}
    assert _classes(rows["dane.example"]) == {**dict.fromkeys(CLASSES, 0), "dane": 4}
    assert _classes(rows["sts.example"]) == {**dict.fromkeys(CLASSES, 0), "mta-sts": 3,
                                             "encrypted": 1}  # fmt: skip
    mixed = rows["mixed.example"]
    assert _classes(mixed) == {"dane": 0, "mta-sts": 0, "authenticated": 2, "encrypted": 1,
                               "none": 1}  # fmt: skip
    assert {k: mixed[k] for k in ("authenticated_percent", "dane_percent", "mta_sts_percent",
                                  "encrypted_only_percent", "unauthenticated_percent")} == {
        "authenticated_percent": 50.0, "dane_percent": 0.0, "mta_sts_percent": 0.0,
        "encrypted_only_percent": 25.0, "unauthenticated_percent": 50.0}  # fmt: skip
    assert mixed["tls"]["none"]["messages"] == 1  # the version split is still there
    assert rows["opp.example"]["security"]["encrypted"] == {"messages": 6, "percent": 100.0}

    def names(query: str) -> list[str]:
        response = client.get(f"/api/v1/domains?{query}")
        assert response.status_code == 200, response.json
        return [r["domain"] for r in response.json["rows"]]

    assert names("min_unauthenticated_percent=50&sort=domain") == ["mixed.example", "opp.example",
                                                                   "plain.example"]  # fmt: skip
    assert names("min_unauthenticated_percent=50.1&sort=domain") == ["opp.example",
                                                                     "plain.example"]  # fmt: skip
    assert names("min_unauthenticated_percent=25&direction=outbound&sort=domain") == [
        "mixed.example", "plain.example", "sts.example"]  # fmt: skip
    assert len(names("min_unauthenticated_percent=0")) == 5
    # Ties keep (direction, domain) order: inbound before outbound.
    assert names("sort=-authenticated_percent") == ["dane.example", "sts.example",
                                                    "mixed.example", "opp.example",
                                                    "plain.example"]  # fmt: skip
    assert names("sort=unauthenticated_percent") == ["dane.example", "sts.example",
                                                     "mixed.example", "opp.example",
                                                     "plain.example"]  # fmt: skip
    assert names("sort=-mta_sts_percent")[0] == "sts.example"
    assert names("sort=-dane_percent")[0] == "dane.example"
    assert names("sort=-encrypted_only_percent")[:2] == ["opp.example", "mixed.example"]
    for bad in ("min_unauthenticated_percent=101", "min_unauthenticated_percent=x",
                "sort=security"):  # fmt: skip
        response = client.get(f"/api/v1/domains?{bad}")
        assert response.status_code == 422
        assert response.mimetype == "application/problem+json"

    exported = client.get("/api/v1/domains?format=csv&min_unauthenticated_percent=50&sort=domain")
    table = list(csv.reader(io.StringIO(exported.get_data(as_text=True))))
    assert table[0][-5:] == ["Authenticated %", "DANE %", "MTA-STS %", "Encrypted only %",
                             "Unauthenticated %"]  # fmt: skip
    assert [row[1] for row in table[1:]] == ["mixed.example", "opp.example", "plain.example"]
    assert table[1][-5:] == ["50.0", "0.0", "0.0", "25.0", "50.0"]
    assert table[3][-5:] == ["0.0", "0.0", "0.0", "0.0", "100.0"]

    series = client.get("/api/v1/domains/outbound/mixed.example?days=3").json
    assert [day["messages"] for day in series["series"]] == [0, 0, 4]
    today = series["series"][-1]
    assert _classes(today) == _classes(mixed)
    assert today["unauthenticated_percent"] == 50.0
    assert series["series"][0]["security"]["none"] == {"messages": 0, "percent": 0.0}
    assert _classes(series) == _classes(mixed) and series["authenticated_percent"] == 50.0


def test_auth_clients_carry_the_split_too(client, run_worker, clock):
    traces = [_trace(clock, n, "inbound", "ours.example", "TLS1.2", auth_user="app@ours.example",
                     **({"tls_auth": "verified"} if n < 3 else {}))
              for n in range(4)]  # fmt: skip
    assert client.post("/api/v1/traces", json=traces).status_code == 202
    run_worker()
    (row,) = client.get("/api/v1/auth-clients?min_unauthenticated_percent=25").json["rows"]
    assert (row["sender_address"], row["messages"]) == ("app@ours.example", 4)
    assert _classes(row) == {**dict.fromkeys(CLASSES, 0), "authenticated": 3, "encrypted": 1}
    assert client.get("/api/v1/auth-clients?min_unauthenticated_percent=25.1").json["rows"] == []


def test_reset_clears_the_class_counters(client, redis_client, run_worker, clock):
    day = clock.now.date().isoformat()
    assert client.post("/api/v1/traces", json=_mix(clock)).status_code == 202
    run_worker()
    counters = keys.who_counts("default", "domains", day)
    assert any(f.split(b"\x1f")[2] == b"s" for f in redis_client.hkeys(counters))
    assert client.post("/api/v1/tenant/reset", json={"start": day, "end": day}).status_code == 200
    run_worker()
    assert not redis_client.exists(counters)
    assert client.get("/api/v1/domains").json["rows"] == []
    # Counted again from nothing: no class of before the reset is left over.
    again = [_trace(clock, 100 + n, "outbound", "dane.example", "TLS1.2") for n in range(2)]
    assert client.post("/api/v1/traces", json=again).status_code == 202
    run_worker()
    (row,) = client.get("/api/v1/domains").json["rows"]
    assert _classes(row) == {**dict.fromkeys(CLASSES, 0), "encrypted": 2}


def test_dashboard_domains_page_shows_the_split_columns_sorts_and_filters_them(
    app, client, clock, make_key, run_worker
):
    from tests.html_cells import Page, sign_in

    assert client.post("/api/v1/traces", json=_mix(clock)).status_code == 202
    run_worker()
    browser = sign_in(app, make_key("default", "read"))
    query = "days=1&sort=-unauthenticated_percent&min_unauthenticated_percent=25"
    answer = browser.get(f"/domains?{query}")
    assert answer.status_code == 200, answer.data[:300]
    page = Page(answer.get_data(as_text=True))
    api = client.get(f"/api/v1/domains?{query}").json["rows"]
    assert page.texts("td", "name") == [row["domain"] for row in api] == [
        "opp.example", "plain.example", "mixed.example", "sts.example"]  # fmt: skip
    for column in ("authenticated_percent", "dane_percent", "mta_sts_percent",
                   "encrypted_only_percent", "unauthenticated_percent"):  # fmt: skip
        assert page.texts("td", column) == [f"{row[column]:.1f}" for row in api], column
        (header,) = page.elements("th", f"col-{column}")
        assert header.get("aria-sort") == ("descending" if column == "unauthenticated_percent"
                                           else None)  # fmt: skip
    assert page.texts("td", "mta_sts_percent")[-1] == "75.0"
    assert page.field("report-filters", "min_unauthenticated_percent") == "25.0"
    exported = browser.get(f"/domains/export?{query}")
    header = exported.get_data(as_text=True).splitlines()[0]
    assert header.endswith("Encrypted only %,Unauthenticated %")


def test_who_keys_carry_a_class_only_when_it_says_more_than_the_version():
    from service.core.traces import counter_field, security_segments, who_tls_segment

    def segment(tls: str, auth: str | None, policy: str | None, downgraded: bool = False) -> str:
        field = counter_field("outbound", None, None, security_segments(tls, auth, policy,
                                                                        downgraded))  # fmt: skip
        return who_tls_segment(field)

    assert segment("TLS1.2", None, None) == "TLS1.2"
    assert segment("TLS1.2", None, "may", downgraded=True) == "TLS1.2"  # encrypted: the default
    assert segment("none", None, "none", downgraded=True) == "none"
    assert segment("TLS1.3", None, "dane") == "TLS1.3:dane"
    assert segment("TLS1.2", "verified", "mta-sts") == "TLS1.2:mta-sts"
    assert segment("TLS1.0", "verified", None) == "TLS1.0:authenticated"
    assert who_tls_segment("outbound\x1f\x1f\x1fblocked\x1fdane\x1fx.example\x1freason") == (
        "blocked")  # fmt: skip


def test_rows_cached_before_the_split_read_as_their_versions_say():
    from service.core.who_report import decode_row, encode_rows

    # messages by TLS_VERSIONS (TLS1.3, TLS1.2, TLS1.1, TLS1.0, SSL3, none): 2 TLS 1.2, 1 none
    old = decode_row(b'["outbound","a.example",[0,2,0,0,0,1],[["",3]],[]]')
    assert old.classes == [0, 0, 0, 2, 1]
    new = decode_row(encode_rows(old.__class__("outbound", "a.example", [0, 2, 0, 0, 0, 1],
                                               [("", 3)], [], [1, 0, 0])))  # fmt: skip
    assert new.classes == [1, 0, 0, 1, 1]
