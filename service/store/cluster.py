"""Writes confirmed by replicas: a command, then ``WAIT`` on the very same connection.

Redis replicates asynchronously: a write acknowledged by a master that dies before its replica
received it is lost when the replica takes over. ``WAIT n ms`` blocks until ``n`` replicas have
acknowledged every write *made on the connection that sends it* (a fresh connection has made no
write, so WAIT on it returns at once and proves nothing). So the write and its WAIT go in one
pipeline to one connection of the master that owns the key's slot - on a Redis Cluster that is
the node of the key's hash tag, on a single server the server itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.exceptions import MovedError, NoScriptError, RedisClusterException


class NotReplicated(redis.RedisError):
    """Fewer replicas than required acknowledged a write in time: it may not survive a
    failover, so it must not be acknowledged to the caller (who retries; writes are idempotent)."""


def write_replicated(
    client: redis.Redis | RedisCluster,
    key: str,
    command: Sequence[Any],
    replicas: int,
    timeout_ms: int,
    script_source: str | None = None,
) -> Any:
    """Run ``command`` (which touches ``key``'s slot only) on that slot's master and return its
    reply once ``replicas`` replicas have it. ``command`` may be an EVALSHA of
    ``script_source``: a master without the script (restarted, or a promoted replica) loads it.

    Raises ``NotReplicated`` when too few replicas acknowledged within ``timeout_ms``.
    """
    for attempt in range(3):
        node = _node_client(client, key)
        pipe = node.pipeline(transaction=False)
        pipe.execute_command(*command)
        pipe.execute_command("WAIT", replicas, timeout_ms)
        try:
            reply, acknowledged = pipe.execute()
        except NoScriptError:
            if script_source is None or attempt == 2:
                raise
            node.script_load(script_source)
            continue
        except MovedError:
            # The slot has a new master (a failover): learn the new layout, then go there.
            if not isinstance(client, RedisCluster) or attempt == 2:
                raise
            _refresh_layout(client)
            continue
        except (redis.ConnectionError, redis.TimeoutError):
            if isinstance(client, RedisCluster):
                _refresh_layout(client)  # so the next request finds a promoted replica
            raise
        if int(acknowledged) < replicas:
            raise NotReplicated(
                f"{acknowledged} of {replicas} replicas acknowledged within {timeout_ms} ms"
            )
        return reply
    raise AssertionError("unreachable")  # pragma: no cover


def _node_client(client: redis.Redis | RedisCluster, key: str) -> redis.Redis:
    """The plain client of the master serving ``key``: the client itself on a single server."""
    if isinstance(client, RedisCluster):
        return client.get_redis_connection(client.get_node_from_key(key))
    return client


def _refresh_layout(client: RedisCluster) -> None:
    with contextlib.suppress(redis.RedisError, RedisClusterException):
        client.nodes_manager.initialize()


def node_client(client: redis.Redis | RedisCluster, key: str) -> redis.Redis:
    """The plain client of the master serving ``key`` (a SCAN of one tenant's keys asks the
    node of its slot, with a cursor that node understands)."""
    return _node_client(client, key)
