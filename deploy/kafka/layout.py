"""The plan of a deployment (clusters, ports, link, MirrorMaker 2), kept in ``cluster.json``.

:func:`plan` lays out a new deployment (nothing is written); :class:`Deployment` saves
and loads it, so another process can run ``status`` or ``down`` on the same directory.

Two shapes:

* Plain (no vessel ids given): one ``vessel`` cluster of 3 nodes and the ``shore``
  cluster, nothing in between; what most tests need.
* Mirrored (vessel ids given, e.g. ``vessel1``, ``vessel2``): one cluster per vessel,
  the ``shore``, one link proxy (Toxiproxy) and one MirrorMaker 2 per vessel. Every
  vessel node then has a second listener, ``MIRROR``, that only MirrorMaker uses and
  that advertises the address of that node's proxy, so that every connection
  MirrorMaker makes to the vessel crosses the link.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from deploy.kafka.errors import LauncherError, StateMissingError
from deploy.kafka.parts import Broker, Cluster, Link, Mirror
from deploy.kafka.ports import HOST, new_cluster_id, pick_ports

__all__ = ["HOST", "Broker", "Cluster", "Deployment", "Link", "Mirror", "existing", "plan"]

VESSEL: Final = "vessel"
SHORE: Final = "shore"
DEFAULT_VESSEL_NODES: Final = 3
STATE_FILE: Final = "cluster.json"
LOG_CONFIG_FILE: Final = "log4j2.properties"
VESSEL_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(slots=True)
class Deployment:
    """Every cluster and process of one directory, as recorded in its ``cluster.json``.

    Attributes:
        home: The directory.
        kafka_version: Kafka version the storage was formatted with.
        lib: Directory of the jars the brokers run from.
        clusters: By name: the vessel cluster(s), then ``shore``.
        link: The link proxy, or None for a plain deployment.
        mirrors: MirrorMaker 2 by vessel id (empty for a plain deployment).
    """

    home: Path
    kafka_version: str
    lib: Path
    clusters: dict[str, Cluster]
    link: Link | None = None
    mirrors: dict[str, Mirror] = field(default_factory=dict)

    @property
    def vessels(self) -> list[Cluster]:
        """Every vessel cluster."""
        return [c for name, c in self.clusters.items() if name != SHORE]

    @property
    def vessel(self) -> Cluster:
        """The ``vessel`` cluster, or the first vessel of a mirrored deployment."""
        return self.clusters.get(VESSEL) or self.vessels[0]

    @property
    def shore(self) -> Cluster:
        """The 1-node shore cluster."""
        return self.clusters[SHORE]

    @property
    def brokers(self) -> list[Broker]:
        """Every node of every cluster."""
        return [b for c in self.clusters.values() for b in c.brokers]

    @property
    def log_config(self) -> Path:
        """The log4j2 configuration all JVMs share."""
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
                f"no cluster {name!r}; pick one of {', '.join(self.clusters)}"
            ) from None

    def mirror(self, vessel: str) -> Mirror:
        """The MirrorMaker 2 of ``vessel``.

        Raises:
            LauncherError: No such vessel, or the deployment is not mirrored.
        """
        try:
            return self.mirrors[vessel]
        except KeyError:
            if not self.mirrors:
                raise LauncherError(
                    f"{self.home} has no mirror; start one with `up --vessels N`"
                ) from None
            raise LauncherError(
                f"no vessel {vessel!r}; pick one of {', '.join(self.mirrors)}"
            ) from None

    def to_json(self) -> dict[str, Any]:
        """The ``cluster.json`` document."""
        doc: dict[str, Any] = {
            "kafka_version": self.kafka_version,
            "lib": str(self.lib),
            "clusters": {
                c.name: {
                    "cluster_id": c.cluster_id,
                    "bootstrap": c.bootstrap,
                    "brokers": [_broker_json(b) for b in c.brokers],
                }
                for c in self.clusters.values()
            },
        }
        if self.link is not None:
            doc["link"] = {"api_port": self.link.api_port, "pid": self.link.pid}
        if self.mirrors:
            doc["mirrors"] = {
                m.vessel: {"rest_port": m.rest_port, "raw": m.raw, "pid": m.pid}
                for m in self.mirrors.values()
            }
        return doc

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
                    name, str(c["cluster_id"]), [_broker(home, name, b) for b in c["brokers"]]
                )
                for name, c in doc["clusters"].items()
            }
            link = doc.get("link")
            return cls(
                home,
                str(doc["kafka_version"]),
                Path(doc["lib"]),
                clusters,
                None if link is None else Link(int(link["api_port"]), home / "link", _pid(link)),
                {
                    v: Mirror(v, int(m["rest_port"]), home / f"mirror-{v}", bool(m["raw"]), _pid(m))
                    for v, m in doc.get("mirrors", {}).items()
                },
            )
        except FileNotFoundError:
            raise StateMissingError(
                f"no clusters in {home}: {STATE_FILE} is missing; run `up` first"
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise LauncherError(
                f"{path} is unreadable ({e}); stop any broker still running and remove {home}"
            ) from e


def _pid(doc: dict[str, Any]) -> int | None:
    return None if doc.get("pid") is None else int(doc["pid"])


def _broker_json(b: Broker) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "node_id": b.node_id,
        "port": b.port,
        "controller_port": b.controller_port,
        "pid": b.pid,
        "dir": b.home.name,
    }
    if b.mirror_port is not None:
        doc.update(mirror_port=b.mirror_port, proxy_port=b.proxy_port)
    return doc


def _broker(home: Path, cluster: str, doc: dict[str, Any]) -> Broker:
    return Broker(
        cluster=cluster,
        node_id=int(doc["node_id"]),
        port=int(doc["port"]),
        controller_port=int(doc["controller_port"]),
        home=home / str(doc["dir"]),
        pid=_pid(doc),
        mirror_port=None if doc.get("mirror_port") is None else int(doc["mirror_port"]),
        proxy_port=None if doc.get("proxy_port") is None else int(doc["proxy_port"]),
    )


def existing(home: Path) -> Path:
    """``home`` resolved, if it holds clusters (a mistyped path is not created).

    Raises:
        StateMissingError: It holds none.
    """
    home = home.resolve()
    if not (home / STATE_FILE).is_file():
        raise StateMissingError(f"no clusters in {home}: {STATE_FILE} is missing; run `up` first")
    return home


def check_vessel_ids(ids: list[str]) -> None:
    """Raise unless ``ids`` are usable vessel ids (cluster names, directories, MM2 aliases).

    Raises:
        LauncherError: Naming the bad id.
    """
    aliases = set()
    for v in ids:
        if not VESSEL_ID.fullmatch(v) or v in (SHORE, VESSEL):
            raise LauncherError(
                f"bad vessel id {v!r}: use letters, digits, '.', '_' or '-' (not 'shore' or "
                "'vessel'), e.g. vessel1 or IMO9778791"
            )
        aliases.add(v.replace(".", ""))
    if len(aliases) != len(ids):
        raise LauncherError(f"vessel ids {ids} repeat an id (dots are ignored)")


def plan(
    home: Path,
    lib: Path,
    version: str,
    base_port: int | None = None,
    *,
    vessels: list[str] | None = None,
    vessel_nodes: int = DEFAULT_VESSEL_NODES,
    mirror_raw: bool = False,
) -> Deployment:
    """Lay out a deployment: ids, ports and directories (nothing is written).

    Args:
        home: The deployment directory.
        lib: Jar directory.
        version: Kafka version of the jars.
        base_port: First of the consecutive ports the deployment takes, None for free
            ones. Plain: 8 (vessel node n: ``base + 2(n-1)`` for clients and the next for
            its controller; shore: ``base + 6`` and ``+ 7``). Mirrored: per vessel node
            4 (client, controller, ``MIRROR`` listener, proxy), then 2 for the shore, 1
            for the proxy's API and 1 per MirrorMaker.
        vessels: Vessel ids for a mirrored deployment; None for a plain one.
        vessel_nodes: Nodes per vessel cluster.
        mirror_raw: Whether MirrorMaker copies raw telemetry too.

    Raises:
        LauncherError: A bad vessel id, or ``base_port`` is out of range or taken.
    """
    home = home.resolve()
    if vessels is None:
        ports = iter(pick_ports(2 * (vessel_nodes + 1), base_port))
        names = [VESSEL]
    else:
        check_vessel_ids(vessels)
        count = 4 * vessel_nodes * len(vessels) + 2 + 1 + len(vessels)
        ports = iter(pick_ports(count, base_port))
        names = list(vessels)
    clusters: dict[str, Cluster] = {}
    for name in names:
        brokers = []
        for n in range(1, vessel_nodes + 1):
            b = Broker(name, n, next(ports), next(ports), home / f"{name}-{n}")
            if vessels is not None:
                b.mirror_port, b.proxy_port = next(ports), next(ports)
            brokers.append(b)
        clusters[name] = Cluster(name, new_cluster_id(), brokers)
    shore = Broker(SHORE, 1, next(ports), next(ports), home / f"{SHORE}-1")
    clusters[SHORE] = Cluster(SHORE, new_cluster_id(), [shore])
    if vessels is None:
        return Deployment(home, version, lib, clusters)
    link = Link(next(ports), home / "link")
    mirrors = {v: Mirror(v, next(ports), home / f"mirror-{v}", mirror_raw) for v in vessels}
    return Deployment(home, version, lib, clusters, link, mirrors)
