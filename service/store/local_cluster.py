"""A Redis Cluster on loopback, from the redis-server binary mailflow already ships.

Used by the test fixtures and the cluster benchmark: masters with replicas, each node its own
``EmbeddedRedis`` process in its own directory, joined with ``redis-cli --cluster create``. A
low ``cluster-node-timeout`` makes a replica take over a killed master within a few seconds.
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from service.store.embedded import DEFAULT_EMBEDDED_SERVER, EmbeddedRedis, redis_cli_binary


def _free_port() -> int:
    # A cluster node also listens on port + 10000 (the cluster bus): find a pair that is free.
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port + 10000 > 65535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


@dataclass
class LocalCluster:
    base_dir: Path
    masters: int = 3
    replicas_per_master: int = 1
    node_timeout_ms: int = 1000
    server: str = DEFAULT_EMBEDDED_SERVER  # which embedded server every node runs
    nodes: list[EmbeddedRedis] = field(default_factory=list)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self, timeout: float = 60.0) -> LocalCluster:
        count = self.masters * (1 + self.replicas_per_master)
        ports: set[int] = set()
        while len(ports) < count:
            ports.add(_free_port())
        for index, port in enumerate(sorted(ports)):
            node = EmbeddedRedis(self.base_dir / f"node{index}", port=port,
                                 extra_args=self._cluster_args(), server=self.server)  # fmt: skip
            self.nodes.append(node.start())
        subprocess.run(
            [str(redis_cli_binary(self.server)), "--cluster", "create",
             *(f"127.0.0.1:{n.port}" for n in self.nodes),
             "--cluster-replicas", str(self.replicas_per_master), "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout,
        )  # fmt: skip
        self.wait_healthy(timeout)
        return self

    def _cluster_args(self) -> list[str]:
        return ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(self.node_timeout_ms),
                # Other shards keep serving while one fails over.
                "--cluster-require-full-coverage", "no",
                "--appendonly", "no"]  # fmt: skip  # replicas, not AOF, are tested here

    def client_of(self, node: EmbeddedRedis) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=2)

    def running(self) -> list[EmbeddedRedis]:
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    def masters_now(self) -> list[EmbeddedRedis]:
        return [n for n in self.running() if self._role(n) == "master"]

    def _role(self, node: EmbeddedRedis) -> str:
        with self.client_of(node) as client:
            return client.info("replication")["role"]

    def master_of_slot(self, slot: int) -> EmbeddedRedis:
        """The node serving ``slot`` now, as the cluster itself reports it."""
        with self.client_of(self.running()[0]) as client:
            for first, last, master, *_ in client.execute_command("CLUSTER SLOTS"):
                if first <= slot <= last:
                    return next(n for n in self.nodes if n.port == int(master[1]))
        raise LookupError(f"no master serves slot {slot}")

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Every running node sees the cluster ok and every replica in its slot map, and every
        master has its replicas linked."""
        deadline = time.monotonic() + timeout
        while not self._healthy():
            if time.monotonic() > deadline:
                raise RuntimeError("the local Redis Cluster did not become healthy in time")
            time.sleep(0.1)  # polling external processes, not a test wait

    def _healthy(self) -> bool:
        try:
            masters = 0
            for node in self.running():
                with self.client_of(node) as client:
                    if client.cluster("info")["cluster_state"] != "ok":
                        return False
                    # Each node's map of the slots lists every replica (clients read replicas
                    # from it); a replica's link can be up before gossip has told every node.
                    if any(len(entry) - 3 < self.replicas_per_master
                           for entry in client.cluster("slots")):  # fmt: skip
                        return False
                    replication = client.info("replication")
                    if replication["role"] == "master":
                        masters += 1
                        if replication["connected_slaves"] < self.replicas_per_master:
                            return False
                    elif replication.get("master_link_status") != "up":
                        return False
            return masters == self.masters
        except redis.RedisError:
            return False

    def flushall(self) -> None:
        for node in self.masters_now():
            with self.client_of(node) as client:
                client.flushall()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
