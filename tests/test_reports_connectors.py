"""The connector report against a generated dataset whose truth is counted here, in plain Python."""

from __future__ import annotations

import csv
import io
import random
from collections import Counter, defaultdict
from datetime import datetime, timedelta

import pytest

from tests.helpers import post_batches

VERSIONS = ("none", "TLS1.0", "TLS1.1", "TLS1.2", "TLS1.3", "SSL3")
CONNECTORS = [
    ("inbound", "Contoso Partner", "partner"),
    ("inbound", "contoso backup", "partner"),
    ("inbound", "HQ Exchange", "onpremises"),
    ("outbound", "HQ Exchange", "onpremises"),
    ("outbound", "Fabrikam", "partner"),
    ("outbound", '=HYPERLINK("x")', "partner"),
    ("inbound", None, None),
    ("outbound", None, None),
]


def generate(now: datetime, count: int = 3000, days: int = 10, seed: int = 4):
    """Traces over ``days`` UTC days ending today, and truth[(day, direction, name)][version]."""
    rng = random.Random(seed)
    traces, truth = [], defaultdict(Counter)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    for i in range(count):
        direction, name, ctype = rng.choice(CONNECTORS)
        version = rng.choices(VERSIONS, [5, 9, 3, 50, 30, 1])[0]
        back = rng.randrange(days)
        span = 86400 if back else (now - midnight).total_seconds()
        when = midnight - timedelta(days=back) + timedelta(seconds=rng.uniform(0, span - 1))
        trace = {"id": f"g{i}", "timestamp": when.isoformat(), "direction": direction,
                 "connector": name, "tls_version": version}  # fmt: skip
        if ctype:
            trace["connector_type"] = ctype
        traces.append(trace)
        truth[(when.date().isoformat(), direction, name)][version] += 1
    return traces, truth


@pytest.fixture
def loaded(client, clock, run_worker):
    traces, truth = generate(clock.now)
    post_batches(client, traces)
    run_worker()
    return truth


def check_row(row: dict, expected: Counter) -> None:
    total = sum(expected.values())
    assert row["messages"] == total
    shown = {v: row["tls"][v] for v in VERSIONS if v in row["tls"]}
    assert set(shown) >= {"none", "TLS1.0", "TLS1.1", "TLS1.2", "TLS1.3"}
    assert ("SSL3" in shown) == bool(expected["SSL3"])
    for version, share in shown.items():
        assert share["messages"] == expected[version]
        exact = 100 * expected[version] / total if total else 0.0
        assert abs(share["percent"] - exact) <= 0.1 + 1e-9
        assert round(share["percent"], 1) == share["percent"]
    percents = round(sum(s["percent"] for s in shown.values()), 1)
    assert percents == (100.0 if total else 0.0)


def totals_by_connector(truth, days: set[str]):
    out = defaultdict(Counter)
    for (day, direction, name), counts in truth.items():
        if day in days:
            out[(direction, name)].update(counts)
    return out


def fetch_all(client, **params) -> list[dict]:
    rows, cursor = [], None
    while True:
        query = dict(params, limit=params.get("limit", 1000))
        if cursor:
            query["cursor"] = cursor
        response = client.get("/api/v1/connectors", query_string=query)
        assert response.status_code == 200, response.json
        rows += response.json["rows"]
        cursor = response.json["next_cursor"]
        if cursor is None:
            return rows


def window_days(clock, days: int) -> set[str]:
    return {(clock.now.date() - timedelta(days=i)).isoformat() for i in range(days)}


TYPES = {(d, n): t for d, n, t in CONNECTORS}

FILTERS = [
    ({}, lambda d, n: True),
    ({"direction": "inbound"}, lambda d, n: d == "inbound"),
    ({"type": "partner"}, lambda d, n: TYPES[(d, n)] == "partner"),
    ({"type": "onpremises"}, lambda d, n: TYPES[(d, n)] == "onpremises"),
    ({"type": "internet"}, lambda d, n: n is None),
    ({"name": "CONTOSO"}, lambda d, n: n is not None and n.lower().startswith("contoso")),
    ({"forced_tls": "false"}, lambda d, n: True),
    ({"forced_tls": "true"}, lambda d, n: False),
    ({"direction": "outbound", "type": "partner"},
     lambda d, n: d == "outbound" and TYPES[(d, n)] == "partner"),
]  # fmt: skip


@pytest.mark.parametrize("days", [7, 10, 3])
@pytest.mark.parametrize(("params", "keep"), FILTERS)
def test_rows_per_connector_match_truth(client, clock, loaded, days, params, keep):
    expected = totals_by_connector(loaded, window_days(clock, days))
    expected = {k: v for k, v in expected.items() if keep(*k)}
    rows = fetch_all(client, days=days, **params)
    assert {(r["direction"], r["name"]) for r in rows} == set(expected)
    for row in rows:
        assert "date" not in row
        assert row["type"] == TYPES[(row["direction"], row["name"])]
        assert row["forced_tls"] is False
        check_row(row, expected[(row["direction"], row["name"])])


