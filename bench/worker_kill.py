"""A worker killed between its fold and its refresh, for tests and the fault table.

``kill_after_fold(url, now)`` starts a real worker process that folds one batch and then holds
still (before any refresh: its views stay behind the counters), waits for it to say so and
SIGKILLs it. What it folded is committed; that its views are rebuilt is up to the other
workers (``store.worker_signals``). The process runs ``python -m bench.worker_kill URL NOW``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def start_worker_stopping_after_fold(url: str, now: datetime) -> subprocess.Popen[str]:
    """A worker process on ``url`` whose clock stands at ``now``; it prints ``folded <tenant>``
    after its first committed fold and then waits to be killed."""
    command = [sys.executable, "-m", "bench.worker_kill", url, now.isoformat()]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)


def kill_after_fold(url: str, now: datetime, timeout: float = 60.0) -> str:
    """Run such a worker until its fold committed, then SIGKILL it; the tenant it folded."""
    process = start_worker_stopping_after_fold(url, now)
    try:
        assert process.stdout is not None
        timer = threading.Timer(timeout, process.kill)  # a worker that never folds
        timer.start()
        try:
            line = process.stdout.readline()
        finally:
            timer.cancel()
        if not line.startswith("folded "):
            raise RuntimeError(f"the worker did not fold (exit {process.poll()}): {line!r}")
        process.send_signal(signal.SIGKILL)
        return line.removeprefix("folded ").strip()
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _run_until_folded(url: str, now_text: str) -> None:
    from service.config import Settings
    from service.store.connection import connect_url
    from service.worker.loop import Worker

    now = datetime.fromisoformat(now_text)

    def hold_still(tenant: str) -> None:
        print(f"folded {tenant}", flush=True)
        threading.Event().wait()  # until SIGKILL: no refresh, no lease, nothing more

    client = connect_url(url)
    Worker(client, Settings(redis_url=url), clock=lambda: now, name="killed-after-fold",
           after_fold=hold_still).work()  # fmt: skip


if __name__ == "__main__":
    _run_until_folded(sys.argv[1], sys.argv[2])
