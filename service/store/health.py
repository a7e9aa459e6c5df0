"""Readiness facts kept in Redis: worker heartbeats and the store's instance marker."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from service.store import keys


@dataclass
class Readiness:
    ready: bool
    checks: dict[str, str] = field(default_factory=dict)


def beat(client: redis.Redis, worker_id: str, now: float) -> None:
    client.zadd(keys.worker_heartbeats(), {worker_id: now})


def forget_worker(client: redis.Redis, worker_id: str) -> None:
    client.zrem(keys.worker_heartbeats(), worker_id)


def mark_instance(client: redis.Redis, now: float) -> None:
    """Remember that this store has been used; see ``readiness``."""
    client.set(keys.instance_marker(), int(now), nx=True)


def readiness(client: redis.Redis, now: float, stale_seconds: float) -> Readiness:
    report = Readiness(ready=True)
    client.ping()
    report.checks["redis"] = "ok"
    # A worker writes the instance marker at its first start. A Redis that lost its data
    # (restarted with an empty data dir) has no marker although tenants may have data elsewhere:
    # better not ready than serving zeros as if they were true.
    if not client.exists(keys.instance_marker()):
        report.ready = False
        report.checks["data"] = "store has no instance marker (new, or its data was lost)"
    else:
        report.checks["data"] = "ok"
    fresh = client.zrangebyscore(keys.worker_heartbeats(), now - stale_seconds, "+inf", 0, 1)
    if fresh:
        report.checks["worker"] = "ok"
    else:
        report.ready = False
        report.checks["worker"] = f"no worker heartbeat in the last {stale_seconds:g} s"
    return report
