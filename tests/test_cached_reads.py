"""The cached-read lane answers exactly what the full Flask path answers, and only what it can
vouch for: everything else goes the full path, admitted and counted once."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from flask import request_started

from service.app import create_app
from service.web.api.cached_reads import ROUTES
from tests.conftest import KeyedClient
from tests.helpers import make_traces, post_batches

ORIGIN = "https://siem.example"
COMPARED_AWAY = {"RateLimit-Remaining"}  # each app holds its own lease of the shared budget


def traces_with_partners(clock, partners: int) -> list[dict]:
    """Internet mail plus ``partners`` partner connectors; Partner 0 is 25 % TLS1.0 (10 of 40
    messages: enough for the inbound-partner-tls10 insight)."""
    traces, _ = make_traces(400, clock(), prefix="mix")
    for n in range(partners):
        for i in range(40 if n == 0 else 10):
            traces.append({
                "id": f"p{n}-{i}", "timestamp": (clock() - timedelta(hours=i + 1)).isoformat(),
                "direction": "inbound", "connector": f"Partner {n}", "connector_type": "partner",
                "tls_version": "TLSv1" if n == 0 and i < 10 else "TLSv1.2",
            })  # fmt: skip
    return traces


@pytest.fixture
def apps(redis_server, clock, closing, make_key):
    """(the app with the lane, the same app without it), on the same Redis, clock and CORS."""
    config = {"redis_url": redis_server.url, "CLOCK": clock, "cors_origins": ORIGIN}
    lane = closing(create_app(config))
    full = closing(create_app({**config, "cached_reads": False}))
    full.test_client_class = type("IngestClient", (KeyedClient,), {"default_key": make_key()})
    return lane, full


def served_by_flask(app) -> list[str]:
    """Paths of the requests Flask itself handled (the lane never starts a Flask request)."""
    seen: list[str] = []

    def record(sender, **extra):
        from flask import request

        seen.append(request.path)

    request_started.connect(record, app, weak=False)
    return seen


def answer(app, key: str, path: str, **headers: str):
    headers = {"Authorization": f"Bearer {key}", "X-Request-Id": "req-1", **headers}
    response = app.test_client().get(path, headers=headers)
    compared = {k: v for k, v in response.headers.items() if k not in COMPARED_AWAY}
    return response.status_code, response.data, compared


def every_default_request() -> list[str]:
    return [path + (f"?{query}" if query else "") for path, (queries, _) in ROUTES.items()
            for query in queries]  # fmt: skip


def test_the_lane_answers_exactly_what_the_full_path_answers(apps, make_key, clock, run_worker):
    lane, full = apps
    key = make_key("default")
    # 150 partner connectors: the connector report's first page (100 rows) has a next page.
    post_batches(full.test_client(), traces_with_partners(clock, 150))
    run_worker()
    handled_by_flask = served_by_flask(lane)
    for url in every_default_request():
        status, body, headers = answer(full, key, url)
        assert status == 200 and headers["ETag"], url
        variants = [{}, {"If-None-Match": headers["ETag"]}, {"If-None-Match": '"other"'},
                    {"Origin": ORIGIN}, {"Origin": "https://elsewhere.example"},
                    {"If-None-Match": headers["ETag"], "Origin": ORIGIN},
                    {"If-None-Match": "W/" + headers["ETag"]}, {"If-None-Match": "*"}]  # fmt: skip
        for extra in variants:
            assert answer(lane, key, url, **extra) == answer(full, key, url, **extra), (url, extra)
        assert answer(lane, key, url, **{"If-None-Match": "W/" + headers["ETag"]})[0] == 304
    assert handled_by_flask == []  # not vacuous: every one of them was the lane's
    first = lane.test_client().get("/api/v1/connectors", headers={"Authorization": f"Bearer {key}"})
    assert first.json["next_cursor"] and first.json["total_rows"] == 152


def test_a_cursor_from_the_lanes_first_page_walks_the_pinned_rows(
    apps, make_key, clock, run_worker
):
    lane, full = apps
    key = make_key("default")
    post_batches(full.test_client(), traces_with_partners(clock, 150))
    run_worker()
    auth = {"Authorization": f"Bearer {key}"}
    first = lane.test_client().get("/api/v1/connectors", headers=auth).json
    again = lane.test_client().get("/api/v1/connectors", headers=auth).json  # remembered page
    assert again == first
    post_batches(full.test_client(), traces_with_partners(clock, 1)[:3])  # new data meanwhile
    run_worker()
    cursor = first["next_cursor"]
    second = lane.test_client().get(f"/api/v1/connectors?cursor={cursor}", headers=auth).json
    names = [(r["direction"], r["name"]) for r in first["rows"] + second["rows"]]
    assert len(names) == len(set(names)) == 152 and second["next_cursor"] is None


@pytest.mark.parametrize("url, headers", [
    ("/api/v1/mailflow/snapshot?days=8", {}),  # not a precomputed window
    ("/api/v1/mailflow/snapshot?days=7&days=7", {}),
    ("/api/v1/connectors", {"Accept": "text/csv"}),
    ("/api/v1/connectors?group_by=day", {}),
    ("/api/v1/insights?state=all", {}),
    ("/api/v1/mailflow/snapshot/", {}),
])  # fmt: skip
def test_anything_else_goes_the_full_path(apps, make_key, url, headers):
    lane, full = apps
    key = make_key("default")
    handled_by_flask = served_by_flask(lane)
    assert answer(lane, key, url, **headers) == answer(full, key, url, **headers)
    assert handled_by_flask == [url.split("?")[0]]


@pytest.mark.parametrize("scopes, key_problem, status", [
    (("read",), "unknown", 401), (("ingest",), None, 403), (("read",), "revoked", 401),
    (("read",), "malformed", 401),
])  # fmt: skip
def test_key_problems_are_the_full_paths_problems(
    apps, make_key, redis_client, scopes, key_problem, status
):
    from service.store import api_keys

    lane, full = apps
    key = make_key("default", *scopes)
    if key_problem == "unknown":
        key = key[:-4] + "AAAA"
    elif key_problem == "revoked":
        api_keys.revoke(redis_client, key.split("_")[1], "2026-11-27T00:00:00")
    elif key_problem == "malformed":
        key = "not-a-key"
    for url in every_default_request():
        got = answer(lane, key, url)
        assert got == answer(full, key, url)
        assert got[0] == status and got[2]["Content-Type"] == "application/problem+json"


def test_the_rate_limit_counts_each_request_once_on_either_path(
    redis_server, clock, closing, make_key
):
    config = {"redis_url": redis_server.url, "CLOCK": clock, "rate_limit_per_minute": 5}
    lane = closing(create_app(config))
    key = make_key("default", "read")
    auth = {"Authorization": f"Bearer {key}"}
    statuses = [
        lane.test_client().get(url, headers=auth).status_code
        for url in ["/api/v1/mailflow/snapshot", "/api/v1/mailflow/snapshot?days=8"] * 4
    ]
    assert statuses == [200] * 5 + [429] * 3  # lane, full, lane, full, lane: five in all
    refused = lane.test_client().get("/api/v1/mailflow/tls", headers=auth)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["Content-Type"] == "application/problem+json"


def test_the_insight_feed_first_page_follows_every_evaluation(apps, make_key, clock, run_worker):
    lane, full = apps
    key = make_key("default")
    auth = {"Authorization": f"Bearer {key}"}
    assert lane.test_client().get("/api/v1/insights", headers=auth).json["items"] == []
    post_batches(full.test_client(), traces_with_partners(clock, 3))
    run_worker()
    items = lane.test_client().get("/api/v1/insights", headers=auth).json["items"]
    assert [item["rule"] for item in items] == ["inbound-partner-tls10"]
    assert answer(lane, key, "/api/v1/insights") == answer(full, key, "/api/v1/insights")


def test_redis_down_is_the_full_paths_503(clock, closing, make_key):
    from service.store.embedded import free_port

    app = closing(create_app({"redis_url": f"redis://127.0.0.1:{free_port()}", "CLOCK": clock,
                              "redis_timeout_seconds": 0.5}))  # fmt: skip
    response = app.test_client().get("/api/v1/mailflow/snapshot",
                                     headers={"Authorization": "Bearer mf_" + "0" * 16 + "_" + "A" * 43})  # fmt: skip
    assert response.status_code == 503 and "Retry-After" in response.headers


def snapshot_requests_counted(redis_client) -> float:
    from service.store import keys
    from service.telemetry.metrics import METRICS

    METRICS.flush(redis_client)
    series = ('mailflow_http_requests_total{route="/api/v1/mailflow/snapshot",method="GET",'
              'status="200"}')  # fmt: skip
    return float(redis_client.hget(keys.metrics(), series) or 0)


@pytest.mark.parametrize("cached_reads", [True, False])
def test_both_paths_count_and_log_a_request_alike(
    redis_server, clock, closing, make_key, capsys, caplog, redis_client, cached_reads
):
    caplog.set_level(logging.INFO, logger="mailflow.request")  # as MAILFLOW_LOG_LEVEL=INFO
    app = closing(create_app({"redis_url": redis_server.url, "CLOCK": clock,
                              "cached_reads": cached_reads}))  # fmt: skip
    key = make_key("default")
    before = snapshot_requests_counted(redis_client)
    capsys.readouterr()
    status, _, headers = answer(app, key, "/api/v1/mailflow/snapshot")
    assert status == 200 and headers["X-Request-Id"] == "req-1"
    assert snapshot_requests_counted(redis_client) == before + 1
    [line] = [json.loads(text) for text in capsys.readouterr().err.splitlines()
              if '"mailflow.request"' in text]  # fmt: skip
    assert line.keys() == {"time", "level", "logger", "message", "request_id", "method", "path",
                           "status", "duration_ms", "tenant"}  # fmt: skip
    assert (line["request_id"], line["tenant"], line["status"]) == ("req-1", "default", 200)
    assert key not in json.dumps(line)
