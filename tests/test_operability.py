"""/metrics across gunicorn workers, JSON logs with request ids, and nothing secret in either."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from datetime import UTC, datetime

import orjson

from service.telemetry import metrics
from tests.test_auth_gunicorn import gunicorn_api  # noqa: F401 - a fixture, used by name


def _post(base: str, key: str, traces: list[dict], request_id: str) -> tuple[int, str]:
    request = urllib.request.Request(
        base + "/api/v1/traces", data=orjson.dumps(traces), method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json",
                 "X-Request-Id": request_id},
    )  # fmt: skip
    with urllib.request.urlopen(request) as response:
        return response.status, response.headers["X-Request-Id"]


def _scrape(base: str) -> dict[str, float]:
    with urllib.request.urlopen(base + "/metrics") as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            samples[series] = float(value)
    return samples


def test_metrics_add_up_across_gunicorn_workers_and_logs_are_json_without_keys(
    gunicorn_api,  # noqa: F811 - the fixture imported above
    make_key,
):
    base, log = gunicorn_api
    key = make_key("default", "ingest", "read")
    now = datetime.now(UTC).isoformat()
    requests = 24
    for i in range(requests):
        good = {
            "id": f"m{i % 20}",
            "timestamp": now,
            "direction": "inbound",
            "tls_version": "TLS1.2",
        }
        bad = {"id": f"bad{i}", "timestamp": now, "direction": "sideways", "tls_version": None}
        status, echoed = _post(base, key, [good, bad], f"req-{i}")
        assert (status, echoed) == (202, f"req-{i}")

    expected = {
        'mailflow_traces_total{outcome="accepted"}': 20,
        'mailflow_traces_total{outcome="duplicate"}': requests - 20,
        'mailflow_traces_total{outcome="rejected"}': requests,
        'mailflow_traces_rejected_total{field="direction"}': requests,
        'mailflow_http_requests_total{route="/api/v1/traces",method="POST",status="202"}': requests,
    }
    deadline = time.monotonic() + 20
    while True:  # each worker adds its counts to Redis every second: poll with a deadline
        samples = _scrape(base)
        if all(samples.get(k) == v for k, v in expected.items()):
            break
        assert time.monotonic() < deadline, {k: samples.get(k) for k in expected}
        time.sleep(0.2)
    count = 'mailflow_http_request_duration_seconds_count{route="/api/v1/traces",status="202"}'
    assert samples[count] == requests
    # No MAILFLOW_METRICS_TOKEN: the backlog is summed, no tenant is named (test_metrics_tenants).
    assert samples["mailflow_stream_backlog_entries"] >= 1
    assert not any("tenant=" in series for series in samples)

    lines = [line for line in log.read_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(entries) == len(lines), "every log line is one JSON object"
    logged_ids = {e.get("request_id") for e in entries if e.get("message") == "request"}
    assert {f"req-{i}" for i in range(requests)} <= logged_ids
    secret = key.rsplit("_", 1)[-1]
    assert secret not in log.read_text()


def test_a_malformed_request_id_is_replaced(client):
    response = client.get("/healthz", headers={"X-Request-Id": "x" * 65})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-Id"])
    other = client.get("/healthz", headers={"X-Request-Id": "bad id <script>"})
    assert re.fullmatch(r"[0-9a-f]{32}", other.headers["X-Request-Id"])


def test_backlog_can_be_summed_over_tenants(client, redis_client, clock):
    trace = {"timestamp": clock.now.isoformat(), "direction": "inbound", "tls_version": "TLS1.3"}
    assert client.post("/api/v1/traces", json=[trace]).status_code == 202
    text = metrics.render(redis_client, time.time(), 15, per_tenant=False)
    assert "mailflow_stream_backlog_entries 1" in text.splitlines()
    assert "tenant=" not in text
