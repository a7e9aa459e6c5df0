"""Connecting to Redis: one place that turns settings into a client.

``MAILFLOW_REDIS_URL`` is either a single server (``redis://``, ``rediss://``, ``unix://``) or a
Redis Cluster: ``redis+cluster://host:port[,host:port...]`` (any of the listed nodes is enough to
discover the others; list several so a client can start while one is down).
"""

from __future__ import annotations

from typing import TypeAlias
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry

from service.config import Settings

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")

# Either kind of client: both expose the same commands, scripts and pipelines to the store.
Client: TypeAlias = redis.Redis | RedisCluster


def connect(settings: Settings) -> Client:
    """A client with short timeouts: a stalled Redis must become a 503, never a hung request."""
    return connect_url(settings.effective_redis_url, settings.redis_timeout_seconds)


def connect_url(url: str, timeout: float | None = None) -> Client:
    """A client of ``url``; ``timeout`` (seconds) bounds connecting and every reply."""
    if is_cluster_url(url):
        return _cluster_client(url, timeout)
    if timeout is None:
        return redis.Redis.from_url(url)
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=0,
        retry_on_timeout=False,
    )


def is_cluster_url(url: str) -> bool:
    return urlsplit(url).scheme in CLUSTER_SCHEMES


def cluster_startup_nodes(url: str) -> list[tuple[str, int]]:
    """``redis+cluster://a:7000,b:7001`` -> ``[("a", 7000), ("b", 7001)]``."""
    parts = urlsplit(url)
    hosts = parts.netloc.rsplit("@", 1)[-1]
    nodes = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"MAILFLOW_REDIS_URL: expected host:port in a cluster URL: {item!r}")
        nodes.append((host.strip("[]"), int(port)))
    return nodes


def _cluster_client(url: str, timeout: float | None) -> RedisCluster:
    parts = urlsplit(url)
    options: dict[str, object] = {}
    if parts.username:
        options["username"] = parts.username
    if parts.password:
        options["password"] = parts.password
    if parts.scheme.startswith("rediss"):
        options["ssl"] = True
    if timeout is not None:
        options.update(socket_timeout=timeout, socket_connect_timeout=timeout)
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in cluster_startup_nodes(url)],
        # redis-py retries a failed cluster command 10 times with backoff by default: a stalled
        # node would hold a request for many socket timeouts. No retry: the command fails after
        # one timeout (the client refreshes its slot map first, so the next request finds a
        # promoted replica) and the API answers 503 with Retry-After; its callers retry.
        retry=Retry(NoBackoff(), 0),
        **options,
    )
