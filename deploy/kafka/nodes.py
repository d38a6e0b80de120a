"""Starting a node: formatting its storage once, and its JVM in the background."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Final

from deploy.kafka.errors import LauncherError
from deploy.kafka.jars import BROKER_HEAP, BROKER_MAIN, STORAGE_TOOL_MAIN, TOOL_HEAP, java_cmd
from deploy.kafka.layout import Broker, Deployment
from deploy.kafka.logs import tail
from deploy.kafka.processes import start_background

log: Final = logging.getLogger("deploy.kafka")

FORMAT_TIMEOUT_S: Final = 120.0


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


def format_storage(dep: Deployment, java: str, timeout: float = FORMAT_TIMEOUT_S) -> None:
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
