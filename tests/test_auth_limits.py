"""Rate limits per key (shared by every worker, injected clock), CORS and response hygiene."""

from __future__ import annotations

import pytest

from service.app import create_app

SNAPSHOT = "/api/v1/mailflow/snapshot"


@pytest.fixture
def make_app(redis_server, redis_client, clock):
    def make(**overrides):
        return create_app({"redis_url": redis_server.url, "CLOCK": clock, **overrides})

    return make


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def trace(clock) -> list[dict[str, str]]:
    return [{"timestamp": clock.now.isoformat(), "direction": "inbound", "tls_version": "TLS1.2"}]


def test_reads_over_the_limit_get_429_until_the_window_resets(make_app, make_key, clock):
    client = make_app(rate_limit_per_minute=3).test_client()
    key = bearer(make_key("acme", "read"))
    clock.advance(seconds=15)  # 45 s left in this minute
    seen = []
    for _ in range(3):
        response = client.get(SNAPSHOT, headers=key)
        assert response.status_code == 200
        seen.append(response.headers["RateLimit-Remaining"])
        assert response.headers["RateLimit-Limit"] == "3"
        assert response.headers["RateLimit-Reset"] == "45"
    assert seen == ["2", "1", "0"]
    limited = client.get(SNAPSHOT, headers=key)
    assert limited.status_code == 429
    assert limited.mimetype == "application/problem+json"
    assert limited.json["type"] == "/problems/rate-limited"
    assert limited.headers["Retry-After"] == "45"
    assert limited.headers["RateLimit-Remaining"] == "0"
    assert client.get(SNAPSHOT, headers=bearer(make_key("acme", "read"))).status_code == 200
    clock.advance(seconds=45)
    response = client.get(SNAPSHOT, headers=key)
    assert response.status_code == 200 and response.headers["RateLimit-Remaining"] == "2"


def test_the_limit_is_shared_by_every_worker_process(make_app, make_key):
    # Two apps on one Redis stand for two gunicorn workers.
    first = make_app(rate_limit_per_minute=2).test_client()
    second = make_app(rate_limit_per_minute=2).test_client()
    key = bearer(make_key("acme", "read"))
    assert first.get(SNAPSHOT, headers=key).status_code == 200
    assert second.get(SNAPSHOT, headers=key).status_code == 200
    assert first.get(SNAPSHOT, headers=key).status_code == 429
    assert second.get(SNAPSHOT, headers=key).status_code == 429


def test_ingest_has_its_own_budget(make_app, make_key, clock):
    client = make_app(rate_limit_per_minute=1, rate_limit_ingest_per_minute=2).test_client()
    key = bearer(make_key("acme", "read", "ingest"))
    assert client.get(SNAPSHOT, headers=key).status_code == 200
    assert client.get(SNAPSHOT, headers=key).status_code == 429
    first = client.post("/api/v1/traces", json=trace(clock), headers=key)
    assert first.status_code == 202 and first.headers["RateLimit-Limit"] == "2"
    assert client.post("/api/v1/traces", json=trace(clock), headers=key).status_code == 202
    assert client.post("/api/v1/traces", json=trace(clock), headers=key).status_code == 429


def test_a_wrong_secret_does_not_spend_the_keys_budget(make_app, make_key):
    client = make_app(rate_limit_per_minute=1).test_client()
    key = make_key("acme", "read")
    forged = key[: -len("x" * 43)] + "A" * 43
    for _ in range(3):
        assert client.get(SNAPSHOT, headers=bearer(forged)).status_code == 401
    assert client.get(SNAPSHOT, headers=bearer(key)).status_code == 200


def test_cors_answers_preflight_without_a_key_for_allowed_origins_only(make_app, make_key):
    client = make_app(cors_origins="https://dash.example, https://ops.example/").test_client()
    preflight = {"Origin": "https://ops.example", "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "authorization, if-none-match"}  # fmt: skip
    response = client.options(SNAPSHOT, headers=preflight)
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://ops.example"
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert {"authorization", "content-type", "if-none-match"} <= {
        h.strip() for h in allowed.split(",")
    }
    assert "Access-Control-Allow-Credentials" not in response.headers
    stranger = client.options(SNAPSHOT, headers={**preflight, "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in stranger.headers

    got = client.get(SNAPSHOT, headers={"Origin": "https://dash.example",
                                        **bearer(make_key("acme", "read"))})  # fmt: skip
    assert got.status_code == 200
    assert got.headers["Access-Control-Allow-Origin"] == "https://dash.example"
    exposed = got.headers["Access-Control-Expose-Headers"]
    for name in ("ETag", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
                 "Retry-After"):  # fmt: skip
        assert name in exposed
    assert "Origin" in got.headers["Vary"]
    refused = client.get(SNAPSHOT, headers={"Origin": "https://dash.example"})
    assert refused.status_code == 401  # CORS lets the browser read the 401, not skip the key
    assert refused.headers["Access-Control-Allow-Origin"] == "https://dash.example"


def test_no_cors_headers_by_default(make_app, make_key):
    client = make_app().test_client()
    preflight = {"Origin": "https://dash.example", "Access-Control-Request-Method": "GET"}
    assert "Access-Control-Allow-Origin" not in client.options(SNAPSHOT, headers=preflight).headers
    got = client.get(SNAPSHOT, headers={"Origin": "https://dash.example",
                                        **bearer(make_key("acme", "read"))})  # fmt: skip
    assert "Access-Control-Allow-Origin" not in got.headers


def test_every_response_is_nosniff_and_tenant_data_is_never_publicly_cacheable(client, clock):
    responses = [
        client.get(SNAPSHOT),
        client.post("/api/v1/traces", json=trace(clock)),
        client.post("/api/v1/traces", data=b"{", content_type="application/json"),
        client.get(SNAPSHOT, headers={"Authorization": ""}),
        client.get("/api/v1/no-such-thing"),
    ]
    assert [r.status_code for r in responses] == [200, 202, 400, 401, 404]
    for response in responses:
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        cache_control = response.headers["Cache-Control"]
        assert "private" in cache_control or "no-store" in cache_control, cache_control
        assert "Authorization" in response.headers["Vary"]
    for path in ("/healthz", "/openapi.json", "/nowhere"):
        assert client.get(path).headers["X-Content-Type-Options"] == "nosniff"
