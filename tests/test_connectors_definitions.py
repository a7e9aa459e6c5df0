"""Connector definitions: reports show them, traces take their type, contradictions are rejected."""

from __future__ import annotations

from datetime import timedelta

from tests.helpers import post_batches


def trace(clock, n, connector="Contoso", tls="TLS1.2", **extra):
    return {"id": f"d{n}", "timestamp": clock.now.isoformat(), "direction": "inbound",
            "connector": connector, "tls_version": tls, **extra}  # fmt: skip


def define(client, name="Contoso", direction="inbound", **body):
    body = {"type": "partner", **body}
    return client.put(f"/api/v1/connectors/{direction}/{name}", json=body)


def test_defined_connector_appears_without_traffic_and_is_removable(client, run_worker):
    response = define(client, forced_tls=True, description="Contoso's gateway")
    assert response.status_code == 200
    assert response.json == {"direction": "inbound", "name": "Contoso", "type": "partner",
                             "forced_tls": True, "description": "Contoso's gateway"}  # fmt: skip
    rows = client.get("/api/v1/connectors").json["rows"]
    assert len(rows) == 1
    row = rows[0]
    assert (row["name"], row["type"], row["forced_tls"], row["defined"]) == (
        "Contoso", "partner", True, True)  # fmt: skip
    assert row["messages"] == 0 and all(s["percent"] == 0.0 for s in row["tls"].values())
    assert client.get("/api/v1/connectors?forced_tls=true").json["rows"] == rows
    detail = client.get("/api/v1/connectors/inbound/Contoso")
    assert detail.status_code == 200 and detail.json["description"] == "Contoso's gateway"
    assert client.delete("/api/v1/connectors/inbound/Contoso").status_code == 204
    assert client.get("/api/v1/connectors").json["rows"] == []
    assert client.get("/api/v1/connectors/inbound/Contoso").status_code == 404
    assert client.delete("/api/v1/connectors/inbound/Contoso").status_code == 404


def test_traces_take_the_defined_type_and_contradictions_are_rejected(client, clock, run_worker):
    assert define(client, type="onpremises").status_code == 200
    batch = [
        trace(clock, 1),  # no connector_type: the definition's
        trace(clock, 2, connector_type="onpremises"),
        trace(clock, 3, connector_type="partner"),  # contradicts
        trace(clock, 4, connector="Other"),  # undefined, no type: still an error
        trace(clock, 5, connector="Contoso", direction="outbound"),  # defined inbound only
    ]
    response = client.post("/api/v1/traces", json=batch)
    assert response.status_code == 202
    assert response.json["accepted"] == 2 and response.json["rejected"] == 3
    errors = {e["index"]: e for e in response.json["errors"]}
    assert errors[2]["field"] == "connector_type"
    assert "contradicts" in errors[2]["message"] and "onpremises" in errors[2]["message"]
    assert errors[3]["field"] == errors[4]["field"] == "connector_type"
    run_worker()
    [row] = client.get("/api/v1/connectors").json["rows"]
    assert (row["name"], row["type"], row["messages"]) == ("Contoso", "onpremises", 2)


def test_definition_change_invalidates_cached_reports(client, clock, run_worker):
    post_batches(client, [trace(clock, n, connector_type="partner") for n in range(3)])
    run_worker()
    first = client.get("/api/v1/connectors")
    assert first.json["rows"][0]["forced_tls"] is False
    etag = first.headers["ETag"]
    define(client, forced_tls=True)
    # No worker run: the precomputed view is stale until the worker's next refresh, so ask for
    # an ad-hoc window too (keyed by the data version, which the definition bumped).
    adhoc = client.get("/api/v1/connectors?days=5", headers={"If-None-Match": etag})
    assert adhoc.status_code == 200 and adhoc.json["rows"][0]["forced_tls"] is True
    run_worker(refresh_seconds=0)
    again = client.get("/api/v1/connectors", headers={"If-None-Match": etag})
    assert again.status_code == 200 and again.json["rows"][0]["forced_tls"] is True


def test_definition_is_per_direction_and_validated(client):
    assert define(client, direction="outbound").status_code == 200
    assert define(client, type="cloud").status_code == 422
    assert define(client, colour="red").status_code == 422
    assert client.put("/api/v1/connectors/inbound/-", json={"type": "partner"}).status_code == 422
    assert define(client, direction="sideways").status_code == 404
    [row] = client.get("/api/v1/connectors").json["rows"]
    assert row["direction"] == "outbound"


def test_connector_report_of_one_connector(client, clock, run_worker):
    traces = [trace(clock, n, connector_type="partner", tls="TLS1.0" if n % 4 == 0 else "TLS1.2")
              for n in range(8)]  # fmt: skip
    clock.advance(days=-1)
    traces += [trace(clock, 100 + n, connector_type="partner", tls=None) for n in range(2)]
    traces += [{**trace(clock, 200 + n, connector=None), "tls_version": "TLS1.3"}
               for n in range(5)]  # fmt: skip
    clock.advance(days=1)
    post_batches(client, traces)
    run_worker()
    detail = client.get("/api/v1/connectors/inbound/Contoso?days=3").json
    assert detail["messages"] == 10 and detail["type"] == "partner" and detail["defined"] is False
    assert detail["tls"]["TLS1.0"] == {"messages": 2, "percent": 20.0}
    assert detail["tls"]["none"] == {"messages": 2, "percent": 20.0}
    today, yesterday = clock.now.date(), clock.now.date() - timedelta(days=1)
    series = {d["date"]: d for d in detail["series"]}
    assert len(series) == 3
    assert series[today.isoformat()]["messages"] == 8
    assert series[yesterday.isoformat()]["tls"]["none"]["percent"] == 100.0
    internet = client.get("/api/v1/connectors/inbound/-").json
    assert internet["name"] is None and internet["messages"] == 5
    assert client.get("/api/v1/connectors/outbound/Contoso").status_code == 404
    assert client.get("/api/v1/connectors/inbound/Cont").status_code == 404  # not a prefix
    first = client.get("/api/v1/connectors/inbound/Contoso")
    again = client.get("/api/v1/connectors/inbound/Contoso",
                       headers={"If-None-Match": first.headers["ETag"]})  # fmt: skip
    assert again.status_code == 304


def test_connector_names_with_slashes_and_spaces(client, clock, run_worker):
    name = "Relay / EU west"
    post_batches(client, [trace(clock, 1, connector=name, connector_type="partner")])
    run_worker()
    response = client.get("/api/v1/connectors/inbound/Relay%20/%20EU%20west")
    assert response.status_code == 200 and response.json["name"] == name


def test_definitions_need_the_admin_scope(app, make_key):
    reader = app.test_client()
    key = make_key("default", "read")
    response = reader.put("/api/v1/connectors/inbound/Contoso", json={"type": "partner"},
                          headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert response.status_code == 403
