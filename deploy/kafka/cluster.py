"""Local Apache Kafka clusters (KRaft) run from Apache Kafka's own jars.

Two clusters on 127.0.0.1, for development and integration tests:

* ``vessel``: 3 nodes, each a combined broker and controller (a controller quorum of
  3), default replication factor 3 and ``min.insync.replicas=2``: one broker can die
  without stopping ``acks=all`` producers or losing an acknowledged record.
* ``shore``: 1 node. MirrorMaker 2 creates the mirrored topics there.

The jars (broker, storage tool, MirrorMaker 2, a log4j2 backend) are fetched once with
Maven (``pom.xml`` beside this file pins the version) into a cache outside the
repository: ``$COLDWAKE_KAFKA_CACHE/kafka-<version>/lib``, where ``COLDWAKE_KAFKA_CACHE``
defaults to ``$XDG_CACHE_HOME/coldwake`` or ``~/.cache/coldwake``.

Everything a deployment owns lives under one directory: ``cluster.json`` (ports, broker
ids and PIDs, so another process can run ``status``/``down``), ``log4j2.properties``, and
per node ``<cluster>-<n>/`` with ``server.properties``, ``data/``, ``server.log`` (Kafka's
log) and ``console.log`` (the JVM's stdout and stderr).

Retention. The link to shore may be down for a week, and nothing may be lost while it
is: MirrorMaker 2 can only copy ashore what the vessel still has. Every contract topic
therefore keeps records for 14 days (twice the longest outage we plan for, so a link
that comes back late still finds its backlog, and so does a resync after it) and is
never trimmed by size (``retention.bytes=-1``): on board, disk is what to watch, not
time.

Quorum. The controllers are listed statically (``controller.quorum.voters``) and storage
is formatted with the cluster id alone: a fixed quorum of 3 on known ports needs no
dynamic voter changes, and a restarted node rejoins with the same config and data.

MirrorMaker 2 and any other Kafka tool reuse :func:`ensure_jars`, :func:`java_cmd`,
:func:`start_background` and :func:`process_alive`. ``COLDWAKE_KAFKA_JVM_OPTS`` adds JVM
flags to every Kafka JVM.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

log: Final = logging.getLogger("deploy.kafka")

HOST: Final = "127.0.0.1"
VESSEL: Final = "vessel"
SHORE: Final = "shore"
CLUSTER_NAMES: Final = (VESSEL, SHORE)
NODE_COUNTS: Final[Mapping[str, int]] = {VESSEL: 3, SHORE: 1}

POM: Final = Path(__file__).with_name("pom.xml")
STATE_FILE: Final = "cluster.json"
LOG_CONFIG_FILE: Final = "log4j2.properties"

BROKER_MAIN: Final = "kafka.Kafka"
STORAGE_TOOL_MAIN: Final = "kafka.tools.StorageTool"
MIRROR_MAKER_MAIN: Final = "org.apache.kafka.connect.mirror.MirrorMaker"
MIN_JAVA: Final = 17

# Four brokers and MirrorMaker share 2 cores in tests: small heaps and the serial
# collector keep each JVM's memory and background CPU low, and the C1 compiler alone
# (TieredStopAtLevel=1) starts a broker about a third faster than the full JIT, which
# matters more here than peak throughput. Benchmarks against these brokers can get the
# full JIT back with COLDWAKE_KAFKA_JVM_OPTS="-XX:TieredStopAtLevel=4" (appended last,
# so it wins).
BROKER_HEAP: Final = ("-Xms128m", "-Xmx384m")
TOOL_HEAP: Final = ("-Xms32m", "-Xmx128m")
JVM_FLAGS: Final = (
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)
JVM_OPTS_ENV: Final = "COLDWAKE_KAFKA_JVM_OPTS"

DAY_MS: Final = 24 * 60 * 60 * 1000
RETENTION_MS: Final = 14 * DAY_MS
TELEMETRY_TOPIC: Final = "reefer.telemetry"
POSITION_TOPIC: Final = "vessel.position"
OUTPUT_TOPICS: Final = (
    "reefer.alerts",
    "reefer.windows",
    "reefer.container-state",
    "reefer.dlq",
    "reefer.late",
)
COMPACTED_TOPICS: Final = frozenset({"reefer.container-state"})
OUTPUT_PARTITIONS: Final = 3

DEFAULT_UP_TIMEOUT_S: Final = 120.0
DEFAULT_STOP_TIMEOUT_S: Final = 30.0

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
"""


