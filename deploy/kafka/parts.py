"""The pieces of a deployment: nodes, clusters, the link proxy, MirrorMaker 2.

Plain records of ports, directories and PIDs; :mod:`deploy.kafka.layout` plans them and
keeps them in ``cluster.json``. Each process's ``marker`` is an argument of its command
line inside the deployment directory, which tells it from any other process (see
:mod:`deploy.kafka.processes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deploy.kafka.errors import LauncherError
from deploy.kafka.ports import HOST


class _InHome:
    """The logs of a process the launcher runs from its own directory, ``home``."""

    __slots__ = ()
    home: Path

    @property
    def server_log(self) -> Path:
        """Its own log (Kafka's, MirrorMaker's)."""
        return self.home / "server.log"

    @property
    def console_log(self) -> Path:
        """Its stdout and stderr (start-up failures land here)."""
        return self.home / "console.log"


@dataclass(slots=True)
class Broker(_InHome):
    """One Kafka node (broker and controller in one JVM).

    Attributes:
        cluster: Its cluster's name (``vessel``, ``shore`` or a vessel id).
        node_id: Kafka ``node.id``, 1-based within its cluster.
        port: Client listener port on 127.0.0.1.
        controller_port: Controller (KRaft quorum) listener port on 127.0.0.1.
        home: The node's directory (config, data, logs).
        pid: PID of the JVM last started, or None when stopped by the launcher.
        mirror_port: Port of the ``MIRROR`` listener (mirrored vessels only).
        proxy_port: Port of this node's link proxy, which the ``MIRROR`` listener
            advertises (mirrored vessels only).
    """

    cluster: str
    node_id: int
    port: int
    controller_port: int
    home: Path
    pid: int | None = None
    mirror_port: int | None = None
    proxy_port: int | None = None

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
    def marker(self) -> Path:
        """The argument that tells this node's JVM from any other process."""
        return self.properties

    @property
    def data_dir(self) -> Path:
        """The node's ``log.dirs``."""
        return self.home / "data"


@dataclass(slots=True)
class Cluster:
    """One KRaft cluster.

    Attributes:
        name: ``vessel``, ``shore`` or a vessel id.
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

    @property
    def link_bootstrap(self) -> str:
        """Bootstrap servers across the link (the proxies), as MirrorMaker 2 sees them."""
        return ",".join(f"{HOST}:{b.proxy_port}" for b in self.brokers if b.proxy_port)

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
class Link(_InHome):
    """The link proxy (one Toxiproxy for every vessel node's ``MIRROR`` listener).

    Attributes:
        api_port: Toxiproxy's REST API port on 127.0.0.1.
        home: Its directory (``toxiproxy.json``, ``console.log``).
        pid: PID of the process last started, or None.
    """

    api_port: int
    home: Path
    pid: int | None = None

    @property
    def name(self) -> str:
        """Human name."""
        return "link proxy"

    @property
    def api(self) -> str:
        """Base URL of the REST API."""
        return f"http://{HOST}:{self.api_port}"

    @property
    def config(self) -> Path:
        """The proxies it creates at start (also the mark of its command line)."""
        return self.home / "toxiproxy.json"

    @property
    def marker(self) -> Path:
        """See :attr:`Broker.marker`."""
        return self.config


@dataclass(slots=True)
class Mirror(_InHome):
    """One MirrorMaker 2 process, copying one vessel's topics ashore.

    Attributes:
        vessel: The vessel's cluster name (its id).
        rest_port: Port of MirrorMaker's internal REST server on 127.0.0.1.
        home: Its directory (``mm2.properties``, ``server.log``, ``console.log``).
        raw: Whether raw telemetry is mirrored too.
        pid: PID of the JVM last started, or None.
    """

    vessel: str
    rest_port: int
    home: Path
    raw: bool = False
    pid: int | None = None

    @property
    def alias(self) -> str:
        """The vessel's MirrorMaker cluster alias: its id without dots."""
        return self.vessel.replace(".", "")

    @property
    def name(self) -> str:
        """Human name, e.g. ``mirror vessel1``."""
        return f"mirror {self.vessel}"

    @property
    def properties(self) -> Path:
        """``mm2.properties`` (also the mark of its JVM's command line)."""
        return self.home / "mm2.properties"

    @property
    def marker(self) -> Path:
        """See :attr:`Broker.marker`."""
        return self.properties

    @property
    def offsets_topic(self) -> str:
        """Where, ashore, MirrorMaker keeps how far it has copied each vessel partition."""
        return f"mm2-offsets.{self.alias}.internal"

    @property
    def status_topic(self) -> str:
        """Where, ashore, MirrorMaker keeps the state of its connectors and tasks."""
        return f"mm2-status.{self.alias}.internal"
