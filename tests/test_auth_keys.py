"""API keys: who may call what, as which tenant; revocation at once; the live server fixture."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from service.core.api_keys import parse_key
from service.store import api_keys
from service.web.auth import required_scope

SNAPSHOT = "/api/v1/mailflow/snapshot"


def test_a_key_is_random_public_id_plus_secret_and_stored_only_as_a_hash(make_key, redis_client):
    key = make_key("acme", "read")
    key_id, secret = parse_key(key)
    assert len(secret) == 43  # 32 random bytes, base64url
    record = api_keys.load(redis_client, key_id)
    assert record.tenant == "acme" and record.scopes == ("read",)
    stored = b"".join(redis_client.hvals(f"mf:{{key:{key_id}}}:record"))
    assert secret.encode() not in stored and key.encode() not in stored
    assert make_key("acme", "read") != key


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Basic dXNlcjpwYXNz", "Bearer nope", "Bearer mf_0123456789abcdef_x",
     "Bearer mf_0123456789abcdef_" + "A" * 43],
)  # fmt: skip
def test_missing_malformed_or_unknown_keys_are_401_with_a_bearer_challenge(app, header):
    client = app.test_client()
    client.environ_base.pop("HTTP_AUTHORIZATION")
    headers = {"Authorization": header} if header is not None else {}
    response = client.get(SNAPSHOT, headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json["type"] == "/problems/unauthorized"


def test_a_right_id_with_a_wrong_secret_is_401(client, make_key):
    key_id, _ = parse_key(make_key("default", "read"))
    response = client.get(SNAPSHOT, headers={"Authorization": f"Bearer mf_{key_id}_{'B' * 43}"})
    assert response.status_code == 401


def test_scopes_follow_the_method(client, make_key, clock):
    reader = {"Authorization": f"Bearer {make_key('default', 'read')}"}
    ingester = {"Authorization": f"Bearer {make_key('default', 'ingest')}"}
    trace = [{"timestamp": clock.now.isoformat(), "direction": "inbound", "tls_version": "TLS1.2"}]
    assert client.get(SNAPSHOT, headers=reader).status_code == 200
    assert client.post("/api/v1/traces", json=trace, headers=ingester).status_code == 202
    denied = client.post("/api/v1/traces", json=trace, headers=reader)
    assert denied.status_code == 403 and denied.json["type"] == "/problems/insufficient-scope"
    assert 'error="insufficient_scope"' in denied.headers["WWW-Authenticate"]
    assert client.get(SNAPSHOT, headers=ingester).status_code == 403
    assert required_scope("PUT", "/api/v1/connectors/x") == "admin"
    assert required_scope("DELETE", "/api/v1/insights/rules/x") == "admin"
    assert required_scope("POST", "/api/v1/connectors") == "admin"
    assert required_scope("HEAD", "/api/v1/insights") == "read"


def test_revocation_takes_effect_on_the_next_request(client, make_key, redis_client):
    key = make_key("default", "read")
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get(SNAPSHOT, headers=headers).status_code == 200
    assert api_keys.revoke(redis_client, parse_key(key)[0], "2026-11-27T12:00:00+00:00")
    response = client.get(SNAPSHOT, headers=headers)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_health_and_spec_need_no_key(app):
    client = app.test_client()
    client.environ_base.pop("HTTP_AUTHORIZATION")
    assert client.get("/healthz").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/readyz").status_code in (200, 503)


def test_live_api_serves_the_app_over_http_with_its_key(live_api):
    headers = {"Authorization": f"Bearer {live_api.key}"}
    request = urllib.request.Request(live_api.url + SNAPSHOT, headers=headers)
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
        assert "inbound" in json.load(response)["directions"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(live_api.url + SNAPSHOT)
    refused.value.close()
    assert refused.value.code == 401
