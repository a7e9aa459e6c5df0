"""Driving the real worker loop (``Worker.work``) on the injected clock, without sleeping."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import redis

from service.config import Settings
from service.worker.loop import Worker


@dataclass
class LoopDriver:
    """A worker whose idle waits move ``clock`` instead of waiting: ``run`` drives its loop
    until a condition holds or a span of the clock has passed, and says how long it took."""

    client: redis.Redis
    settings: Settings
    clock: object  # tests.conftest.Clock
    name: str = "loop"
    worker: Worker = field(init=False)

    def __post_init__(self) -> None:
        self.worker = Worker(self.client, self.settings, clock=self.clock, name=self.name,
                             sleep=lambda seconds: self.clock.advance(seconds=seconds))  # fmt: skip

    def run(self, within: timedelta, until: Callable[[], bool] = lambda: False) -> timedelta:
        started = self.clock.now
        deadline = started + within
        self.worker.work(until=lambda: until() or self.clock.now >= deadline)
        return self.clock.now - started
