"""Schemathesis against the committed spec: every operation, a key with every scope.

No 5xx, no response the spec does not allow, every 4xx/5xx is problem+json, and every request
the spec forbids is refused. Not checked: that every schema-valid request is accepted; rules
OpenAPI cannot state (a trace's timestamp within the retention window, `days` or `start`/`end`
but not both) give a documented 422. Deterministic (derandomized) and small enough for CI;
raise MAILFLOW_FUZZ_EXAMPLES locally for more.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from service.app import create_app

SPEC = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"
EXAMPLES = int(os.environ.get("MAILFLOW_FUZZ_EXAMPLES", "50"))


@pytest.fixture
def fuzz_app(redis_server, redis_client, clock):
    # Limits out of the way: the fuzzer sends far more than 600 requests a minute.
    return create_app({"redis_url": redis_server.url, "CLOCK": clock,
                       "rate_limit_per_minute": 10**9,
                       "rate_limit_ingest_per_minute": 10**9})  # fmt: skip


SCHEMA = schemathesis.openapi.from_path(str(SPEC))
OPERATIONS = {result.ok().label: result.ok() for result in SCHEMA.get_all_operations()}


@pytest.fixture
def full_key(make_key) -> str:
    return make_key("default", "read", "ingest", "admin", name="fuzz")


def problem_json_errors(ctx, response, case) -> None:
    """Every 4xx and 5xx is RFC 9457 problem+json with its status in the body."""
    if response.status_code < 400 or response.status_code == 503 and case.path == "/readyz":
        return
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/problem+json"), content_type
    assert response.json()["status"] == response.status_code


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_api_conforms_to_its_spec(label, fuzz_app, full_key, run_worker):
    run_worker()  # a fresh worker heartbeat: /readyz is 200, not an (expected) 503
    SCHEMA.app = fuzz_app
    operation = OPERATIONS[label]
    headers = {"Authorization": f"Bearer {full_key}"}
    calls: list[object] = []

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    def examples(case) -> None:
        calls.append(case)
        case.call_and_validate(app=fuzz_app, headers=headers,
                               additional_checks=[problem_json_errors],
                               excluded_checks=[positive_data_acceptance])  # fmt: skip

    examples()
    print(f"{label}: {len(calls)} cases")
    assert calls
