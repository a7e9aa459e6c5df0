"""Tenant isolation, and every /api/v1 operation of the spec refusing keys it must refuse.

Operations are read from the app's live spec, so an endpoint added later is covered without
touching this file. "Refused" means:
- no key, a revoked key: 401; a key without the scope the method needs: 403;
- another tenant's key on a read: the answer is exactly what a brand-new, empty tenant gets
  (a zero report, an empty list, a 404 for a specific resource): nothing of the owner's data;
- another tenant's key on a write: it writes to its own tenant; the owner's reads do not change.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from service.core.api_keys import parse_key
from service.store import api_keys
from service.web.auth import required_scope
from tests.helpers import make_traces, post_batches

SNAPSHOT = "/api/v1/mailflow/snapshot"
SAMPLE_VALUES = {"string": "x", "integer": 1, "number": 1, "boolean": "true"}
# Path values naming the owner's resources, so that "another tenant's key gets 404 (or what an
# empty tenant gets) for a specific resource" is tested on a resource that exists.
PATH_VALUES = {"direction": "inbound", "name": "x", "rule_id": "inbound-partner-tls10"}
# The owner's configuration, where the spec has the endpoint: another tenant must not see it.
OWNER_SETUP = [
    ("/api/v1/connectors/{direction}/{name}", "/api/v1/connectors/inbound/x",
     {"type": "partner", "forced_tls": True, "description": "the owner's"}),
    ("/api/v1/insight-rules/{rule_id}", "/api/v1/insight-rules/inbound-partner-tls10",
     {"min_percent": 3.5}),
]  # fmt: skip


def api_operations(app) -> list[tuple[str, str, dict[str, Any]]]:
    spec = app.test_client().get("/openapi.json").json
    operations = []
    for path, item in spec["paths"].items():
        if not path.startswith("/api/v1"):
            continue
        shared = item.get("parameters", [])
        for method, operation in item.items():
            if method in ("get", "head", "post", "put", "patch", "delete"):
                parameters = shared + operation.get("parameters", [])
                operations.append((method.upper(), path, {**operation, "parameters": parameters}))
    return operations


def _sample(parameter: dict[str, Any], values: dict[str, str]) -> Any:
    if parameter["in"] == "path" and parameter["name"] in values:
        return values[parameter["name"]]
    schema = parameter.get("schema", {})
    for source in (parameter, schema):
        if "example" in source:
            return source["example"]
    if "default" in schema:
        return schema["default"]
    if schema.get("enum"):
        return schema["enum"][0]
    return SAMPLE_VALUES.get(schema.get("type", "string"), "x")


def request_for(
    method: str, path: str, operation: dict[str, Any], values: dict[str, str] = PATH_VALUES
) -> dict[str, Any]:
    """A request the operation can route: path and required query parameters filled in."""
    query = {}
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            path = path.replace("{" + parameter["name"] + "}", str(_sample(parameter, values)))
        elif parameter["in"] == "query" and parameter.get("required"):
            query[parameter["name"]] = _sample(parameter, values)
    request: dict[str, Any] = {"method": method, "path": path, "query_string": query}
    if method in ("POST", "PUT", "PATCH"):
        request["data"] = b"[]" if path.endswith("/traces") else b"{}"
        request["content_type"] = "application/json"
    return request


def call(client, request: dict[str, Any], key: str | None):
    headers = {"Authorization": f"Bearer {key}"} if key else {"Authorization": ""}
    return client.open(**request, headers=headers)


def refused_as_unauthorized(response) -> bool:
    return (response.status_code == 401 and response.mimetype == "application/problem+json"
            and response.headers["WWW-Authenticate"].startswith("Bearer"))  # fmt: skip


def test_every_api_operation_refuses_missing_revoked_and_wrongly_scoped_keys(
    app, make_key, redis_client
):
    client = app.test_client()
    revoked = make_key("default")
    api_keys.revoke(redis_client, parse_key(revoked)[0], "2026-11-27T12:00:00+00:00")
    operations = api_operations(app)
    assert len(operations) >= 2
    for method, path, operation in operations:
        request = request_for(method, path, operation)
        label = f"{method} {path}"
        if operation.get("security") == []:
            # The one operation whose credential is in its path, not a header: a TLS-RPT
            # intake URL (tests/test_tlsrpt_intake.py holds it to its tenant and token).
            assert path == "/api/v1/tlsrpt/intake/{token}", label
            continue
        assert refused_as_unauthorized(call(client, request, None)), label
        assert refused_as_unauthorized(call(client, request, "mf_garbage")), label
        assert refused_as_unauthorized(call(client, request, revoked)), label
        needed = required_scope(method, request["path"])
        others = [s for s in ("read", "ingest", "admin") if s != needed]
        wrong = call(client, request, make_key("default", *others))
        assert wrong.status_code == 403, label
        assert wrong.json["type"] == "/problems/insufficient-scope", label
        assert {"bearerAuth": []} in operation["security"], label
        assert {"401", "403", "429"} <= set(operation["responses"]), label


def _comparable(response) -> tuple[int, Any]:
    if response.mimetype and "json" in response.mimetype and response.data:
        body = orjson.loads(response.data)
        if isinstance(body, dict) and body.get("next_cursor"):
            # A cursor is signed for its tenant, so two tenants' cursors always differ; that
            # it is refused to any other tenant is tested with the cursors.
            body["next_cursor"] = "<a cursor>"
        return response.status_code, body
    return response.status_code, response.data


def _without_own_name(request: dict[str, Any], seen: tuple[int, Any]) -> tuple[int, Any]:
    """``GET /api/v1/tenant`` describes the key's own tenant: its name and its keys are the
    asker's own, the rest (days, messages) must be as empty as any other tenant's."""
    status, body = seen
    if request["path"] == "/api/v1/tenant" and isinstance(body, dict):
        return status, {k: v for k, v in body.items() if k not in ("tenant", "keys")}
    return seen


def test_another_tenants_key_reads_nothing_and_writes_only_its_own_tenant(
    app, make_key, clock, run_worker
):
    client = app.test_client()  # tenant default, every scope
    spec_paths = {path for _, path, _ in api_operations(app)}
    for template, path, body in OWNER_SETUP:
        if template in spec_paths:
            assert client.put(path, json=body).status_code < 300, path
    traces, _ = make_traces(300, clock.now, seed=3)
    base = {"timestamp": clock.now.isoformat(), "direction": "inbound", "connector": "x",
            "connector_type": "partner"}  # fmt: skip
    traces += [{**base, "id": f"x{i}", "tls_version": "TLS1.0" if i < 20 else "TLS1.2"}
               for i in range(100)]  # fmt: skip
    assert post_batches(client, traces)["accepted"] == 400
    run_worker()
    insight_ids = _ids(client.get("/api/v1/insights?state=all").json)
    values = dict(PATH_VALUES)
    if "/api/v1/insights/{insight_id}" in spec_paths:
        assert insight_ids, "the owner's TLS1.0 partner traffic should raise an insight"
        values["insight_id"] = insight_ids[0]
    other = make_key("other")
    empty = make_key("empty")
    operations = api_operations(app)
    reads = [(m, p, o) for m, p, o in operations if m in ("GET", "HEAD")]
    assert reads

    def owner_reads() -> list[tuple[int, Any]]:
        return [_comparable(call(client, request_for(*op, values), _owner(client)))
                for op in reads]  # fmt: skip

    before = owner_reads()
    differs = []
    for operation in reads:
        request = request_for(*operation, values)
        seen_by_other = _without_own_name(request, _comparable(call(client, request, other)))
        seen_by_empty = _without_own_name(request, _comparable(call(client, request, empty)))
        assert seen_by_other == seen_by_empty, request["path"]
        if seen_by_other != _comparable(call(client, request, _owner(client))):
            differs.append(request["path"])
    # The owner does see data where the others see none: the comparison above can fail.
    assert "/api/v1/mailflow/snapshot" in differs
    if insight_ids:
        assert f"/api/v1/insights/{insight_ids[0]}" in differs
        specific = {"path": f"/api/v1/insights/{insight_ids[0]}", "method": "GET"}
        assert call(client, specific, other).status_code == 404

    for operation in operations:
        if operation[0] not in ("GET", "HEAD"):
            call(client, request_for(*operation, values), other)
    for template, path, body in OWNER_SETUP:
        if template in spec_paths:  # the same configuration calls, as the other tenant
            client.put(path, json={**body, "type": "onpremises"} if "type" in body else body,
                       headers={"Authorization": f"Bearer {other}"})  # fmt: skip
    for record in traces[:50]:  # same ids, other tenant: new traces there, nothing here
        record["tls_version"] = "TLS1.0"
    accepted = client.post("/api/v1/traces", json=traces[:50],
                           headers={"Authorization": f"Bearer {other}"})  # fmt: skip
    assert accepted.json["accepted"] == 50 and accepted.json["duplicates"] == 0
    run_worker()
    assert owner_reads() == before


def _ids(document: Any) -> list[str]:
    """Every ``id`` of the objects in a JSON document (the insight ids of a page)."""
    if isinstance(document, dict):
        found = [document["id"]] if isinstance(document.get("id"), str) else []
        return found + [i for value in document.values() for i in _ids(value)]
    if isinstance(document, list):
        return [i for value in document for i in _ids(value)]
    return []


def _owner(client) -> str:
    return client.environ_base["HTTP_AUTHORIZATION"].removeprefix("Bearer ")


def test_identical_trace_ids_in_two_tenants_are_two_traces(app, make_key, clock, run_worker):
    client = app.test_client()
    keys = {tenant: {"Authorization": f"Bearer {make_key(tenant, 'read', 'ingest')}"}
            for tenant in ("alpha", "beta")}  # fmt: skip
    base = {"timestamp": clock.now.isoformat(), "direction": "inbound"}
    alpha = [{**base, "id": f"m{i}", "tls_version": "TLS1.2"} for i in range(3)]
    beta = [{**base, "id": f"m{i}", "tls_version": "TLS1.0"} for i in range(5)]
    assert client.post("/api/v1/traces", json=alpha, headers=keys["alpha"]).json["accepted"] == 3
    second = client.post("/api/v1/traces", json=beta, headers=keys["beta"]).json
    assert (second["accepted"], second["duplicates"]) == (5, 0)
    run_worker()
    inbound = {t: client.get(SNAPSHOT, headers=keys[t]).json["directions"]["inbound"]
               for t in keys}  # fmt: skip
    assert inbound["alpha"]["messages"] == 3 and inbound["alpha"]["tls"]["TLS1.2"]["messages"] == 3
    assert inbound["beta"]["messages"] == 5 and inbound["beta"]["tls"]["TLS1.0"]["messages"] == 5
    assert inbound["alpha"]["tls"]["TLS1.0"]["messages"] == 0
    etags = {client.get(SNAPSHOT, headers=keys[t]).headers["ETag"] for t in keys}
    assert len(etags) == 2


@pytest.mark.parametrize("header_tenant", ["X-Tenant", "X-Mailflow-Tenant"])
def test_the_tenant_comes_from_the_key_only(client, make_key, header_tenant, clock, run_worker):
    key = make_key("alpha", "read", "ingest")
    trace = [{"timestamp": clock.now.isoformat(), "direction": "inbound", "tls_version": None}]
    headers = {"Authorization": f"Bearer {key}", header_tenant: "default"}
    assert client.post("/api/v1/traces?tenant=default", json=trace,
                       headers=headers).status_code == 202  # fmt: skip
    run_worker()
    assert client.get(SNAPSHOT).json["directions"]["inbound"]["messages"] == 0  # default
    mine = client.get(SNAPSHOT, headers={"Authorization": f"Bearer {key}"})
    assert mine.json["directions"]["inbound"]["messages"] == 1
    assert client.get(SNAPSHOT + "?tenant=alpha").status_code == 422  # no such parameter
