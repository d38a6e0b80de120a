"""What the command line and the tests call: ``up``, ``down``, ``status``, kill and restart a node.

Commands that change a deployment hold its directory's lock, so two launchers never
rewrite ``cluster.json`` at once; ``status`` only reads.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import time
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
from deploy.kafka.errors import LauncherError, StateMissingError
from deploy.kafka.jars import (
    BROKER_HEAP,
    BROKER_MAIN,
    STORAGE_TOOL_MAIN,
    TOOL_HEAP,
    ensure_jars,
    java_cmd,
    kafka_version,
    require_java,
)
from deploy.kafka.layout import Broker, Deployment, existing, plan
from deploy.kafka.logs import tail
from deploy.kafka.processes import (
    locked,
    running_pid,
    send_signal,
    start_background,
    stop,
    wait_gone,
)
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
) -> UpResult:
    """Start both clusters in ``home`` and create the contract topics on the vessel.

    A new directory is laid out and formatted; a directory whose clusters were stopped
    is started again with its data; one whose nodes all run is left alone. Every JVM
    started here is stopped again if anything fails (also on Ctrl-C).

    Args:
        home: The deployment directory (created if needed).
        base_port: See :func:`deploy.kafka.layout.plan`; only used for a new directory.
        telemetry_partitions: Partitions of the telemetry topic.
        position_partitions: Partitions of the position topic.
        timeout: Seconds to wait for the clusters to serve requests.

    Raises:
        ToolMissingError: ``java`` (or, on the first run, ``mvn``) is missing.
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
        if dep is not None and all(running_pid(b) is not None for b in dep.brokers):
            log.info("clusters in %s are already running", home)
            return UpResult(dep, already_running=True)
        if dep is None:
            lib = ensure_jars()
            dep = plan(home, lib, kafka_version(), base_port)
            write_configs(dep)
            dep.save()
        elif not dep.lib.is_dir():
            dep.lib = ensure_jars()
        format_storage(dep, java)  # only nodes not formatted yet, e.g. after a failed up
        to_start = [b for b in dep.brokers if running_pid(b) is None]
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
            create_topics(
                dep.vessel.bootstrap,
                contract_topics(telemetry_partitions, position_partitions),
                timeout=max(deadline - time.monotonic(), 10.0),
            )
        except BaseException:
            # Leave nothing half-started behind: these JVMs are this process's children,
            # so their liveness (and the stop) does not depend on reading /proc.
            try:
                stop(to_start, timeout=10.0)
            finally:
                dep.save()
            raise
    log.info("clusters ready in %.1f s", time.monotonic() - started)
    return UpResult(dep, already_running=False)


def down(home: Path, *, timeout: float = DEFAULT_STOP_TIMEOUT_S) -> list[Broker]:
    """Stop every node in ``home``: SIGTERM, then SIGKILL after ``timeout`` seconds.

    Data stays, so a later :func:`up` resumes with it.

    Returns:
        The nodes that were running.

    Raises:
        StateMissingError: ``home`` holds no clusters.
    """
    home = existing(home)
    with locked(home):
        dep = Deployment.load(home)
        stopped = stop(dep.brokers, timeout)
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


def spawn(dep: Deployment, broker: Broker, java: str) -> None:
    """Start the node's JVM in the background and record its PID in ``broker``."""
    cmd = java_cmd(
        BROKER_MAIN,
        [str(broker.properties)],
        lib=dep.lib,
        java=java,
        heap=BROKER_HEAP,
        log_dir=broker.home,
        log_config=dep.log_config,
    )
    log.info("starting %s on %s", broker.name, broker.address)
    broker.pid = start_background(cmd, cwd=broker.home, console_log=broker.console_log)


def format_storage(dep: Deployment, java: str, timeout: float = DEFAULT_UP_TIMEOUT_S) -> None:
    """Format every node's storage that is not formatted yet (all in parallel).

    Raises:
        LauncherError: The storage tool failed.
    """
    jobs: list[tuple[Broker, subprocess.Popen[bytes], Path]] = []
    failed = []
    try:
        for cluster in dep.clusters.values():
            for b in cluster.brokers:
                if (b.data_dir / "meta.properties").is_file():
                    continue
                out = b.home / "format.log"
                cmd = java_cmd(
                    STORAGE_TOOL_MAIN,
                    ["format", "--cluster-id", cluster.cluster_id, "--config", str(b.properties)],
                    lib=dep.lib,
                    java=java,
                    heap=TOOL_HEAP,
                    log_dir=b.home,
                    log_config=dep.log_config,
                )
                with out.open("wb") as fh:
                    proc = subprocess.Popen(
                        cmd, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT
                    )
                jobs.append((b, proc, out))
        for b, proc, out in jobs:
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait()
            if rc != 0:
                failed.append(f"{b.name}: storage format failed (exit {rc}):\n{tail(out, 10)}")
    finally:
        for _, proc, _ in jobs:  # no storage tool outlives a failure or Ctrl-C
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if failed:
        raise LauncherError("\n".join(failed))
