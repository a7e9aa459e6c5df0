"""Under gunicorn, as operators run it: no server banner, keys never logged, revocation
effective at once in every worker process."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from service.core.api_keys import parse_key
from service.store import api_keys
from tests.helpers import gunicorn_server

SNAPSHOT = "/api/v1/mailflow/snapshot"


@pytest.fixture
def gunicorn_api(redis_server, redis_client, tmp_path):
    log = tmp_path / "gunicorn.log"
    with gunicorn_server(redis_server.url, log, web_workers="2") as base:
        yield base, log


def get(url: str, key: str | None = None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers


def test_under_gunicorn_no_banner_no_logged_keys_and_revocation_everywhere(
    gunicorn_api, make_key, redis_client
):
    base, log = gunicorn_api
    key = make_key("default", "read")
    results = [get(base + SNAPSHOT, key) for _ in range(8)]  # new connections: both workers
    assert {status for status, _ in results} == {200}
    _, headers = results[0]
    assert headers["Server"] == "mailflow"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "private" in headers["Cache-Control"]
    assert headers["RateLimit-Limit"] == "600" and int(headers["RateLimit-Remaining"]) < 600
    assert get(base + "/healthz")[1]["Server"] == "mailflow"

    api_keys.revoke(redis_client, parse_key(key)[0], "2026-11-27T12:00:00+00:00")
    assert {get(base + SNAPSHOT, key)[0] for _ in range(8)} == {401}

    text = log.read_text()
    assert SNAPSHOT in text  # the access log is on
    assert parse_key(key)[1] not in text and "Bearer" not in text
