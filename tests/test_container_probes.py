"""The container's health checks mean something, and run: the API's probe is its /readyz, a
worker's probe is its heartbeat in Redis; compose's Redis has a memory limit; every file the
container files point to exists."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from service.store import health

ROOT = Path(__file__).resolve().parents[1]
ENTRYPOINT = ROOT / "docker-entrypoint.sh"


def _healthcheck_command() -> list[str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    (line,) = [line for line in text.splitlines() if line.startswith("HEALTHCHECK")]
    return yaml.safe_load(line.split(" CMD ", 1)[1])  # the exec form is a JSON array


def _probe(tmp_path: Path, role: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """The image's HEALTHCHECK command, in a container that was started as ``role``."""
    (tmp_path / "mailflow-role").write_text("".join(f"{arg}\n" for arg in role))
    command = _healthcheck_command()
    assert command[0] == "docker-entrypoint.sh"  # COPY'd to /usr/local/bin, on PATH
    bin_dir = str(Path(sys.executable).parent)  # mailflow, python: as in the image's venv
    return subprocess.run(["sh", str(ENTRYPOINT), *command[1:]], capture_output=True, text=True,
                          timeout=30, env=dict(os.environ, TMPDIR=str(tmp_path),
                                               PATH=f"{bin_dir}:{os.environ['PATH']}", **env))  # fmt: skip


def test_the_worker_probe_is_its_heartbeat(tmp_path, redis_client, settings):
    env = {"MAILFLOW_REDIS_URL": settings.effective_redis_url}
    role = ["worker", "--name", "worker-1"]  # as docker-compose.yml starts it
    assert _probe(tmp_path, role, **env).returncode != 0  # never beat
    health.beat(redis_client, "worker-1", time.time() - 60)  # beat, then stopped
    stale = _probe(tmp_path, role, **env)
    assert stale.returncode != 0 and "s old" in stale.stderr, stale.stderr
    health.beat(redis_client, "worker-2", time.time())  # another worker's beat is not its own
    assert _probe(tmp_path, role, **env).returncode != 0
    health.beat(redis_client, "worker-1", time.time())
    fresh = _probe(tmp_path, role, **env)
    assert fresh.returncode == 0, fresh.stderr
    # With no Redis behind it, it is not healthy either.
    assert _probe(tmp_path, role, MAILFLOW_REDIS_URL="redis://127.0.0.1:1/0").returncode != 0


def test_a_worker_without_a_name_is_found_by_its_host(tmp_path, redis_client, settings):
    import socket

    env = {"MAILFLOW_REDIS_URL": settings.effective_redis_url}
    assert _probe(tmp_path, ["worker"], **env).returncode != 0
    health.beat(redis_client, f"{socket.gethostname()}:4242", time.time())  # host:pid
    assert _probe(tmp_path, ["worker"], **env).returncode == 0


def test_the_api_probe_is_its_readiness(tmp_path, live_api):
    port = live_api.url.rsplit(":", 1)[1]
    not_ready = _probe(tmp_path, ["api"], MAILFLOW_PORT=port)
    assert not_ready.returncode != 0 and "503" in not_ready.stderr  # no worker: not healthy
    live_api.run_worker()  # a worker beats (and makes the store's instance id)
    ready = _probe(tmp_path, ["api"], MAILFLOW_PORT=port)
    assert ready.returncode == 0, ready.stderr
    assert _probe(tmp_path, ["api"], MAILFLOW_PORT="1").returncode != 0  # nothing listening


@pytest.mark.parametrize("role", [[], ["keys", "list"]])
def test_a_one_off_container_has_nothing_to_probe(tmp_path, role):
    if not role:  # started before any role was written down
        assert subprocess.run(["sh", str(ENTRYPOINT), "healthcheck"], timeout=30,
                              env=dict(os.environ, TMPDIR=str(tmp_path))).returncode == 0  # fmt: skip
    else:
        assert _probe(tmp_path, role).returncode == 0


def test_compose_redis_has_a_memory_limit_and_workers_keep_the_image_probe():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    redis_args = compose["services"]["redis"]["command"]
    policy = redis_args[redis_args.index("--maxmemory-policy") + 1]
    limit = redis_args[redis_args.index("--maxmemory") + 1]
    assert policy == "noeviction" and re.fullmatch(r"[1-9]\d*(gb|mb)", limit)
    for name, service in compose["services"].items():
        if name.startswith(("api", "worker")):
            assert "healthcheck" not in service, name  # the image's role probe applies
            assert service["command"][0] in ("api", "worker")


def test_files_the_container_files_name_exist():
    named = set()
    for path in ("Dockerfile", "docker-compose.yml", "docker-entrypoint.sh"):
        named |= set(re.findall(r"\b(?:docs|bench|service)/[\w./-]+\.\w+\b",
                                (ROOT / path).read_text()))  # fmt: skip
        named |= set(re.findall(r"\b[\w-]+\.md\b", (ROOT / path).read_text()))
    # A bare name (README.md, or scaling.md of a docs/ path) is at the top or in docs/.
    missing = [name for name in sorted(named)
               if not any((where / name).exists() for where in (ROOT, ROOT / "docs"))]  # fmt: skip
    assert missing == [], missing
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", (ROOT / "Dockerfile").read_text(), re.M)
    for sources in copied:
        for source in shlex.split(sources):
            assert (ROOT / source).exists(), source
