"""The plan of a deployment: clusters, nodes, ports and directories, kept in ``cluster.json``.

:func:`plan` lays out a new deployment (nothing is written); :class:`Deployment` saves
and loads it, so another process can run ``status`` or ``down`` on the same directory.
"""

from __future__ import annotations

import base64
import json
import os
import random
import secrets
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from deploy.kafka.errors import LauncherError, StateMissingError

HOST: Final = "127.0.0.1"
VESSEL: Final = "vessel"
SHORE: Final = "shore"
CLUSTER_NAMES: Final = (VESSEL, SHORE)
NODE_COUNTS: Final[Mapping[str, int]] = {VESSEL: 3, SHORE: 1}

STATE_FILE: Final = "cluster.json"
LOG_CONFIG_FILE: Final = "log4j2.properties"


@dataclass(slots=True)
class Broker:
    """One Kafka node (broker and controller in one JVM).

    Attributes:
        cluster: ``vessel`` or ``shore``.
        node_id: Kafka ``node.id``, 1-based within its cluster.
        port: Client listener port on 127.0.0.1.
        controller_port: Controller (KRaft quorum) listener port on 127.0.0.1.
        home: The node's directory (config, data, logs).
        pid: PID of the JVM last started, or None when stopped by the launcher.
    """

    cluster: str
    node_id: int
    port: int
    controller_port: int
    home: Path
    pid: int | None = None

    @property
    def name(self) -> str:
        """Human name, e.g. ``vessel broker 2``."""
        return f"{self.cluster} broker {self.node_id}"

    @property
    def address(self) -> str:
        """``host:port`` of the client listener."""
        return f"{HOST}:{self.port}"

    @property
    def properties(self) -> Path:
        """The node's ``server.properties`` (also the mark of its JVM's command line)."""
        return self.home / "server.properties"

    @property
    def data_dir(self) -> Path:
        """The node's ``log.dirs``."""
        return self.home / "data"

    @property
    def server_log(self) -> Path:
        """Kafka's own log."""
        return self.home / "server.log"

    @property
    def console_log(self) -> Path:
        """The JVM's stdout and stderr (startup failures land here)."""
        return self.home / "console.log"


@dataclass(slots=True)
class Cluster:
    """One KRaft cluster.

    Attributes:
        name: ``vessel`` or ``shore``.
        cluster_id: The id its storage was formatted with.
        brokers: Its nodes, ordered by node id.
    """

    name: str
    cluster_id: str
    brokers: list[Broker]

    @property
    def bootstrap(self) -> str:
        """Bootstrap servers, ``host:port,...``."""
        return ",".join(b.address for b in self.brokers)

    def broker(self, node_id: int) -> Broker:
        """The node with ``node_id`` (1-based).

        Raises:
            LauncherError: No such node.
        """
        for b in self.brokers:
            if b.node_id == node_id:
                return b
        raise LauncherError(f"{self.name} has no broker {node_id}; pick 1 to {len(self.brokers)}")


