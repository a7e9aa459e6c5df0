"""What ``mailflow run`` does while it runs: restart a child that died, with backoff, and log it.

Each child (the embedded Redis, the worker, the webhook notifier, gunicorn) is started again
when it exits, after a delay that doubles from 0.5 s to 30 s while it keeps dying and starts
again at 0.5 s once it has stayed up 30 s. A Redis restarted on its data dir replays its AOF;
the worker, the notifier and gunicorn reconnect by themselves, so nothing else is restarted
with it.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from service.store.embedded import stop_process

log = logging.getLogger("mailflow.run")

FIRST_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 30.0
HEALTHY_AFTER_SECONDS = 30.0


@dataclass
class ChildProcess:
    """A command run as a child process: the worker, gunicorn."""

    command: Sequence[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(list(self.command), env=self.env)

    def exit_code(self) -> int | None:
        """None while it runs."""
        return None if self.process is None else self.process.poll()

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is not None:
            stop_process(self.process, timeout)


@dataclass
class Supervised:
    """One child under supervision: how to start it, whether it still runs, its backoff."""

    name: str
    start: Callable[[], object]
    exit_code: Callable[[], int | None]  # None while it runs
    delay: float = FIRST_DELAY_SECONDS
    started_at: float = 0.0
    restart_at: float | None = None  # when it died: the time of its next start
    restarts: int = 0

    def check(self, now: float) -> None:
        code = self.exit_code()
        if code is None and self.restart_at is None:
            if now - self.started_at >= HEALTHY_AFTER_SECONDS:
                self.delay = FIRST_DELAY_SECONDS  # it stayed up: a new death starts afresh
            return
        if self.restart_at is None:
            self.restart_at = now + self.delay
            log.error("%s exited (code %s); restarting it in %g s", self.name, code, self.delay)
            self.delay = min(self.delay * 2, MAX_DELAY_SECONDS)
            return
        if now < self.restart_at:
            return
        try:
            self.start()
        except Exception as error:  # noqa: BLE001 - e.g. Redis not starting: try again later
            self.restart_at = now + self.delay
            log.error("%s did not start (%s); trying again in %g s", self.name, error,
                      self.delay)  # fmt: skip
            self.delay = min(self.delay * 2, MAX_DELAY_SECONDS)
            return
        self.restart_at = None
        self.started_at = now
        self.restarts += 1
        log.warning("%s restarted (restart %d)", self.name, self.restarts)


@dataclass
class Supervisor:
    children: list[Supervised] = field(default_factory=list)

    def add(self, child: Supervised, now: float) -> None:
        child.started_at = now
        self.children.append(child)

    def check(self, now: float) -> None:
        """Called every fraction of a second: restart whatever died and is due."""
        for child in self.children:
            child.check(now)
