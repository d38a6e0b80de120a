"""The fleet tables' changelogs: one compacted `fleet.*` topic per table, on the shore cluster.

A row is published under its key (a tombstone when it is deleted), so the topic
compacts to the table. Keys are partitioned like Java clients do (`murmur2_random`),
so any Kafka Streams or Java consumer co-partitions with it and a key always lands
on one partition. Publishing loses nothing: an idempotent, acks=all producer whose
failed deliveries stop the run at the next `flush` (like the vessel's `KafkaSink`).
"""

from __future__ import annotations

import time
from typing import Final

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from flows.config import KafkaSettings
from flows.edges.kafka.errors import KafkaUnavailableError, stop
from flows.edges.kafka.sink import Deliveries, output_producer
from flows.fleet_core.names import TABLES

#: Replicas of a fleet topic, capped by the cluster's size.
REPLICATION_FACTOR: Final = 3
#: With acks=all, a write needs this many replicas in sync (capped by the replicas).
MIN_INSYNC_REPLICAS: Final = 2
_POLL_EVERY: Final = 1000


def ensure_fleet_topics(
    brokers: str, timeout_s: float, partitions: int = 4, *, fresh: bool = False
) -> None:
    """Create the `fleet.*` topics that are missing, compacted; leave existing ones alone.

    With `fresh` (a run that starts afresh, not from a snapshot), delete them first:
    the fresh run's tables start empty, and so must their changelogs, or rows of an
    earlier run would stay in them for ever.

    Raises:
        KafkaUnavailableError: no broker answered, or a topic could not be created
            (one line naming it and why).
    """
    admin = AdminClient(
        {
            "bootstrap.servers": brokers,
            "log_level": 0,  # the one line below says it all
            "socket.connection.setup.timeout.ms": int(timeout_s * 1000),
        }
    )
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise KafkaUnavailableError(
            f"no Kafka broker answered at {brokers} within {timeout_s:g} s ({exc.args[0]}); "
            "check COLDWAKE_FLEET_BROKERS and that the shore cluster is up, or raise "
            "COLDWAKE_KAFKA_TIMEOUT_S"
        ) from None
    if fresh:
        _delete([t.topic for t in TABLES if t.topic in metadata.topics], admin, timeout_s)
        metadata = admin.list_topics(timeout=timeout_s)
    missing = [t.topic for t in TABLES if t.topic not in metadata.topics]
    if not missing:
        return
    replicas = min(REPLICATION_FACTOR, len(metadata.brokers))
    config = {
        "cleanup.policy": "compact",
        "min.insync.replicas": str(min(MIN_INSYNC_REPLICAS, replicas)),
    }
    futures = admin.create_topics(
        [NewTopic(name, partitions, replicas, config=config) for name in missing],
        operation_timeout=timeout_s,
        request_timeout=timeout_s,
    )
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            # Another fleet process may have created it a moment ago: that is success.
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise KafkaUnavailableError(
                    f"could not create {name} on {brokers}: {exc.args[0].str()}"
                ) from None
        except TimeoutError:
            raise KafkaUnavailableError(
                f"{name} was not created on {brokers} within {timeout_s:g} s; check the "
                "shore cluster, or raise COLDWAKE_KAFKA_TIMEOUT_S"
            ) from None
    _wait_listed(missing, admin, timeout_s)


def _wait_listed(topics: list[str], admin: AdminClient, timeout_s: float) -> None:
    """Wait until every partition of new topics has a leader: until then a client may
    still be told they do not exist (metadata reaches the brokers a moment later)."""
    deadline = time.monotonic() + timeout_s
    while True:
        listed = admin.list_topics(timeout=timeout_s).topics
        if all(
            t in listed
            and listed[t].partitions
            and all(p.leader >= 0 for p in listed[t].partitions.values())
            for t in topics
        ):
            return
        if time.monotonic() > deadline:
            raise KafkaUnavailableError(
                f"{', '.join(topics)} not ready {timeout_s:g} s after their creation; "
                "check the shore cluster, or raise COLDWAKE_KAFKA_TIMEOUT_S"
            )
        time.sleep(0.1)


def _delete(topics: list[str], admin: AdminClient, timeout_s: float) -> None:
    """Delete topics and wait until the cluster no longer lists them."""
    if not topics:
        return
    for name, future in admin.delete_topics(topics, operation_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise KafkaUnavailableError(
                    f"could not delete {name} to start afresh: {exc.args[0].str()}"
                ) from None
    deadline = time.monotonic() + timeout_s
    while set(topics) & set(admin.list_topics(timeout=timeout_s).topics):
        if time.monotonic() > deadline:
            raise KafkaUnavailableError(
                f"{', '.join(topics)} still listed {timeout_s:g} s after their deletion; "
                "check the shore cluster, or raise COLDWAKE_KAFKA_TIMEOUT_S"
            )
        time.sleep(0.1)


class KafkaChangelog:
    """Publishes fleet table rows to their compacted topics (`ensure_fleet_topics` first)."""

    def __init__(self, cfg: KafkaSettings) -> None:
        self._timeout = cfg.timeout_s
        self._topics = {t.name: t.topic for t in TABLES}
        self._deliveries = Deliveries()
        self._queued = 0
        self._closed = False
        # Java's partitioner: a key's partition is the same from any client.
        self._producer = output_producer(cfg, self._deliveries, partitioner="murmur2_random")

    def publish(self, table: str, key: str, value: bytes | None) -> None:
        """Queue one row of `table` (None: a tombstone that deletes `key`)."""
        Deliveries.produce(self._producer, self._topics[table], value, key.encode())
        self._queued += 1
        if self._queued % _POLL_EVERY == 0:
            # Serve failure callbacks now and then, not once per row.
            self._producer.poll(0)
            self._check()

    def flush(self) -> None:
        """Wait for every queued row's acknowledgement; stop the run if one fails."""
        remaining = self._producer.flush(self._timeout)
        self._check()
        if remaining:
            stop(
                f"{remaining} fleet table rows unacknowledged after {self._timeout:g} s; "
                "the run stops here and, restarted with -r DIR, replays them from its last "
                "snapshot; check the shore cluster, or raise COLDWAKE_KAFKA_TIMEOUT_S"
            )

    def close(self) -> None:
        """Flush what is queued (rows are never dropped at the end of a run), then let go."""
        if self._closed:
            return
        self.flush()
        self._producer.close()  # nothing is left to wait for: this returns at once
        self._closed = True

    def _check(self) -> None:
        if self._deliveries.failure is not None:
            stop(
                f"delivery failed ({self._deliveries.failure}); the run stops here and, "
                "restarted with -r DIR, replays it from its last snapshot; check the shore "
                "cluster, or raise COLDWAKE_KAFKA_TIMEOUT_S"
            )
