"""MirrorMaker 2's own topics ashore: how far it has copied, and whether its task runs.

* ``mm2-offsets.<alias>.internal``: keyed
  ``["MirrorSourceConnector",{"cluster":ALIAS,"partition":P,"topic":T}]``, valued
  ``{"offset":N}``, N being the last vessel offset copied. With exactly-once these
  records are written in the same transactions as the copies, so they are read
  ``read_committed``: an aborted copy never counts.
* ``mm2-status.<alias>.internal``: keyed ``status-task-MirrorSourceConnector-0`` (and
  ``status-connector-…``), valued ``{"state":"RUNNING"|"FAILED"|…,"trace":…}``. A failed
  Connect task is not restarted by MirrorMaker itself; only a restart of the process
  brings it back.

In both, the latest record of a key wins (the topics are compacted).
"""

from __future__ import annotations

import json
import time
from typing import Final

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from deploy.kafka.errors import LauncherError
from deploy.kafka.parts import Cluster, Mirror

READ_TIMEOUT_S: Final = 10.0
SOURCE_CONNECTOR: Final = "MirrorSourceConnector"


def latest(shore: Cluster, topic: str) -> dict[bytes, bytes | None]:
    """The latest committed value of every key of ``topic`` (empty if there is no topic).

    Raises:
        LauncherError: The shore is unreachable or did not answer in time.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": shore.bootstrap,
            "group.id": "coldwake-mirror-status",  # assign() only: no membership, no commits
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "socket.connection.setup.timeout.ms": 5000,
            "log_level": 3,
        }
    )
    found: dict[bytes, bytes | None] = {}
    try:
        md = consumer.list_topics(topic, timeout=READ_TIMEOUT_S).topics[topic]
        if md.error is not None:
            if md.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                return found  # this MirrorMaker has not started yet
            raise KafkaException(md.error)
        consumer.assign([TopicPartition(topic, p, 0) for p in md.partitions])
        pending = set(md.partitions)
        deadline = time.monotonic() + READ_TIMEOUT_S
        while pending:
            if time.monotonic() > deadline:
                raise LauncherError(f"{topic} on {shore.bootstrap} not read to its end in time")
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    pending.discard(msg.partition())
                    continue
                raise KafkaException(err)
            found[msg.key() or b""] = msg.value()
    except KafkaException as e:
        raise LauncherError(f"cannot read {topic} on {shore.bootstrap}: {e}") from e
    finally:
        consumer.close()
    return found


def copied_offsets(shore: Cluster, mirror: Mirror) -> dict[tuple[str, int], int]:
    """``(topic, partition) -> next vessel offset to copy``, from MirrorMaker's offsets ashore.

    Raises:
        LauncherError: The shore is unreachable or did not answer in time.
    """
    found: dict[tuple[str, int], int] = {}
    for key, value in latest(shore, mirror.offsets_topic).items():
        try:
            connector, part = json.loads(key or b"null")
            if connector != SOURCE_CONNECTOR or part["cluster"] != mirror.alias:
                continue
            tp = (str(part["topic"]), int(part["partition"]))
            if value is not None:
                found[tp] = int(json.loads(value)["offset"]) + 1
        except (ValueError, TypeError, KeyError):
            continue  # not a source offset
    return found


def task_states(shore: Cluster, mirror: Mirror) -> dict[str, tuple[str, str | None]]:
    """``task -> (state, first line of its error)`` of the source connector's tasks.

    Raises:
        LauncherError: The shore is unreachable or did not answer in time.
    """
    prefix = f"status-task-{SOURCE_CONNECTOR}-".encode()
    states: dict[str, tuple[str, str | None]] = {}
    for key, value in latest(shore, mirror.status_topic).items():
        if not key.startswith(prefix) or value is None:
            continue
        try:
            doc = json.loads(value)
            trace = doc.get("trace")
            first = str(trace).strip().splitlines()[0] if trace else None
            states[key.decode()[len("status-task-") :]] = (str(doc["state"]), first)
        except (ValueError, TypeError, KeyError, IndexError):
            continue
    return states
