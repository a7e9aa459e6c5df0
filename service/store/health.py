"""Readiness facts kept in Redis: worker heartbeats and the store's instance marker."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import redis

from service.store import keys
from service.store.availability import describe, refuses_writes

_NEVER_A_WORKER = "(readiness write probe)"  # workers are named host:pid


@dataclass
class Readiness:
    ready: bool
    checks: dict[str, str] = field(default_factory=dict)
    instance: str | None = None


def beat(client: redis.Redis, worker_id: str, now: float) -> None:
    """``now`` is the host's real clock (time.time()), as for every reader of the heartbeats
    (/readyz, /metrics, `mailflow worker --check`): liveness is about processes on real hosts,
    not about mail time, so a worker on an injected clock still beats in real time."""
    client.zadd(keys.worker_heartbeats(), {worker_id: now})


def heartbeat_age(
    client: redis.Redis, now: float, name: str | None = None, prefix: str | None = None
) -> float | None:
    """Seconds since the newest heartbeat of worker ``name``, or of any worker whose name
    starts with ``prefix``; None if there is none."""
    beats = client.zrange(keys.worker_heartbeats(), 0, -1, withscores=True)
    times = [at for member, at in beats
             if (name is None or member.decode() == name)
             and (prefix is None or member.decode().startswith(prefix))]  # fmt: skip
    return now - max(times) if times else None


def forget_worker(client: redis.Redis, worker_id: str) -> None:
    client.zrem(keys.worker_heartbeats(), worker_id)


def store_instance(client: redis.Redis) -> str | None:
    """The id of the data in this store, made when a worker first used it."""
    value = client.get(keys.instance_marker())
    return value.decode() if value is not None else None


def claim_instance(client: redis.Redis, remembered: str | None) -> str | None:
    """A worker's start-up: the store's instance id, made now if the store is new.

    A worker that already knew an id (``remembered``) never makes a new one: if the store lost
    it, the data went with it, and readiness must say so instead of serving zeros as truth.
    """
    # Read first: a store that refuses writes (full, read-only) still lets a worker start.
    if remembered is None and store_instance(client) is None:
        client.set(keys.instance_marker(), uuid.uuid4().hex, nx=True)
    return store_instance(client)


def accepts_writes(client: redis.Redis) -> None:
    """Raise what Redis answers a write with; change nothing.

    ``ZADD XX`` of a member that is never there is a write that adds nothing, and it is flagged
    ``denyoom``: Redis refuses it on OOM, MISCONF and READONLY like any write of ours. A PING
    alone says nothing about the first two, and on a replica nothing at all.
    """
    client.zadd(keys.worker_heartbeats(), {_NEVER_A_WORKER: 0}, xx=True)


def readiness(
    client: redis.Redis, now: float, stale_seconds: float, expected_instance: str | None
) -> Readiness:
    """Redis answers, holds the data this process saw before, and a worker heartbeat is fresh."""
    report = Readiness(ready=True)
    client.ping()
    try:
        accepts_writes(client)
        report.checks["redis"] = "ok"
    except redis.ResponseError as error:
        if not refuses_writes(error):
            raise
        report.ready = False
        report.checks["redis"] = describe(error)
    instance = store_instance(client)
    if instance is None:
        report.ready = False
        report.checks["data"] = (
            "the store has no instance id: its data was lost (a restart with an empty data "
            "dir?) or no worker has started yet"
        )
    elif expected_instance is not None and instance != expected_instance:
        report.ready = False
        report.checks["data"] = (
            f"the store was replaced: instance {instance}, this process served {expected_instance}"
        )
    else:
        report.checks["data"] = "ok"
    report.instance = instance
    fresh = client.zrangebyscore(keys.worker_heartbeats(), now - stale_seconds, "+inf", 0, 1)
    if fresh:
        report.checks["worker"] = "ok"
    else:
        report.ready = False
        report.checks["worker"] = f"no worker heartbeat in the last {stale_seconds:g} s"
    return report
