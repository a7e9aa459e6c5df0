"""Small builders shared by tests: traces with a known truth, and ingest calls."""

from __future__ import annotations

import os
import random
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

TLS_SPELLINGS = {
    "TLS1.3": ["TLS1.3", "TLSv1.3", "TLS 1.3", "tls1_3"],
    "TLS1.2": ["TLS1.2", "TLSv1.2", "tls1_2"],
    "TLS1.1": ["TLSv1.1", "TLS1.1"],
    "TLS1.0": ["TLSv1", "TLS1.0", "TLSv1.0"],
    "SSL3": ["SSLv3", "SSL3"],
    "none": [None, "none"],
}


def make_traces(
    count: int, start: datetime, seed: int = 1, days: int = 7, prefix: str = "t"
) -> tuple[list[dict[str, Any]], Counter[tuple[str, str]]]:
    """Random traces over the ``days`` UTC days ending with ``start``'s, none later than
    ``start``, and their truth per
    (direction, canonical TLS version), counted here independently of mailflow's code."""
    rng = random.Random(seed)
    traces, truth = [], Counter()
    versions = list(TLS_SPELLINGS)
    weights = [40, 35, 5, 8, 1, 11]
    first_midnight = start.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
        days=days - 1
    )
    span = (start - first_midnight).total_seconds()
    for i in range(count):
        direction = rng.choice(("inbound", "outbound"))
        version = rng.choices(versions, weights)[0]
        when = first_midnight + timedelta(seconds=rng.uniform(0, span))
        traces.append({
            "id": f"{prefix}{i}",
            "timestamp": when.isoformat(),
            "direction": direction,
            "tls_version": rng.choice(TLS_SPELLINGS[version]),
        })  # fmt: skip
        truth[(direction, version)] += 1
    return traces, truth


def post_batches(client, traces: list[dict[str, Any]], size: int = 5000) -> dict[str, int]:
    totals = {"accepted": 0, "duplicates": 0, "rejected": 0}
    for start in range(0, len(traces), size):
        response = client.post("/api/v1/traces", json=traces[start : start + size])
        assert response.status_code == 202, response.data[:500]
        for key in totals:
            totals[key] += response.json[key]
    return totals


@contextmanager
def gunicorn_server(redis_url: str, log: Path, **env_settings: str) -> Iterator[str]:
    """gunicorn as `mailflow serve` starts it, with these MAILFLOW_* settings (names in lower
    case, as in Settings), logging to ``log``; yields its base URL and stops it after."""
    from service.cli.commands import _gunicorn_command
    from service.config import Settings
    from service.store.embedded import free_port

    port = free_port()
    env = dict(os.environ, MAILFLOW_REDIS_URL=redis_url,
               **{f"MAILFLOW_{name.upper()}": value for name, value in env_settings.items()})  # fmt: skip
    settings = Settings.from_env(env)
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
        yield base
    finally:
        process.terminate()
        process.wait(30)
