"""A compacted topic as a table: read every key's latest value, publish rows back.

What `state.restore` needs from a KTable's changelog. Reading stops at the end each
partition had when the read began; a tombstone (a null value) deletes its key.
Publishing uses the same partitioner as the flows' producers (Java's murmur2), so a
row lands on its key's partition, behind the records it supersedes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from flows.edges.kafka.errors import KafkaUnavailableError
from flows.edges.kafka.sink import Deliveries

_BATCH: Final = 10_000


class MissingTopicError(KafkaUnavailableError):
    """The brokers answered, but the topic does not exist."""


@dataclass(frozen=True, slots=True)
class Compacted:
    """A topic read to its end.

    Attributes:
        rows: key -> latest value, keys whose latest record is a tombstone left out.
        records: Records read (every version of every key, tombstones included).
    """

    rows: dict[bytes, bytes]
    records: int


def read_compacted(brokers: str, topic: str, timeout_s: float) -> Compacted:
    """Read `topic` from its log start to the end it has now.

    Raises:
        MissingTopicError: The topic does not exist.
        KafkaUnavailableError: No broker answered within `timeout_s`, or the read
            made no progress for that long.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": "coldwake-restore",  # assign() only: no membership, no commits
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "socket.connection.setup.timeout.ms": int(timeout_s * 1000),
            "log_level": 0,  # the caller says what went wrong, in one line
        }
    )
    try:
        ends = _ends(consumer, brokers, topic, timeout_s)
        return _read(consumer, brokers, topic, ends, timeout_s)
    finally:
        consumer.close()


def _ends(consumer: Consumer, brokers: str, topic: str, timeout_s: float) -> dict[int, int]:
    """Partition -> end offset, for the partitions that hold records."""
    try:
        meta = consumer.list_topics(timeout=timeout_s).topics.get(topic)
    except KafkaException as exc:
        raise KafkaUnavailableError(_down(brokers, timeout_s, exc)) from None
    if meta is None or meta.error is not None:
        raise MissingTopicError(f"{topic} does not exist on {brokers}")
    ends: dict[int, int] = {}
    for partition in sorted(meta.partitions):
        try:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout_s
            )
        except KafkaException as exc:
            raise KafkaUnavailableError(_down(brokers, timeout_s, exc)) from None
        if high > low:
            ends[partition] = high
    # Start at each log start: compaction may have removed the first offsets.
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
    return ends


def _read(
    consumer: Consumer, brokers: str, topic: str, ends: dict[int, int], timeout_s: float
) -> Compacted:
    rows: dict[bytes, bytes] = {}
    records = 0
    pending = set(ends)
    deadline = time.monotonic() + timeout_s
    while pending:
        batch = consumer.consume(_BATCH, 0.5)
        if not batch:
            if time.monotonic() > deadline:
                raise KafkaUnavailableError(
                    f"reading {topic} on {brokers} made no progress for {timeout_s:g} s "
                    f"(partitions {sorted(pending)} not read to their end)"
                )
            continue
        deadline = time.monotonic() + timeout_s
        for msg in batch:
            partition, err = msg.partition(), msg.error()
            if partition not in pending:
                continue  # records written since the read began
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    raise KafkaUnavailableError(f"reading {topic} on {brokers}: {err.str()}")
                pending.discard(partition)
                continue
            offset = msg.offset()
            if offset is None or offset >= ends[partition]:
                pending.discard(partition)
                continue
            records += 1
            key, value = msg.key(), msg.value()
            if key is None:
                continue  # not a row: a compacted topic drops unkeyed records too
            if value is None:
                rows.pop(key, None)
            else:
                rows[key] = value
            if offset == ends[partition] - 1:
                pending.discard(partition)
    return Compacted(rows, records)


def publish(
    brokers: str, records: Iterable[tuple[str, bytes, bytes | None]], timeout_s: float
) -> int:
    """Produce `(topic, key, value or None)` records, idempotent and acks=all; return the count.

    Raises:
        KafkaUnavailableError: A record was not acknowledged within `timeout_s`.
    """
    deliveries = Deliveries()
    producer = Producer(
        {
            "bootstrap.servers": brokers,
            "enable.idempotence": True,
            "acks": "all",
            "partitioner": "murmur2_random",  # as the flows' producers: the key's partition
            "linger.ms": 20,
            "compression.type": "lz4",
            "delivery.timeout.ms": int(timeout_s * 1000),
            "socket.connection.setup.timeout.ms": int(timeout_s * 1000),
            "log_level": 0,
            **deliveries.config(),
        }
    )
    sent = 0
    for topic, key, value in records:
        while True:
            try:
                producer.produce(topic, value, key)
                break
            except BufferError:  # the local queue is full: wait for acks
                producer.poll(0.05)
        sent += 1
    remaining = producer.flush(timeout_s)
    if remaining or deliveries.failure is not None:
        raise KafkaUnavailableError(
            f"{remaining} of {sent} records to {brokers} unacknowledged after {timeout_s:g} s"
            + (f", first failure: {deliveries.failure}" if deliveries.failure else "")
        )
    return sent


def _down(brokers: str, timeout_s: float, exc: KafkaException) -> str:
    return f"no Kafka broker answered at {brokers} within {timeout_s:g} s ({exc.args[0]})"
