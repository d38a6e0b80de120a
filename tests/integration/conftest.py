"""Fixtures that run real Kafka clusters (see ``deploy/kafka``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.kafka import commands
from deploy.kafka.layout import STATE_FILE
from tests.support.kafka import kill_strays


@dataclass(frozen=True, slots=True)
class KafkaClusters:
    """Both running clusters of a test session.

    Attributes:
        dir: The deployment directory (``cluster.json``, logs, data).
        vessel_brokers: Bootstrap servers of the 3-node vessel cluster.
        shore_brokers: Bootstrap servers of the 1-node shore cluster.
    """

    dir: Path
    vessel_brokers: str
    shore_brokers: str

    def kill_broker(self, cluster: str, node_id: int) -> None:
        """SIGKILL one node, as a crash would."""
        commands.kill_broker(self.dir, cluster, node_id)

    def start_broker(self, cluster: str, node_id: int) -> None:
        """Start a stopped node again; returns once all replicas are in sync."""
        commands.start_broker(self.dir, cluster, node_id)

    def status(self) -> dict[tuple[str, int], str]:
        """``(cluster, node id) -> "up" | "starting" | "down"``."""
        return {(s.broker.cluster, s.broker.node_id): s.state for s in commands.status(self.dir)}


@pytest.fixture(scope="session")
def kafka_clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaClusters]:
    """Start the vessel and shore clusters once per session; stop them at its end."""
    home = tmp_path_factory.mktemp("kafka")
    try:
        dep = commands.up(home).deployment
        yield KafkaClusters(home, dep.vessel.bootstrap, dep.shore.bootstrap)
    finally:
        # Also after a failed up() or test: no broker may outlive the session.
        try:
            if (home / STATE_FILE).exists():
                commands.down(home, timeout=20.0)
        finally:
            strays = kill_strays(home)
        assert not strays, f"JVMs {strays} of {home} outlived down(); killed them"