@pytest.mark.parametrize(("params", "keep"), FILTERS)
def test_rows_per_day_match_truth(client, clock, loaded, params, keep):
    days = window_days(clock, 7)
    expected = {k: v for k, v in loaded.items() if k[0] in days and keep(k[1], k[2])}
    rows = fetch_all(client, group_by="day", limit=7, **params)
    assert [(r["date"], r["direction"], r["name"]) for r in rows] == sorted(
        expected, key=lambda k: (k[0], k[1], k[2] or "")
    )
    for row in rows:
        check_row(row, expected[(row["date"], row["direction"], row["name"])])


@pytest.mark.parametrize("sort", ["messages", "-messages", "name", "-name", "-TLS1.0", "type",
                                  "-date", "forced_tls", "-SSL3", "TLS1.3"])  # fmt: skip
def test_sort_orders_rows_and_breaks_ties_by_key(client, loaded, sort):
    rows = fetch_all(client, group_by="day", sort=sort, limit=50)
    column, descending = sort.lstrip("-"), sort.startswith("-")

    def value(row):
        if column == "messages":
            return row["messages"]
        if column in VERSIONS:
            share = row["tls"].get(column, {"messages": 0})["messages"]
            return share / row["messages"] if row["messages"] else 0.0
        return row.get(column) or ""

    values = [value(r) for r in rows]
    assert values == sorted(values, reverse=descending)
    for a, b in zip(rows, rows[1:], strict=False):
        if value(a) == value(b):
            assert (a["date"], a["direction"], a["name"] or "") < (
                b["date"], b["direction"], b["name"] or "")  # fmt: skip


def test_csv_holds_the_same_numbers_as_json(client, loaded):
    rows = fetch_all(client, group_by="day", days=10)
    response = client.get("/api/v1/connectors?group_by=day&days=10&format=csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    table = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert table[0] == ["Date", "Connector direction and name", "Connector type", "Forced TLS?",
                        "No TLS %", "TLS 1.0 %", "TLS 1.1 %", "TLS 1.2 %", "TLS 1.3 %", "Volume",
                        "SSL 3.0 %", "Authenticated %", "DANE %", "MTA-STS %",
                        "Encrypted only %", "Blocked"]  # fmt: skip
    assert len(table) == len(rows) + 1
    for cells, row in zip(table[1:], rows, strict=True):
        assert cells[0] == row["date"]
        name = row["name"] if row["name"] is not None else "(no connector)"
        label = f"{row['direction'].capitalize()} - {name}"
        assert cells[1] == label  # direction first: never a formula
        assert cells[2] == {"partner": "Partner", "onpremises": "OnPremises", None: ""}[row["type"]]
        assert cells[3] == "No"
        percents = [float(c) for c in cells[4:9]]
        assert percents == [row["tls"][v]["percent"] for v in VERSIONS[:5]]
        assert int(cells[9]) == row["messages"]
        assert float(cells[10]) == row["tls"].get("SSL3", {"percent": 0.0})["percent"]
        assert round(sum(percents) + float(cells[10]), 1) == 100.0


def test_csv_by_accept_header_filters_and_neutralises_formulas(client, loaded):
    response = client.get("/api/v1/connectors?name==HYP", headers={"Accept": "text/csv"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    table = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert len(table) == 2
    assert table[1][1] == 'Outbound - =HYPERLINK("x")'
    from service.core.connector_csv import safe_cell

    assert safe_cell("=1+1") == "'=1+1" and safe_cell("@SUM(A1)") == "'@SUM(A1)"
    assert safe_cell("-2") == "'-2" and safe_cell("+2") == "'+2" and safe_cell("a=b") == "a=b"
    again = client.get("/api/v1/connectors?name==HYP&format=csv",
                       headers={"If-None-Match": response.headers["ETag"]})  # fmt: skip
    assert again.status_code == 304


def test_json_report_has_etag_and_answers_304(client, loaded):
    first = client.get("/api/v1/connectors?days=7")
    assert first.status_code == 200
    again = client.get(
        "/api/v1/connectors?days=7", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert again.status_code == 304
    other = client.get("/api/v1/connectors?days=7&direction=inbound",
                       headers={"If-None-Match": first.headers["ETag"]})  # fmt: skip
    assert other.status_code == 200


def test_empty_window_gives_no_rows_not_errors(client):
    response = client.get("/api/v1/connectors")
    assert response.status_code == 200
    assert response.json["rows"] == [] and response.json["next_cursor"] is None


@pytest.mark.parametrize("query", ["sort=volume", "limit=1001", "limit=0", "group_by=week",
                                   "type=internetz", "direction=sideways", "days=91",
                                   "format=xml", "bogus=1"])  # fmt: skip
def test_bad_parameters_are_422(client, query):
    response = client.get(f"/api/v1/connectors?{query}")
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"


def test_foreign_cursor_is_400(client, loaded):
    page = client.get("/api/v1/connectors?group_by=day&limit=5").json
    response = client.get(
        f"/api/v1/connectors?group_by=day&limit=5&direction=inbound&cursor={page['next_cursor']}"
    )
    assert response.status_code == 400
    assert response.json["errors"][0]["field"] == "cursor"
    assert client.get("/api/v1/connectors?cursor=%%%%").status_code == 400
