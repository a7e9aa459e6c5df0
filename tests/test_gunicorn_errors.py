"""No HTML and no route map for a caller without a key: gunicorn's own refusals are
problem+json with mailflow's headers, and OPTIONS answers every /api/v1 path alike."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest

from service.app import create_app
from tests.test_auth_gunicorn import gunicorn_api  # noqa: F401 - the fixture, shared

ORIGIN = "https://dash.example"


def raw_request(base: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` as is on a new connection; the status, headers and body answered."""
    parts = urlsplit(base)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        conn.sendall(request)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
            head, _, body = received.partition(b"\r\n\r\n")
            length = [line.split(b":", 1)[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")]  # fmt: skip
            if length and len(body) >= int(length[0]):
                break
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    return int(status_line.split()[1]), headers, body


REFUSED = [
    (414, b"GET /healthz?q=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    (431, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 17000 + b"\r\n\r\n"),
    (431, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-H%d: 1\r\n" % n for n in range(120)) + b"\r\n"),
    (400, b"GARBAGE\r\n\r\n"),
    (400, b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"),
]  # fmt: skip


def test_gunicorns_own_refusals_are_problem_json(gunicorn_api):  # noqa: F811
    base, _ = gunicorn_api
    for status, request in REFUSED:
        answered, headers, body = raw_request(base, request)
        assert answered == status, (request[:60], answered, body[:200])
        assert headers["content-type"] == "application/problem+json", headers
        assert json.loads(body)["status"] == status
        assert headers["server"] == "mailflow"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == "no-store"


def test_long_requests_within_the_bound_reach_the_app(gunicorn_api):  # noqa: F811
    base, _ = gunicorn_api
    line = b"GET /healthz?q=" + b"a" * 7000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    status, headers, _ = raw_request(base, line + b"X-Big: " + b"b" * 12000 + b"\r\n\r\n")
    assert status == 200 and headers["content-type"].startswith("application/json")


@pytest.fixture
def cors_client(redis_server, clock, closing):
    return closing(create_app({"redis_url": redis_server.url, "CLOCK": clock,
                               "cors_origins": ORIGIN})).test_client()  # fmt: skip


def _comparable(response) -> tuple[int, bytes, dict[str, str]]:
    headers = {k: v for k, v in response.headers.items() if k != "X-Request-Id"}
    return response.status_code, response.data, headers


@pytest.mark.parametrize("extra", [{}, {"Authorization": "Bearer mf_nope.nope"},
                                   {"Origin": ORIGIN}])  # fmt: skip
def test_options_without_a_key_does_not_map_routes(cors_client, extra):
    existing = ["/api/v1/connectors", "/api/v1/insights", "/api/v1/traces",
                "/api/v1/insight-rules/inbound-partner-tls10"]  # fmt: skip
    missing = [
        "/api/v1/nothing",
        "/api/v1/connectors/sideways/x",
        "/api/v1/insight-rulez",
        "/api/v1",
    ]
    answers = {path: _comparable(cors_client.options(path, headers=extra))
               for path in existing + missing}  # fmt: skip
    assert len(set(map(repr, answers.values()))) == 1, answers
    assert next(iter(answers.values()))[0] == 204


def test_preflights_from_allowed_origins_still_work(cors_client):
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "Authorization"}  # fmt: skip
    response = cors_client.options("/api/v1/connectors", headers=preflight)
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "GET" in response.headers["Access-Control-Allow-Methods"]
    other = cors_client.options(
        "/api/v1/connectors", headers={**preflight, "Origin": "https://evil.example"}
    )
    assert other.status_code == 204 and "Access-Control-Allow-Origin" not in other.headers
