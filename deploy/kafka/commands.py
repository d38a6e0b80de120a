"""What the command line and the tests call: ``up``, ``down``, ``status``, kill and restart a node.

The ``link`` and ``mirror`` commands of a mirrored deployment are in
:mod:`deploy.kafka.mirroring` (``mirror status`` included).

Commands that change a deployment hold its directory's lock, so two launchers never
rewrite ``cluster.json`` at once; ``status`` only reads.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from confluent_kafka import KafkaException

from deploy.kafka.admin import (
    admin_client,
    create_topics,
    port_open,
    wait_for_brokers,
    wait_fully_replicated,
)
from deploy.kafka.config import write_configs
from deploy.kafka.errors import StateMissingError
from deploy.kafka.jars import ensure_jars, kafka_version, require_java
from deploy.kafka.layout import DEFAULT_VESSEL_NODES, Broker, Deployment, existing, plan
from deploy.kafka.link import ensure_toxiproxy
from deploy.kafka.mirroring import all_running, start_shipping, stop_shipping
from deploy.kafka.nodes import format_storage, spawn
from deploy.kafka.parts import Link, Mirror
from deploy.kafka.processes import Daemon, locked, running_pid, send_signal, stop, wait_gone
from deploy.kafka.topics import contract_topics

log: Final = logging.getLogger("deploy.kafka")

DEFAULT_UP_TIMEOUT_S: Final = 120.0
DEFAULT_STOP_TIMEOUT_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class BrokerStatus:
    """What one node is doing.

    Attributes:
        broker: The node.
        state: ``up`` (process alive, port accepting), ``starting`` (alive, port not yet
            open) or ``down``.
        pid: The live process's PID, or None.
    """

    broker: Broker
    state: Literal["up", "starting", "down"]
    pid: int | None


@dataclass(frozen=True, slots=True)
class UpResult:
    """What :func:`up` did.

    Attributes:
        deployment: The running clusters.
        already_running: True when every node was running already and nothing was done.
    """

    deployment: Deployment
    already_running: bool


def up(
    home: Path,
    *,
    base_port: int | None = None,
    telemetry_partitions: int = 6,
    position_partitions: int = 3,
    timeout: float = DEFAULT_UP_TIMEOUT_S,
    vessels: int | Sequence[str] | None = None,
    vessel_nodes: int = DEFAULT_VESSEL_NODES,
    mirror_raw: bool = False,
) -> UpResult:
    """Start the clusters in ``home`` and create the contract topics on each vessel.

    A new directory is laid out and formatted; a directory whose clusters were stopped
    is started again with its data; one where everything runs is left alone. Every
    process started here is stopped again if anything fails (also on Ctrl-C).

    Without ``vessels``: one ``vessel`` cluster and the shore, nothing in between (fast;
    what most tests use). With ``vessels``: clusters ``vessel1`` to ``vessel<N>``, the
    shore, the link proxy and one MirrorMaker 2 per vessel (see
    :mod:`deploy.kafka.mirroring`).

    Args:
        home: The deployment directory (created if needed).
        base_port: See :func:`deploy.kafka.layout.plan`; only used for a new directory.
        telemetry_partitions: Partitions of the telemetry topic.
        position_partitions: Partitions of the position topic.
        timeout: Seconds to wait for the clusters to serve requests.
        vessels: Number of mirrored vessels (named ``vessel1``…), or their names (the
            vessel ids, which become the mirror prefixes ashore); only for a new directory.
        vessel_nodes: Nodes per vessel cluster; only used for a new directory.
        mirror_raw: Mirror raw telemetry too; only used for a new directory.

    Raises:
        ToolMissingError: ``java`` (or, on the first run, ``mvn`` or ``go``) is missing.
        LauncherError: Anything else went wrong.
    """
    started = time.monotonic()
    java = require_java()
    home = home.resolve()
    with locked(home):
        try:
            dep: Deployment | None = Deployment.load(home)
        except StateMissingError:
            dep = None
        if dep is not None and all_running(dep):
            log.info("clusters in %s are already running", home)
            return UpResult(dep, already_running=True)
        if dep is None:
            lib = ensure_jars()
            ids = (
                None
                if vessels is None
                else [f"vessel{i}" for i in range(1, vessels + 1)]
                if isinstance(vessels, int)
                else list(vessels)
            )
            dep = plan(
                home,
                lib,
                kafka_version(),
                base_port,
                vessels=ids,
                vessel_nodes=vessel_nodes,
                mirror_raw=mirror_raw,
            )
            write_configs(dep)
            dep.save()
        elif not dep.lib.is_dir():
            dep.lib = ensure_jars()
        elif vessels is not None and not dep.mirrors:
            log.warning("%s holds an unmirrored deployment; --vessels is ignored", home)
        if dep.link is not None:
            ensure_toxiproxy()  # built (or `go` found missing) before any JVM starts
        format_storage(dep, java)  # only nodes not formatted yet, e.g. after a failed up
        to_start = [b for b in dep.brokers if running_pid(b) is None]
        shipping: list[Link | Mirror] = []
        try:
            for b in to_start:
                spawn(dep, b, java)
                dep.save()  # recorded at once, so a crash here leaves no unknown JVM
            deadline = started + timeout
            for b in to_start:
                # Each node is asked itself whether it serves as a registered member:
                # its peers may still list an old incarnation that was just killed.
                wait_for_brokers(
                    b.address,
                    [b.node_id],
                    timeout=max(deadline - time.monotonic(), 1.0),
                    watch=to_start,
                )
            for v in dep.vessels:
                create_topics(
                    v.bootstrap,
                    contract_topics(telemetry_partitions, position_partitions, len(v.brokers)),
                    timeout=max(deadline - time.monotonic(), 10.0),
                )
            start_shipping(
                dep, java, started=shipping, timeout=max(deadline - time.monotonic(), 10.0)
            )
        except BaseException:
            # Leave nothing half-started behind: these processes are this process's
            # children, so their liveness (and the stop) does not depend on reading /proc.
            try:
                stop(shipping, timeout=10.0)
                stop(to_start, timeout=10.0)
            finally:
                dep.save()
            raise
    log.info("clusters ready in %.1f s", time.monotonic() - started)
    return UpResult(dep, already_running=False)


def down(home: Path, *, timeout: float = DEFAULT_STOP_TIMEOUT_S) -> list[Daemon]:
    """Stop every process in ``home``: SIGTERM, then SIGKILL after ``timeout`` seconds.

    The MirrorMakers go first, then the link proxy, then the nodes. Data stays, so a
    later :func:`up` resumes with it.

    Returns:
        The processes (nodes, link proxy, MirrorMakers) that were running.

    Raises:
        StateMissingError: ``home`` holds no clusters.
    """
    home = existing(home)
    with locked(home):
        dep = Deployment.load(home)
        stopped: list[Daemon] = []
        try:
            stopped += stop_shipping(dep, timeout)
            stopped += stop(dep.brokers, timeout)
        finally:
            dep.save()
    return stopped


def status(home: Path, *, timeout: float = 5.0) -> list[BrokerStatus]:
    """The state of every node in ``home``.

    A node is ``up`` when its JVM runs and it serves requests as a registered member of
    its cluster; ``starting`` when the JVM runs but it does not (yet).

    Raises:
        StateMissingError: ``home`` holds no clusters.
    """
    dep = Deployment.load(existing(home))
    result = []
    for cluster in dep.clusters.values():
        pids = {b.node_id: running_pid(b) for b in cluster.brokers}
        listening = [b for b in cluster.brokers if pids[b.node_id] and port_open(b.port)]
        registered: set[int] = set()
        for b in listening:
            # Each node is asked on its own: one that just restarted is not serving yet
            # even though its port is open and its peers may still list it.
            with contextlib.suppress(KafkaException):
                md = admin_client(b.address).list_topics(timeout=timeout)
                if b.node_id in {int(i) for i in md.brokers}:
                    registered.add(b.node_id)
        for b in cluster.brokers:
            pid = pids[b.node_id]
            if pid is None:
                result.append(BrokerStatus(b, "down", None))
            else:
                result.append(BrokerStatus(b, "up" if b.node_id in registered else "starting", pid))
    return result


def kill_broker(home: Path, cluster: str, node_id: int) -> Broker:
    """SIGKILL one node, as a crash would, and wait until it is gone.

    Returns:
        The node (its ``pid`` is None afterwards).

    Raises:
        LauncherError: No such node.
    """
    home = existing(home)
    with locked(home):
        dep = Deployment.load(home)
        b = dep.cluster(cluster).broker(node_id)
        pid = running_pid(b)
        if pid is None:
            log.info("%s is not running", b.name)
        else:
            log.info("killing %s (pid %d)", b.name, pid)
            send_signal(pid, signal.SIGKILL)
            wait_gone([b])
        b.pid = None
        dep.save()
    return b


def start_broker(
    home: Path,
    cluster: str,
    node_id: int,
    *,
    timeout: float = 60.0,
    wait_in_sync: bool = True,
) -> Broker:
    """Start one stopped node again with its config and data.

    Args:
        home: The deployment directory.
        cluster: ``vessel`` or ``shore``.
        node_id: 1-based node id.
        timeout: Seconds to wait for the node to rejoin.
        wait_in_sync: Also wait until every partition has all replicas in sync again,
            so the cluster is back to full strength.

    Raises:
        LauncherError: No such node, or it did not rejoin in time.
    """
    started = time.monotonic()
    java = require_java()
    home = existing(home)
    with locked(home):
        dep = Deployment.load(home)
        c = dep.cluster(cluster)
        b = c.broker(node_id)
        if running_pid(b) is not None:
            log.info("%s is already running (pid %s)", b.name, b.pid)
            return b
        if not dep.lib.is_dir():
            dep.lib = ensure_jars()
        try:
            spawn(dep, b, java)
            dep.save()
            # Ask the restarted node itself: until a kill is noticed (the session
            # timeout), the others still list its old incarnation as alive.
            wait_for_brokers(b.address, [b.node_id], timeout=timeout, watch=[b])
            if wait_in_sync:
                wait_fully_replicated(
                    c.bootstrap, timeout=max(started + timeout - time.monotonic(), 5.0)
                )
        except BaseException:
            try:
                stop([b], timeout=10.0)
            finally:
                dep.save()
            raise
    log.info("%s is back in %.1f s", b.name, time.monotonic() - started)
    return b
