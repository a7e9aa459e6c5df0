"""CPU used by each part of a benchmark run (API, worker, Redis), read from ``/proc``.

Standard library only, so that it can be loaded by its path too: ``who_budget`` runs each
measured tree's own code, and the code before the per-name counters has no such module.
"""

from __future__ import annotations

import os
from pathlib import Path

ROLES = ("api", "worker", "redis")
# What a process's command line holds, per role: the run's gunicorn (master and workers), the
# mailflow worker, the embedded server.
_MARKS = {"api": "gunicorn", "worker": "service.cli\x00worker", "redis": "redis-server"}


def role_of(cmdline: str) -> str | None:
    """The role of a process by its command line (arguments NUL-separated, as in ``/proc``)."""
    for role, mark in _MARKS.items():
        if mark in cmdline:
            return role
    return None


def processes() -> dict[int, tuple[int, float, str]]:
    """pid -> (parent pid, CPU seconds used, command line) of every process readable now."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The command name (in parentheses) may hold spaces: the fields follow the last ")".
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:  # ended meanwhile
            continue
        found[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks,
                                  cmdline)  # fmt: skip
    return found


def cpu_by_role(root: int) -> dict[str, float]:
    """CPU seconds used so far per role (``ROLES``) by the processes descending from ``root``."""
    found = processes()
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in found.items():
        children.setdefault(parent, []).append(pid)
    used = dict.fromkeys(ROLES, 0.0)
    pending = list(children.get(root, []))
    while pending:
        pid = pending.pop()
        pending += children.get(pid, [])
        _, seconds, cmdline = found[pid]
        role = role_of(cmdline)
        if role is not None:
            used[role] += seconds
    return used
