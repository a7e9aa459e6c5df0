"""Schemathesis against the committed spec, run from outside as a user would run it.

The schemathesis command line, over HTTP, against a real server with a key of every scope:
every check (`--checks all`) and every phase (examples, coverage, fuzzing, stateful). So: no
5xx, no response the spec does not allow, every 4xx/5xx problem+json, every request the spec
forbids refused, and every request it allows accepted. The one refinement
(tests/fuzz_checks.py) lets through exactly the refusals the spec documents in words for rules
OpenAPI cannot state (a window's dates relative to today, `days` against `start`/`end`, a
cursor the service never issued, a trace timestamp outside the ingest window), each recognised
by the parameter it names.

Deterministic (a fixed seed) and sized to finish in about a minute on two cores; raise
MAILFLOW_FUZZ_EXAMPLES locally for more.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from service.app import close_app, create_app

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "openapi" / "openapi.json"
EXAMPLES = int(os.environ.get("MAILFLOW_FUZZ_EXAMPLES", "100"))
SEED = 20261127


@pytest.fixture
def fuzz_server(redis_server, clock, run_worker):
    # Limits out of the way: the fuzzer sends far more than 600 requests a minute, and runs
    # longer than a worker heartbeat stays fresh (heartbeats are wall-clock time).
    app = create_app({"redis_url": redis_server.url, "CLOCK": clock,
                      "rate_limit_per_minute": 10**9, "rate_limit_ingest_per_minute": 10**9,
                      "worker_stale_seconds": 3600, "access_log": False,
                      # Webhook URLs the fuzzer makes up resolve here, never in real DNS.
                      "RESOLVER": lambda host, port: ["93.184.215.14"]})  # fmt: skip
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="fuzz-api", daemon=True)
    thread.start()
    run_worker()  # a fresh worker heartbeat: /readyz is 200, not an (expected) 503
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
        close_app(app)


def test_api_conforms_to_its_spec(fuzz_server, make_key, tmp_path):
    key = make_key("default", "read", "ingest", "admin", name="fuzz")
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", str(SPEC), "--url", fuzz_server,
        "--header", f"Authorization: Bearer {key}",
        "--checks", "all", "--exclude-checks", "positive_data_acceptance,negative_data_rejection",
        "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", str(EXAMPLES), "--seed", str(SEED), "--generation-deterministic",
        "--workers", "1", "--no-color", "--warnings", "off",
        "--report", "junit", "--report-dir", str(tmp_path),
    ]  # fmt: skip
    env = dict(os.environ, SCHEMATHESIS_HOOKS="tests.fuzz_checks", PYTHONPATH=str(ROOT))
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    output = done.stdout + done.stderr
    print(output)
    assert done.returncode == 0, output[-20000:]
    assert "schema_valid_requests_are_accepted" in output or "passed" in output
