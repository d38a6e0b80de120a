"""MirrorMaker 2, one dedicated process per vessel, run ashore: its ``mm2.properties`` and JVM.

``org.apache.kafka.connect.mirror.MirrorMaker mm2.properties --clusters shore``
consumes from the vessel (across the link) and produces to the shore, as Kafka's
operations guide advises. Without ``--clusters shore`` it would also build a herder
that targets the vessel, and that one cannot start while the link is down.

What the generated config does, and why:

* Cluster alias = the vessel id without dots; ``DefaultReplicationPolicy``, so the shore
  topics are ``<alias>.reefer.alerts`` etc. and vessels never collide.
* Topics: every output of the vessel flow and ``vessel.position``; raw telemetry only
  when asked (``mirror_raw``), since the link is narrow. Topic configs are synced, so
  ``reefer.container-state`` is compacted ashore too.
* Exactly-once: ``shore.exactly.once.source.support = enabled`` and a ``read_committed``
  source consumer; the records and MirrorMaker's source offsets are committed ashore in
  one transaction, so a crash or ``kill -9`` neither loses nor repeats a record. It
  silently falls back to at-least-once when misconfigured: :func:`transactional_ids`
  reads the task producer's ``transactional.id`` from the log to prove it is on. The
  transaction timeout is 10 s so that a restarted MirrorMaker waits ~12 s, not ~60 s,
  for its dead predecessor's transaction to abort.
* Heartbeats, checkpoints and offset-syncs off: no consumer group on the vessel needs
  translating ashore. (With ``emit.offset-syncs.enabled = false`` no other
  ``offset-syncs…`` key may be set, or the source connector's config is invalid and
  nothing is copied.)
* Every internal topic with replication factor 1 (the shore has 1 node).
* Topic configs are synced except retention (and Kafka's default exclusions): how long
  the vessel keeps records is the vessel's disk budget; ashore the broker default (14
  days) applies, so a vessel that shortens its retention never deletes shore records.
* Topic refresh every 5 s and 10 s admin timeouts: a MirrorMaker started while the link
  is down comes up, waits, and starts copying within seconds of the link's return.
* Fetches of at most 256 KiB: on a 512 kbit/s link a fetch response must cross well
  within the consumer's 30 s request timeout, or the fetch times out, is sent again, and
  the backlog never moves (Kafka's default allows 50 MiB, ~13 min at that rate). Every
  client timeout of the vessel side is at most 30 s (``request.timeout.ms`` and
  ``default.api.timeout.ms`` of the consumer, connection setup, ``admin.timeout.ms``).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from deploy.kafka.admin import port_open
from deploy.kafka.errors import LauncherError
from deploy.kafka.jars import MIRROR_MAKER_MAIN, java_cmd
from deploy.kafka.layout import SHORE, Deployment
from deploy.kafka.logs import startup_errors
from deploy.kafka.parts import Mirror
from deploy.kafka.ports import HOST
from deploy.kafka.processes import running_pid, start_background
from flows.contract import OUTPUTS, POSITION, TELEMETRY

log: Final = logging.getLogger("deploy.kafka")

MIRROR_HEAP: Final = ("-Xms64m", "-Xmx256m")
POLICY: Final = "org.apache.kafka.connect.mirror.DefaultReplicationPolicy"
#: Seconds between MirrorMaker's looks for new topics on the vessel.
REFRESH_TOPICS_S: Final = 5
ADMIN_TIMEOUT_MS: Final = 10_000
TRANSACTION_TIMEOUT_MS: Final = 10_000
#: Topic configs not copied ashore: Kafka's default exclusions, plus retention.
CONFIGS_NOT_SYNCED: Final = (
    "follower.replication.throttled.replicas",
    "leader.replication.throttled.replicas",
    "message.timestamp.difference.max.ms",
    "message.timestamp.type",
    "unclean.leader.election.enable",
    "min.insync.replicas",
    "retention.ms",
    "retention.bytes",
)
#: Largest fetch response across the link (see the module docstring).
FETCH_MAX_BYTES: Final = 256 * 1024
#: The longest timeout of any vessel-side client: a longer black hole outlasts them all.
CLIENT_TIMEOUT_MS: Final = 30_000
_TASK_PRODUCER: Final = re.compile(
    r"\[Producer clientId=connector-producer-\S+, transactionalId=(\S+)\] "
    r"Instantiated a transactional producer"
)


def shore_topic(mirror: Mirror, topic: str) -> str:
    """Where ``DefaultReplicationPolicy`` puts a vessel topic ashore: ``<alias>.<topic>``."""
    return f"{mirror.alias}.{topic}"


def mirrored_topics(raw: bool) -> list[str]:
    """The vessel topics a MirrorMaker copies: outputs and positions, telemetry if ``raw``."""
    return [o.topic for o in OUTPUTS] + [POSITION] + ([TELEMETRY] if raw else [])


def mm2_properties(dep: Deployment, mirror: Mirror) -> dict[str, str]:
    """The ``mm2.properties`` of one vessel's MirrorMaker (see the module docstring)."""
    a = mirror.alias
    vessel = dep.cluster(mirror.vessel)
    topics = ",".join(re.escape(t) for t in mirrored_topics(mirror.raw))
    return {
        "clusters": f"{a}, {SHORE}",
        f"{a}.bootstrap.servers": vessel.link_bootstrap,
        f"{SHORE}.bootstrap.servers": dep.shore.bootstrap,
        f"{a}->{SHORE}.enabled": "true",
        f"{SHORE}->{a}.enabled": "false",
        f"{a}->{SHORE}.topics": topics,
        "replication.policy.class": POLICY,
        "tasks.max": "1",
        # Exactly-once, as the module docstring says.
        f"{SHORE}.exactly.once.source.support": "enabled",
        f"{a}.consumer.isolation.level": "read_committed",
        f"{a}.consumer.fetch.max.bytes": str(FETCH_MAX_BYTES),
        f"{a}.consumer.max.partition.fetch.bytes": str(FETCH_MAX_BYTES),
        f"{a}.consumer.request.timeout.ms": str(CLIENT_TIMEOUT_MS),
        f"{a}.consumer.default.api.timeout.ms": str(CLIENT_TIMEOUT_MS),
        f"{SHORE}.producer.transaction.timeout.ms": str(TRANSACTION_TIMEOUT_MS),
        f"{SHORE}.producer.compression.type": "lz4",
        "dedicated.mode.enable.internal.rest": "true",
        "listeners": f"http://{HOST}:{mirror.rest_port}",
        # Only the copy itself.
        "emit.heartbeats.enabled": "false",
        "emit.checkpoints.enabled": "false",
        "emit.offset-syncs.enabled": "false",
        "sync.group.offsets.enabled": "false",
        "sync.topic.acls.enabled": "false",
        "sync.topic.configs.enabled": "true",
        "sync.topic.configs.interval.seconds": "30",
        "config.properties.exclude": ",".join(re.escape(k) for k in CONFIGS_NOT_SYNCED),
        "refresh.topics.interval.seconds": str(REFRESH_TOPICS_S),
        "refresh.groups.interval.seconds": "600",
        "admin.timeout.ms": str(ADMIN_TIMEOUT_MS),
        # A 1-node shore.
        "replication.factor": "1",
        "checkpoints.topic.replication.factor": "1",
        "heartbeats.topic.replication.factor": "1",
        "config.storage.replication.factor": "1",
        "offset.storage.replication.factor": "1",
        "status.storage.replication.factor": "1",
    }