@dataclass(slots=True)
class Deployment:
    """Both clusters of one directory, as recorded in its ``cluster.json``.

    Attributes:
        home: The directory.
        kafka_version: Kafka version the storage was formatted with.
        lib: Directory of the jars the brokers run from.
        clusters: ``vessel`` and ``shore`` by name.
    """

    home: Path
    kafka_version: str
    lib: Path
    clusters: dict[str, Cluster]

    @property
    def vessel(self) -> Cluster:
        """The 3-node vessel cluster."""
        return self.clusters[VESSEL]

    @property
    def shore(self) -> Cluster:
        """The 1-node shore cluster."""
        return self.clusters[SHORE]

    @property
    def brokers(self) -> list[Broker]:
        """Every node of both clusters."""
        return [b for c in self.clusters.values() for b in c.brokers]

    @property
    def log_config(self) -> Path:
        """The log4j2 configuration all nodes share."""
        return self.home / LOG_CONFIG_FILE

    def cluster(self, name: str) -> Cluster:
        """The cluster called ``name``.

        Raises:
            LauncherError: No such cluster.
        """
        try:
            return self.clusters[name]
        except KeyError:
            raise LauncherError(
                f"no cluster {name!r}; pick one of {', '.join(CLUSTER_NAMES)}"
            ) from None

    def to_json(self) -> dict[str, Any]:
        """The ``cluster.json`` document."""
        return {
            "kafka_version": self.kafka_version,
            "lib": str(self.lib),
            "clusters": {
                c.name: {
                    "cluster_id": c.cluster_id,
                    "bootstrap": c.bootstrap,
                    "brokers": [
                        {
                            "node_id": b.node_id,
                            "port": b.port,
                            "controller_port": b.controller_port,
                            "pid": b.pid,
                            "dir": b.home.name,
                        }
                        for b in c.brokers
                    ],
                }
                for c in self.clusters.values()
            },
        }

    def save(self) -> None:
        """Write ``cluster.json`` atomically, so a reader never sees half a file."""
        path = self.home / STATE_FILE
        tmp = path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, home: Path) -> Deployment:
        """Read ``home/cluster.json``.

        Raises:
            StateMissingError: There is none.
            LauncherError: It is unreadable.
        """
        path = home / STATE_FILE
        try:
            doc = json.loads(path.read_text())
            clusters = {
                name: Cluster(
                    name=name,
                    cluster_id=str(c["cluster_id"]),
                    brokers=[
                        Broker(
                            cluster=name,
                            node_id=int(b["node_id"]),
                            port=int(b["port"]),
                            controller_port=int(b["controller_port"]),
                            home=home / str(b["dir"]),
                            pid=None if b["pid"] is None else int(b["pid"]),
                        )
                        for b in c["brokers"]
                    ],
                )
                for name, c in doc["clusters"].items()
            }
            return cls(home, str(doc["kafka_version"]), Path(doc["lib"]), clusters)
        except FileNotFoundError:
            raise StateMissingError(
                f"no clusters in {home}: {STATE_FILE} is missing; run `up` first"
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise LauncherError(
                f"{path} is unreadable ({e}); stop any broker still running and remove {home}"
            ) from e


def existing(home: Path) -> Path:
    """``home`` resolved, if it holds clusters (a mistyped path is not created).

    Raises:
        StateMissingError: It holds none.
    """
    home = home.resolve()
    if not (home / STATE_FILE).is_file():
        raise StateMissingError(f"no clusters in {home}: {STATE_FILE} is missing; run `up` first")
    return home


def new_cluster_id() -> str:
    """A random Kafka cluster id: 16 random bytes, base64url without padding."""
    while True:
        cid = base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()
        if not cid.startswith("-"):  # Kafka avoids these too: they read as CLI flags.
            return cid


def plan(home: Path, lib: Path, version: str, base_port: int | None = None) -> Deployment:
    """Lay out both clusters: ids, ports and directories (nothing is written).

    Args:
        home: The deployment directory.
        lib: Jar directory.
        version: Kafka version of the jars.
        base_port: First of 8 consecutive ports (vessel node n: ``base + 2(n-1)`` for
            clients and the next for its controller; shore: ``base + 6`` and ``+ 7``);
            None picks free ports.

    Raises:
        LauncherError: ``base_port`` is out of range or its ports are taken.
    """
    total = 2 * sum(NODE_COUNTS.values())
    if base_port is None:
        ports = _free_ports(total)
    else:
        if not 1024 <= base_port <= 65535 - total:
            raise LauncherError(
                f"base port {base_port} is out of range; use 1024 to {65535 - total}"
            )
        ports = list(range(base_port, base_port + total))
        _check_ports_free(ports)
    home = home.resolve()
    it = iter(ports)
    clusters = {}
    for name in CLUSTER_NAMES:
        brokers = [
            Broker(name, n, next(it), next(it), home / f"{name}-{n}")
            for n in range(1, NODE_COUNTS[name] + 1)
        ]
        clusters[name] = Cluster(name, new_cluster_id(), brokers)
    return Deployment(home, version, lib, clusters)


def _free_ports(count: int) -> list[int]:
    """`count` consecutive free ports below Linux's ephemeral range (32768 and up).

    Ports from bind(0) come from the ephemeral range, where the brokers' own outgoing
    connections take ports too: one could take a listener's port between this check
    and the JVM's bind (seen as a broker that exits while starting).
    """
    rng = random.Random()
    for _ in range(100):
        base = rng.randrange(20_000, 32_000 - count)
        ports = list(range(base, base + count))
        try:
            _check_ports_free(ports)
        except LauncherError:
            continue
        return ports
    raise LauncherError(f"found no {count} free consecutive ports in 20000-32000 on {HOST}")


def _check_ports_free(ports: Sequence[int]) -> None:
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            # As Kafka does: a port whose old connections linger in TIME_WAIT is usable.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((HOST, port))
            except OSError as e:
                raise LauncherError(
                    f"port {port} on {HOST} is not free ({e.strerror}); pick another base port"
                ) from None