class LauncherError(Exception):
    """A cluster could not be set up, started, stopped or inspected."""


class ToolMissingError(LauncherError):
    """``java`` or ``mvn`` is missing or too old."""


class StateMissingError(LauncherError):
    """The directory holds no clusters (no ``cluster.json``)."""


# Popen objects of the brokers this process started: kept so that they are reaped
# (no zombies, no ResourceWarning) when stopped from here.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic to create.

    Attributes:
        name: Topic name.
        partitions: Number of partitions.
        replication_factor: Replicas per partition.
        config: Topic-level configs, e.g. ``{"cleanup.policy": "compact"}``.
    """

    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str] = field(default_factory=dict)


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
        """The node's ``server.properties``."""
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


# --- tools and jars -------------------------------------------------------------------


def kafka_version(pom: Path = POM) -> str:
    """The Kafka version pinned in ``pom.xml`` (property ``kafka.version``)."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(pom).getroot().find("m:properties/m:kafka.version", ns)
    if node is None or not (node.text or "").strip():
        raise LauncherError(f"{pom} has no <kafka.version> property")
    return (node.text or "").strip()


def cache_root() -> Path:
    """Where fetched jars are kept: ``$COLDWAKE_KAFKA_CACHE``, else the user cache."""
    explicit = os.environ.get("COLDWAKE_KAFKA_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "coldwake"


def lib_dir(version: str | None = None) -> Path:
    """The jar directory of ``version`` (default: the pinned one)."""
    return cache_root() / f"kafka-{version or kafka_version()}" / "lib"


def require_tool(name: str, hint: str) -> str:
    """The path of executable ``name``.

    Raises:
        ToolMissingError: It is not on PATH.
    """
    path = shutil.which(name)
    if path is None:
        raise ToolMissingError(f"{name} not found on PATH; {hint}")
    return path


def require_java() -> str:
    """The path of a ``java`` that can run Kafka 4 (Java 17 or newer).

    Raises:
        ToolMissingError: It is missing or too old.
    """
    java = require_tool("java", f"install a Java {MIN_JAVA} JDK")
    out = subprocess.run(
        [java, "-version"], capture_output=True, text=True, timeout=60, check=False
    ).stderr
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if m is None:
        raise ToolMissingError(f"cannot tell the version of {java} (`java -version` said {out!r})")
    major = int(m.group(1))
    if major == 1 and m.group(2):  # "1.8.0_x" style
        major = int(m.group(2))
    if major < MIN_JAVA:
        raise ToolMissingError(f"{java} is Java {major}; Kafka 4 needs Java {MIN_JAVA} or newer")
    return java


def _pom_digest() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def ensure_jars() -> Path:
    """Fetch the pinned Kafka jars with Maven unless cached; return the jar directory.

    The copy goes to a temporary directory first and is renamed into place with a
    marker holding the pom's digest, so an interrupted fetch or an edited pom is
    fetched again instead of leaving a half-filled classpath. Concurrent first runs
    (parallel test sessions) wait for one fetch instead of racing.

    Raises:
        ToolMissingError: The cache is cold and ``mvn`` is missing.
        LauncherError: Maven failed.
    """
    version = kafka_version()
    lib = lib_dir(version)
    marker = lib / ".coldwake-pom-sha256"
    digest = _pom_digest()

    def cached() -> bool:
        return marker.is_file() and marker.read_text().strip() == digest

    if cached():
        return lib
    mvn = require_tool("mvn", "install Maven 3.8+ (needed once, to fetch the Kafka jars)")
    with _locked(lib.parent, ".fetch.lock"):
        if cached():
            return lib
        log.info("fetching Kafka %s jars with Maven (first run only)…", version)
        started = time.monotonic()
        tmp = lib.parent / f".lib.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        mvn_log = lib.parent / "mvn.log"
        with mvn_log.open("wb") as out:
            rc = subprocess.run(
                [
                    mvn,
                    "-q",
                    "-B",
                    "-f",
                    str(POM),
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={tmp}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            ).returncode
        if rc != 0 or not any(tmp.glob("kafka_2.13-*.jar")):
            shutil.rmtree(tmp, ignore_errors=True)
            raise LauncherError(
                f"Maven could not fetch Kafka {version} (exit {rc}); is Maven Central "
                f"reachable? See {mvn_log}:\n{_tail(mvn_log, 15)}"
            )
        (tmp / marker.name).write_text(digest + "\n")
        shutil.rmtree(lib, ignore_errors=True)  # a stale copy for an older pom
        tmp.rename(lib)
    log.info(
        "fetched %d jars into %s in %.1f s",
        len(list(lib.glob("*.jar"))),
        lib,
        time.monotonic() - started,
    )
    return lib


def classpath(lib: Path) -> str:
    """A JVM classpath of every jar in ``lib`` (the JVM expands ``dir/*`` itself)."""
    return str(lib / "*")


def java_cmd(
    main_class: str,
    args: Sequence[str],
    *,
    lib: Path,
    java: str = "java",
    heap: Sequence[str] = BROKER_HEAP,
    log_dir: Path | None = None,
    log_config: Path | None = None,
    jvm_args: Sequence[str] = (),
) -> list[str]:
    """The command line that runs ``main_class`` from Kafka's jars.

    Args:
        main_class: e.g. :data:`BROKER_MAIN` or :data:`MIRROR_MAKER_MAIN`.
        args: Arguments of the main class.
        lib: Jar directory from :func:`ensure_jars`.
        java: The ``java`` executable.
        heap: Heap flags.
        log_dir: Value of ``kafka.logs.dir`` (where ``server.log`` goes).
        log_config: A log4j2 configuration file.
        jvm_args: Further JVM flags.

    ``$COLDWAKE_KAFKA_JVM_OPTS`` (split on whitespace) is appended to the JVM flags.
    """
    cmd = [java, *heap, *JVM_FLAGS, *jvm_args, *os.environ.get(JVM_OPTS_ENV, "").split()]
    if log_dir is not None:
        cmd.append(f"-Dkafka.logs.dir={log_dir}")
    if log_config is not None:
        cmd.append(f"-Dlog4j2.configurationFile={log_config}")
    return [*cmd, "-cp", classpath(lib), main_class, *args]


# --- configuration --------------------------------------------------------------------


def new_cluster_id() -> str:
    """A random Kafka cluster id: 16 random bytes, base64url without padding."""
    while True:
        cid = base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()
        if not cid.startswith("-"):  # Kafka avoids these too: they read as CLI flags.
            return cid


def broker_properties(cluster: Cluster, broker: Broker) -> dict[str, str]:
    """The ``server.properties`` of one node."""
    rf = len(cluster.brokers)
    min_isr = min(2, rf)
    voters = ",".join(f"{b.node_id}@{HOST}:{b.controller_port}" for b in cluster.brokers)
    return {
        "process.roles": "broker,controller",
        "node.id": str(broker.node_id),
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://{HOST}:{broker.port},CONTROLLER://{HOST}:{broker.controller_port}",
        "advertised.listeners": (
            f"PLAINTEXT://{HOST}:{broker.port},CONTROLLER://{HOST}:{broker.controller_port}"
        ),
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
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
    }


def write_properties(path: Path, props: Mapping[str, str]) -> None:
    """Write a Java properties file (our values never need escaping)."""
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))


def contract_topics(telemetry_partitions: int = 6, position_partitions: int = 3) -> list[TopicSpec]:
    """The contract's topics as the vessel cluster holds them.

    Replication factor 3 with ``min.insync.replicas=2``; 14 days' retention and no size
    limit (see the module docstring); ``reefer.container-state`` is compacted.
    """
    base = {
        "min.insync.replicas": "2",
        "retention.ms": str(RETENTION_MS),
        "retention.bytes": "-1",
    }
    specs = [
        TopicSpec(TELEMETRY_TOPIC, telemetry_partitions, 3, {**base, "cleanup.policy": "delete"}),
        TopicSpec(POSITION_TOPIC, position_partitions, 3, {**base, "cleanup.policy": "delete"}),
    ]
    for name in OUTPUT_TOPICS:
        policy = "compact" if name in COMPACTED_TOPICS else "delete"
        specs.append(TopicSpec(name, OUTPUT_PARTITIONS, 3, {**base, "cleanup.policy": policy}))
    return specs


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


def plan(home: Path, lib: Path, version: str, base_port: int | None = None) -> Deployment:
    """Lay out both clusters: ids, ports and directories (nothing is written).

    Args:
        home: The deployment directory.
        lib: Jar directory.
        version: Kafka version of the jars.
        base_port: First of 8 consecutive ports (vessel node n: ``base + 2(n-1)`` for
            clients and the next for its controller; shore: ``base + 6`` and ``+ 7``);
            None picks free ports.
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


def _write_configs(dep: Deployment) -> None:
    dep.home.mkdir(parents=True, exist_ok=True)
    dep.log_config.write_text(LOG4J2_PROPERTIES)
    for cluster in dep.clusters.values():
        for b in cluster.brokers:
            b.home.mkdir(parents=True, exist_ok=True)
            write_properties(b.properties, broker_properties(cluster, b))


def format_storage(dep: Deployment, java: str, timeout: float = DEFAULT_UP_TIMEOUT_S) -> None:
    """Format every node's storage that is not formatted yet (all in parallel).

    Raises:
        LauncherError: The storage tool failed.
    """
    jobs: list[tuple[Broker, subprocess.Popen[bytes], Path]] = []
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
    failed = []
    for b, proc, out in jobs:
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        if rc != 0:
            failed.append(f"{b.name}: storage format failed (exit {rc}):\n{_tail(out, 10)}")
    if failed:
        raise LauncherError("\n".join(failed))


# --- processes ------------------------------------------------------------------------


def _reap(pid: int) -> None:
    proc = _CHILDREN.get(pid)
    if proc is not None:
        if proc.poll() is not None:
            del _CHILDREN[pid]
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def process_alive(pid: int | None, marker: Path) -> bool:
    """Whether ``pid`` is alive and really is the process started with ``marker``.

    A recorded PID alone is not trusted: after a reboot or a crash it may belong to an
    unrelated process, which must never be signalled. On Linux the process's command
    line must contain ``marker`` (a config file path) as an argument.
    """
    if pid is None:
        return False
    _reap(pid)
    proc_dir = Path("/proc")
    if proc_dir.is_dir():
        try:
            argv = (proc_dir / str(pid) / "cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return os.fsencode(str(marker)) in argv  # a zombie's cmdline is empty
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_pid(broker: Broker) -> int | None:
    """The PID of the node's JVM if it is alive (see :func:`process_alive`), else None."""
    return broker.pid if process_alive(broker.pid, broker.properties) else None


def _port_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def start_background(cmd: Sequence[str], *, cwd: Path, console_log: Path) -> int:
    """Start a long-running process detached from the launcher; return its PID.

    Args:
        cmd: The command, e.g. from :func:`java_cmd`.
        cwd: Its working directory.
        console_log: File that gets its stdout and stderr (appended).
    """
    with console_log.open("ab") as console:
        # A session of its own: Ctrl-C in the terminal that ran `up` must not stop the
        # clusters, which are meant to outlive the launcher.
        proc = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    return proc.pid


def _spawn(dep: Deployment, broker: Broker, java: str) -> None:
    """Start the node's JVM in the background and record its PID."""
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


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _stop(brokers: Sequence[Broker], timeout: float) -> list[Broker]:
    """SIGTERM the live nodes, SIGKILL those still alive after ``timeout``."""
    live = [b for b in brokers if running_pid(b) is not None]
    for b in live:
        log.info("stopping %s (pid %s)", b.name, b.pid)
        assert b.pid is not None
        _signal(b.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    pending = list(live)
    while pending and time.monotonic() < deadline:
        time.sleep(0.1)
        pending = [b for b in pending if running_pid(b) is not None]
    for b in pending:
        assert b.pid is not None
        log.warning("%s (pid %s) ignored SIGTERM for %.0f s; killing it", b.name, b.pid, timeout)
        _signal(b.pid, signal.SIGKILL)
    _wait_gone(pending)
    for b in brokers:
        b.pid = None
    return live


def _wait_gone(brokers: Sequence[Broker], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while any(running_pid(b) is not None for b in brokers):
        if time.monotonic() > deadline:
            names = ", ".join(b.name for b in brokers if running_pid(b) is not None)
            raise LauncherError(f"{names} still running after SIGKILL")
        time.sleep(0.05)


@contextlib.contextmanager
def _locked(home: Path, name: str = ".lock") -> Iterator[None]:
    """Serialise launcher commands on one directory (they rewrite ``cluster.json``)."""
    home.mkdir(parents=True, exist_ok=True)
    with (home / name).open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _existing(home: Path) -> Path:
    """``home`` resolved, if it holds clusters (a mistyped path is not created)."""
    home = home.resolve()
    if not (home / STATE_FILE).is_file():
        raise StateMissingError(f"no clusters in {home}: {STATE_FILE} is missing; run `up` first")
    return home


def _startup_errors(broker: Broker, limit: int = 3) -> str:
    """The first errors of the node's latest start (the root cause comes first)."""
    try:
        text = broker.server_log.read_text(errors="replace")
    except OSError:
        text = ""
    # Logs are appended across restarts; Kafka prints its config at each start.
    lines = text[text.rfind("KafkaConfig values:") :].splitlines()
    found: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith("[") and (" ERROR " in line or " FATAL " in line):
            found.append("  " + line[:300])
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            if nxt and not nxt.startswith(("[", "\t")):
                found.append("    " + nxt[:300])  # the exception's message
            if len(found) >= 2 * limit:
                break
    if found:
        return f"first errors in {broker.server_log}:\n" + "\n".join(found)
    return f"end of {broker.console_log}:\n{_tail(broker.console_log, 10)}"


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"  ({path} is unreadable)"
    return "\n".join("  " + line for line in text.splitlines()[-lines:])


# --- admin ----------------------------------------------------------------------------


def admin_client(bootstrap: str) -> AdminClient:
    """An AdminClient for ``bootstrap`` with short timeouts."""
    return AdminClient({"bootstrap.servers": bootstrap, "socket.connection.setup.timeout.ms": 5000})


def wait_for_brokers(
    bootstrap: str,
    node_ids: Collection[int],
    *,
    timeout: float,
    watch: Sequence[Broker] = (),
) -> None:
    """Wait until every node in ``node_ids`` is registered and serving metadata.

    Args:
        bootstrap: The cluster's bootstrap servers.
        node_ids: Nodes that must be in the cluster's metadata (unfenced).
        timeout: Seconds to wait.
        watch: Nodes whose JVM must stay alive meanwhile; one that exits fails fast
            with the end of its logs.

    Raises:
        LauncherError: A watched node exited, or time ran out.
    """
    deadline = time.monotonic() + timeout
    admin: AdminClient | None = None
    seen: set[int] = set()
    while True:
        for b in watch:
            if running_pid(b) is None:
                raise LauncherError(f"{b.name} exited while starting; {_startup_errors(b)}")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            missing = sorted(set(node_ids) - seen)
            raise LauncherError(
                f"brokers {missing} of {bootstrap} not ready after {timeout:.0f} s; "
                "see server.log in their directories"
            )
        # Connecting before any port is open only fills stderr with librdkafka's
        # connection-refused lines.
        if admin is None:
            if not all(_port_open(int(a.rsplit(":", 1)[1])) for a in bootstrap.split(",")):
                time.sleep(0.2)
                continue
            admin = admin_client(bootstrap)
        try:
            md = admin.list_topics(timeout=min(2.0, max(remaining, 0.1)))
            seen = {int(i) for i in md.brokers}
        except KafkaException:
            seen = set()
        if set(node_ids) <= seen:
            return
        time.sleep(0.2)


def create_topics(bootstrap: str, specs: Sequence[TopicSpec], *, timeout: float = 30.0) -> None:
    """Create topics on any cluster; existing ones are left as they are.

    Returns once every partition of every topic has a leader, so producers can write
    straight away.

    Raises:
        LauncherError: A topic could not be created, or leaders did not appear in time.
    """
    if not specs:
        return
    admin = admin_client(bootstrap)
    new = [
        NewTopic(
            s.name,
            num_partitions=s.partitions,
            replication_factor=s.replication_factor,
            config=dict(s.config),
        )
        for s in specs
    ]
    futures = admin.create_topics(new, operation_timeout=timeout, request_timeout=timeout)
    for name, fut in futures.items():
        try:
            fut.result(timeout=timeout)
        except KafkaException as e:
            err = e.args[0]
            if err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                log.debug("topic %s exists already", name)
                continue
            raise LauncherError(f"cannot create topic {name} on {bootstrap}: {err.str()}") from e
    wait_for_leaders(bootstrap, [s.name for s in specs], timeout=timeout)


def wait_for_leaders(bootstrap: str, topics: Collection[str], *, timeout: float) -> None:
    """Wait until every partition of ``topics`` has a leader.

    Raises:
        LauncherError: Time ran out.
    """
    admin = admin_client(bootstrap)
    deadline = time.monotonic() + timeout
    while True:
        try:
            md = admin.list_topics(timeout=min(5.0, timeout))
            ready = all(
                t in md.topics
                and md.topics[t].error is None
                and md.topics[t].partitions
                and all(p.leader >= 0 for p in md.topics[t].partitions.values())
                for t in topics
            )
        except KafkaException:
            ready = False
        if ready:
            return
        if time.monotonic() > deadline:
            raise LauncherError(f"topics {sorted(topics)} on {bootstrap} have no leaders yet")
        time.sleep(0.2)


def wait_fully_replicated(bootstrap: str, *, timeout: float) -> None:
    """Wait until every partition of every topic has all its replicas in sync.

    Raises:
        LauncherError: Time ran out.
    """
    admin = admin_client(bootstrap)
    deadline = time.monotonic() + timeout
    lagging: list[str] = []
    while True:
        try:
            md = admin.list_topics(timeout=5.0)
            lagging = [
                f"{t.topic}[{p.id}]"
                for t in md.topics.values()
                for p in t.partitions.values()
                if set(p.isrs) != set(p.replicas)
            ]
        except KafkaException as e:
            lagging = [str(e)]
        if not lagging:
            return
        if time.monotonic() > deadline:
            raise LauncherError(
                f"{len(lagging)} partitions on {bootstrap} still lack replicas in sync, "
                f"e.g. {', '.join(lagging[:5])}"
            )
        time.sleep(0.25)


# --- commands -------------------------------------------------------------------------


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
    is started again with its data; one whose nodes all run is left alone. Nodes started
    here are stopped again if anything fails.

    Args:
        home: The deployment directory (created if needed).
        base_port: See :func:`plan`; only used for a new directory.
        telemetry_partitions: Partitions of ``reefer.telemetry``.
        position_partitions: Partitions of ``vessel.position``.
        timeout: Seconds to wait for the clusters to serve requests.

    Raises:
        ToolMissingError: ``java`` (or, on the first run, ``mvn``) is missing.
        LauncherError: Anything else went wrong.
    """
    started = time.monotonic()
    java = require_java()
    home = home.resolve()
    with _locked(home):
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
            _write_configs(dep)
            dep.save()
        elif not dep.lib.is_dir():
            dep.lib = ensure_jars()
        format_storage(dep, java)  # only nodes not formatted yet, e.g. after a failed up
        to_start = [b for b in dep.brokers if running_pid(b) is None]
        try:
            for b in to_start:
                _spawn(dep, b, java)
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
            # Leave nothing half-started behind (also on Ctrl-C).
            _stop(to_start, timeout=10.0)
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
    home = _existing(home)
    with _locked(home):
        dep = Deployment.load(home)
        stopped = _stop(dep.brokers, timeout)
        dep.save()
    return stopped


def status(home: Path, *, timeout: float = 5.0) -> list[BrokerStatus]:
    """The state of every node in ``home``.

    A node is ``up`` when its JVM runs and it serves requests as a registered member of
    its cluster; ``starting`` when the JVM runs but it does not (yet).

    Raises:
        StateMissingError: ``home`` holds no clusters.
    """
    dep = Deployment.load(_existing(home))
    result = []
    for cluster in dep.clusters.values():
        pids = {b.node_id: running_pid(b) for b in cluster.brokers}
        listening = [b for b in cluster.brokers if pids[b.node_id] and _port_open(b.port)]
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
    home = _existing(home)
    with _locked(home):
        dep = Deployment.load(home)
        b = dep.cluster(cluster).broker(node_id)
        pid = running_pid(b)
        if pid is None:
            log.info("%s is not running", b.name)
        else:
            log.info("killing %s (pid %d)", b.name, pid)
            _signal(pid, signal.SIGKILL)
            _wait_gone([b])
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
    home = _existing(home)
    with _locked(home):
        dep = Deployment.load(home)
        c = dep.cluster(cluster)
        b = c.broker(node_id)
        if running_pid(b) is not None:
            log.info("%s is already running (pid %s)", b.name, b.pid)
            return b
        if not dep.lib.is_dir():
            dep.lib = ensure_jars()
        _spawn(dep, b, java)
        dep.save()
        try:
            # Ask the restarted node itself: until a kill is noticed (the session
            # timeout), the others still list its old incarnation as alive.
            wait_for_brokers(b.address, [b.node_id], timeout=timeout, watch=[b])
            if wait_in_sync:
                wait_fully_replicated(
                    c.bootstrap, timeout=max(started + timeout - time.monotonic(), 5.0)
                )
        except BaseException:
            _stop([b], timeout=10.0)
            dep.save()
            raise
    log.info("%s is back in %.1f s", b.name, time.monotonic() - started)
    return b


def reset_topics(bootstrap: str, timeout: float = 60.0) -> None:
    """Delete and recreate the contract's topics, so that each test starts empty."""
    specs = contract_topics()
    admin = admin_client(bootstrap)
    names = [s.name for s in specs]
    existing = set(admin.list_topics(timeout=10).topics)
    doomed = [n for n in names if n in existing]
    if doomed:
        for fut in admin.delete_topics(doomed, operation_timeout=timeout).values():
            fut.result(timeout=timeout)
    deadline = time.monotonic() + timeout
    while set(names) & set(admin.list_topics(timeout=10).topics):
        if time.monotonic() > deadline:
            raise TimeoutError("contract topics were not deleted in time")
        time.sleep(0.2)
    while True:  # a just-deleted name can be refused for a moment
        try:
            create_topics(bootstrap, specs, timeout=timeout)
            return
        except LauncherError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
