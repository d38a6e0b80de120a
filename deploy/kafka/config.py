"""What each node runs with: its ``server.properties`` and the shared ``log4j2.properties``.

* ``vessel``: 3 nodes, each a combined broker and controller (a controller quorum of
  3), default replication factor 3 and ``min.insync.replicas=2``: one broker can die
  without stopping ``acks=all`` producers or losing an acknowledged record.
* ``shore``: 1 node. MirrorMaker 2 creates the mirrored topics there.
* Vessels of a mirrored deployment (``vessel1``…): as ``vessel``, with as many nodes as
  asked (replication factor and ``min.insync.replicas`` shrink with a smaller cluster),
  plus a ``MIRROR`` listener per node that advertises the node's link proxy: Kafka
  clients connect to the advertised addresses they learn from metadata, so this is what
  routes every connection of MirrorMaker 2 through the link, not just its bootstrap.

Quorum. The controllers are listed statically (``controller.quorum.voters``) and storage
is formatted with the cluster id alone: a fixed quorum of 3 on known ports needs no
dynamic voter changes, and a restarted node rejoins with the same config and data.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

from deploy.kafka.layout import HOST, Broker, Cluster, Deployment
from deploy.kafka.topics import MIN_INSYNC_REPLICAS, RETENTION_MS

LOG4J2_PROPERTIES: Final = """\
# Every Kafka logger into one rolling server.log per node (kafka.logs.dir is set per JVM).
status = warn
name = coldwake-kafka
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.filePattern = ${sys:kafka.logs.dir}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
# One line per request at INFO would drown everything else.
logger.request.name = kafka.request.logger
logger.request.level = warn
# MirrorMaker 2: while the vessel is unreachable its admin client logs "Rebootstrapping"
# at INFO thousands of times a second.
logger.adminmeta.name = org.apache.kafka.clients.admin.internals.AdminMetadataManager
logger.adminmeta.level = warn
"""


def broker_properties(cluster: Cluster, broker: Broker) -> dict[str, str]:
    """The ``server.properties`` of one node.

    A mirrored vessel's node also checks retention every 5 s instead of 5 min, so that
    records deleted by retention during a link outage are deleted within seconds of a
    test shortening ``retention.ms``.
    """
    rf = len(cluster.brokers)
    min_isr = min(MIN_INSYNC_REPLICAS, rf)
    voters = ",".join(f"{b.node_id}@{HOST}:{b.controller_port}" for b in cluster.brokers)
    listeners = f"PLAINTEXT://{HOST}:{broker.port},CONTROLLER://{HOST}:{broker.controller_port}"
    advertised = listeners
    protocols = "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    extra = {}
    if broker.mirror_port is not None:
        listeners += f",MIRROR://{HOST}:{broker.mirror_port}"
        advertised += f",MIRROR://{HOST}:{broker.proxy_port}"
        protocols += ",MIRROR:PLAINTEXT"
        extra["log.retention.check.interval.ms"] = "5000"
    return {
        "process.roles": "broker,controller",
        "node.id": str(broker.node_id),
        "controller.quorum.voters": voters,
        "listeners": listeners,
        "advertised.listeners": advertised,
        "listener.security.protocol.map": protocols,
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "log.dirs": str(broker.data_dir),
        # The contract: topics are created on purpose, never by a typo in a client.
        "auto.create.topics.enable": "false",
        "num.partitions": "3",
        "default.replication.factor": str(rf),
        "min.insync.replicas": str(min_isr),
        "unclean.leader.election.enable": "false",
        "offsets.topic.replication.factor": str(rf),
        "offsets.topic.num.partitions": "6",
        "transaction.state.log.replication.factor": str(rf),
        "transaction.state.log.min.isr": str(min_isr),
        "transaction.state.log.num.partitions": "6",
        "share.coordinator.state.topic.replication.factor": str(rf),
        "share.coordinator.state.topic.min.isr": str(min_isr),
        "share.coordinator.state.topic.num.partitions": "3",
        "group.initial.rebalance.delay.ms": "0",
        # Every node is also a controller: on `down`, the last node to go would wait 5
        # minutes for a quorum that has already left to approve moving its partition
        # leaders away. Skipping that step still closes every log cleanly.
        "controlled.shutdown.enable": "false",
        # Small thread pools and buffers: 4 nodes share 2 cores and small heaps.
        "num.network.threads": "2",
        "num.io.threads": "2",
        "background.threads": "4",
        "num.replica.fetchers": "1",
        "num.recovery.threads.per.data.dir": "1",
        "log.cleaner.threads": "1",
        "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),  # default 128 MiB
        "log.segment.bytes": str(16 * 1024 * 1024),
        # Also the default for topics made later, e.g. by MirrorMaker 2 on shore.
        "log.retention.ms": str(RETENTION_MS),
        # A killed node is fenced (and its partitions move) within seconds, not 9+ s.
        "broker.heartbeat.interval.ms": "1000",
        "broker.session.timeout.ms": "6000",
        "replica.lag.time.max.ms": "10000",
        **extra,
    }


def write_properties(path: Path, props: Mapping[str, str]) -> None:
    """Write a Java properties file (our values never need escaping)."""
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))


def write_configs(dep: Deployment) -> None:
    """Create the deployment's directories and write every config file in them."""
    dep.home.mkdir(parents=True, exist_ok=True)
    dep.log_config.write_text(LOG4J2_PROPERTIES)
    for cluster in dep.clusters.values():
        for b in cluster.brokers:
            b.home.mkdir(parents=True, exist_ok=True)
            write_properties(b.properties, broker_properties(cluster, b))
