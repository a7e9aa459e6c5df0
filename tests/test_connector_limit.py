"""The per-tenant limit on distinct connectors (MAILFLOW_MAX_CONNECTORS).

One tenant sending thousands of distinct connector names made every Lua script on its slot
slow for all tenants. Beyond the limit a trace of a new connector is refused by name in the
202's errors, the rest of its batch accepted, exactly even when batches race.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from service.app import create_app
from tests.conftest import KeyedClient, close_app

LIMIT = 5


@pytest.fixture
def limited_app(redis_server, redis_client, clock, make_key):
    app = create_app({"redis_url": redis_server.url, "CLOCK": clock, "max_connectors": LIMIT})
    app.test_client_class = type("LimitedClient", (KeyedClient,),
                                 {"default_key": make_key("default")})  # fmt: skip
    yield app
    close_app(app)


def trace(clock, i: int, connector: str | None, direction: str = "inbound") -> dict:
    record = {"id": f"c{i}", "timestamp": (clock.now - timedelta(minutes=1)).isoformat(),
              "direction": direction, "tls_version": "TLS1.2", "connector": connector}  # fmt: skip
    if connector is not None:
        record["connector_type"] = "partner"
    return record


def report_names(client) -> set[tuple[str, str | None]]:
    response = client.get("/api/v1/connectors?days=1&limit=1000")
    assert response.status_code == 200
    return {(row["direction"], row["name"]) for row in response.json["rows"]}


def test_connectors_beyond_the_limit_are_refused_by_name(limited_app, clock, run_worker):
    client = limited_app.test_client()
    traces = [trace(clock, i, f"partner-{i}") for i in range(LIMIT + 3)]
    traces.append(trace(clock, 100, None))  # the internet is no connector: never refused
    traces.append(trace(clock, 101, "partner-0"))  # a connector admitted in this very batch
    response = client.post("/api/v1/traces", json=traces)
    assert response.status_code == 202, response.json
    body = response.json
    assert body["accepted"] == LIMIT + 2
    assert body["rejected"] == 3
    assert [e["index"] for e in body["errors"]] == [LIMIT, LIMIT + 1, LIMIT + 2]
    for error, i in zip(body["errors"], range(LIMIT, LIMIT + 3), strict=True):
        assert error["field"] == "connector"
        assert f"'partner-{i}'" in error["message"]
        assert "MAILFLOW_MAX_CONNECTORS" in error["message"] and str(LIMIT) in error["message"]
    # A known connector stays accepted; another new one, in either direction, does not.
    again = client.post("/api/v1/traces", json=[trace(clock, 200, "partner-1"),
                                                trace(clock, 201, "new", "outbound")])  # fmt: skip
    assert again.status_code == 202
    assert (again.json["accepted"], again.json["rejected"]) == (1, 1)
    assert again.json["errors"][0]["index"] == 1
    run_worker()
    named = {name for _, name in report_names(client) if name is not None}
    assert named == {f"partner-{i}" for i in range(LIMIT)}


def test_refused_indexes_are_record_indexes_on_the_exact_path(limited_app, clock):
    client = limited_app.test_client()
    traces = [trace(clock, i, f"p{i}") for i in range(LIMIT)]
    traces.insert(1, {"timestamp": "yesterday"})  # a bad record: the exact path runs
    traces.append(trace(clock, 50, "one too many"))
    response = client.post("/api/v1/traces", json=traces)
    assert response.status_code == 202
    errors = response.json["errors"]
    assert [(e["index"], e["field"]) for e in errors][-1] == (LIMIT + 1, "connector")
    assert errors[0]["index"] == 1


def test_a_batch_of_only_refused_connectors_is_422(limited_app, clock):
    client = limited_app.test_client()
    assert (
        client.post(
            "/api/v1/traces", json=[trace(clock, i, f"p{i}") for i in range(LIMIT)]
        ).status_code
        == 202
    )
    response = client.post("/api/v1/traces", json=[trace(clock, 9, "late")])
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "connector"


def test_racing_batches_never_pass_the_limit(limited_app, clock, redis_client):
    """Many batches of new names at once: exactly LIMIT connectors are admitted in all."""
    accepted: list[int] = []
    lock = threading.Lock()

    def post(worker: int) -> None:
        client = limited_app.test_client()
        batch = [trace(clock, worker * 100 + i, f"w{worker}-{i}") for i in range(LIMIT - 1)]
        response = client.post("/api/v1/traces", json=batch)
        with lock:
            accepted.append(response.json.get("accepted", 0))

    threads = [threading.Thread(target=post, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(accepted) == LIMIT


def test_a_connector_past_retention_frees_its_place(limited_app, clock):
    client = limited_app.test_client()
    assert (
        client.post(
            "/api/v1/traces", json=[trace(clock, i, f"old{i}") for i in range(LIMIT)]
        ).status_code
        == 202
    )
    clock.advance(days=90)  # the old connectors' last day leaves the 90-day retention window
    response = client.post("/api/v1/traces", json=[trace(clock, 9, "fresh")])
    assert response.status_code == 202
    assert response.json["accepted"] == 1


def test_ndjson_refusals_name_the_line(limited_app, clock):
    import orjson

    client = limited_app.test_client()
    lines = [orjson.dumps(trace(clock, i, f"n{i}")) for i in range(LIMIT + 1)]
    body = b"\n\n".join(lines)  # blank lines between: line numbers are not positions
    response = client.post("/api/v1/traces", data=body,
                           content_type="application/x-ndjson")  # fmt: skip
    assert response.status_code == 202
    assert [e["index"] for e in response.json["errors"]] == [2 * LIMIT + 1]


def test_connector_definitions_are_held_to_the_same_limit(client, app):
    state = app.extensions["mailflow"]
    state.settings = state.settings.with_overrides({"max_connectors": 3})
    for n in range(3):
        assert (
            client.put(f"/api/v1/connectors/inbound/P{n}", json={"type": "partner"}).status_code
            == 200
        )
    refused = client.put("/api/v1/connectors/inbound/P3", json={"type": "partner"})
    assert refused.status_code == 422, refused.json
    assert refused.json["type"] == "/problems/too-many-definitions"
    assert "MAILFLOW_MAX_CONNECTORS" in refused.json["detail"]
    # Changing a defined connector is still allowed, and a delete makes room.
    assert (
        client.put("/api/v1/connectors/inbound/P0", json={"type": "onpremises"}).status_code == 200
    )
    assert client.delete("/api/v1/connectors/inbound/P1").status_code == 204
    assert client.put("/api/v1/connectors/inbound/P3", json={"type": "partner"}).status_code == 200
