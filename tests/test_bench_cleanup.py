"""A fault scenario stops every process it started: the last one of `make faults` used to leave
its restarted redis-server running, orphaned in a deleted temp dir."""

from __future__ import annotations

import os
from pathlib import Path

from bench import faults
from service.store.embedded import redis_server_binary


def _our_redis_servers() -> set[int]:
    binary = os.path.realpath(redis_server_binary())
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.path.realpath(entry / "exe") == binary:
                    pids.add(int(entry.name))
            except OSError:
                continue  # gone meanwhile, or not ours to read
    return pids


def test_the_empty_data_dir_scenario_leaves_no_redis_server_behind():
    before = _our_redis_servers()
    row = faults.empty_data_dir()
    assert "after: 503" in row["note"], row  # the scenario did run its fault
    assert _our_redis_servers() - before == set()