def write_mm2_properties(path: Path, props: Mapping[str, str]) -> None:
    """Write a Java properties file, escaping backslashes (topic regexes have them)."""
    path.write_text("".join(f"{k} = {v.replace(chr(92), chr(92) * 2)}\n" for k, v in props.items()))


def start_mirror(dep: Deployment, mirror: Mirror, java: str) -> None:
    """Write the vessel's ``mm2.properties`` and start its MirrorMaker; record the PID."""
    mirror.home.mkdir(parents=True, exist_ok=True)
    write_mm2_properties(mirror.properties, mm2_properties(dep, mirror))
    cmd = java_cmd(
        MIRROR_MAKER_MAIN,
        [str(mirror.properties), "--clusters", SHORE],
        lib=dep.lib,
        java=java,
        heap=MIRROR_HEAP,
        log_dir=mirror.home,
        log_config=dep.log_config,
    )
    log.info("starting %s (%s -> %s)", mirror.name, mirror.vessel, SHORE)
    mirror.pid = start_background(cmd, cwd=mirror.home, console_log=mirror.console_log)


def wait_mirror_serving(mirror: Mirror, timeout: float) -> None:
    """Wait until MirrorMaker's REST server listens (its config is read and it runs).

    It does not wait for the vessel: a MirrorMaker whose link is down is up and waiting.

    Raises:
        LauncherError: It exited, or time ran out.
    """
    deadline = time.monotonic() + timeout
    while not port_open(mirror.rest_port):
        if running_pid(mirror) is None:
            raise LauncherError(
                f"{mirror.name} exited while starting; "
                f"{startup_errors(mirror.server_log, mirror.console_log)}"
            )
        if time.monotonic() > deadline:
            raise LauncherError(
                f"{mirror.name} not serving after {timeout:.0f} s; see {mirror.server_log}"
            )
        time.sleep(0.2)


def transactional_ids(mirror: Mirror) -> list[str]:
    """The ``transactional.id`` of every task producer its log shows since its last start.

    Empty until a task has started (it needs the vessel) or when exactly-once is off:
    then the task producers are not transactional (only the herder's own config-topic
    producer is, so that one does not count).
    """
    try:
        text = mirror.server_log.read_text(errors="replace")
    except OSError:
        return []
    start = text.rfind("Kafka MirrorMaker starting")
    return sorted(set(_TASK_PRODUCER.findall(text[max(start, 0) :])))
