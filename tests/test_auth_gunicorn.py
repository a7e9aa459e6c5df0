"""Under gunicorn, as operators run it: no server banner, keys never logged, revocation
effective at once in every worker process."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from service.cli.commands import _gunicorn_command
from service.config import Settings
from service.core.api_keys import parse_key
from service.store import api_keys
from tests.conftest import free_port

SNAPSHOT = "/api/v1/mailflow/snapshot"


@pytest.fixture
def gunicorn_api(redis_server, redis_client, tmp_path):
    port = free_port()
    settings = Settings(redis_url=redis_server.url, web_workers=2)
    env = dict(os.environ, MAILFLOW_REDIS_URL=redis_server.url, MAILFLOW_WEB_WORKERS="2")
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(_gunicorn_command(settings, "127.0.0.1", port), env=env,
                                   stdout=sink, stderr=subprocess.STDOUT)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:  # start-up of an external process: poll until it answers
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=1):
                    break
            except OSError:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.1)
        yield base, log
    finally:
        process.terminate()
        process.wait(30)


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
