"""The restart policy of `mailflow run`: a child that keeps dying is restarted ever later (0.5 s
doubling to 30 s), one that stayed up starts afresh, and every death and restart is logged."""

from __future__ import annotations

import logging
import sys

from service.cli.supervisor import (
    HEALTHY_AFTER_SECONDS,
    MAX_DELAY_SECONDS,
    ChildProcess,
    Supervised,
    Supervisor,
)


def test_a_child_that_keeps_dying_is_restarted_with_doubling_delays(caplog):
    crashing = ChildProcess([sys.executable, "-c", "raise SystemExit(3)"], {})
    crashing.start()
    child = Supervised("crasher", crashing.start, crashing.exit_code)
    supervisor = Supervisor()
    supervisor.add(child, now=0.0)
    now, restarts_at = 0.0, []
    with caplog.at_level(logging.WARNING, logger="mailflow.run"):
        for _ in range(9):
            crashing.process.wait()  # it dies at once
            supervisor.check(now)  # noticed: a restart is scheduled
            restarts_at.append(child.restart_at - now)
            supervisor.check(child.restart_at - 0.01)  # not yet
            assert child.restarts == len(restarts_at) - 1
            now = child.restart_at
            supervisor.check(now)  # due: started again
            assert child.restarts == len(restarts_at)
    crashing.process.wait()
    assert restarts_at == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    assert MAX_DELAY_SECONDS == 30
    said = [r.getMessage() for r in caplog.records]
    assert said[0] == "crasher exited (code 3); restarting it in 0.5 s"
    assert said[1] == "crasher restarted (restart 1)"

    # Up long enough: the next death is restarted quickly again.
    long_lived = ChildProcess([sys.executable, "-c", "import time; time.sleep(120)"], {})
    long_lived.start()
    child.start, child.exit_code = long_lived.start, long_lived.exit_code
    supervisor.check(now + HEALTHY_AFTER_SECONDS)
    assert child.delay == 0.5
    long_lived.stop()
    supervisor.check(now + HEALTHY_AFTER_SECONDS + 1)
    assert child.restart_at == now + HEALTHY_AFTER_SECONDS + 1.5
    long_lived.stop()


def test_a_child_that_cannot_start_is_tried_again_later(caplog):
    def start() -> None:
        raise RuntimeError("embedded redis-server exited at start")

    child = Supervised("redis", start, lambda: 1)
    with caplog.at_level(logging.ERROR, logger="mailflow.run"):
        child.check(0.0)
        child.check(0.5)
    assert child.restart_at == 1.5 and child.restarts == 0
    assert "did not start (embedded redis-server exited at start); trying again in 1 s" in (
        caplog.records[-1].getMessage()
    )
