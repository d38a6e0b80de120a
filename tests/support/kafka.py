"""Kafka helpers for tests: empty contract topics, reading and producing, no JVM left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from deploy.kafka.admin import admin_client, create_topics
from deploy.kafka.errors import LauncherError
from deploy.kafka.processes import pids_naming
from deploy.kafka.topics import contract_topics


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


def kill_strays(home: Path, timeout: float = 10.0) -> list[int]:
    """SIGKILL every process still running from the deployment in ``home``; return their PIDs.

    A backstop after ``down``: it finds JVMs by the config paths on their command lines,
    whatever ``cluster.json`` recorded, so a launcher bug cannot leave one running.
    """
    strays = pids_naming(home)
    for pid in strays:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while set(strays) & set(pids_naming(home)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return strays


Partitions = dict[int, list[tuple[bytes | None, bytes | None]]]


def topic_records(
    bootstrap: str, topic: str, *, read_committed: bool = False, timeout: float = 60.0
) -> Partitions:
    """Every record of ``topic`` from its log start to its end: ``partition -> [(key, value)]``."""
    return topics_records(bootstrap, [topic], read_committed=read_committed, timeout=timeout)[topic]


def topics_records(
    bootstrap: str, topics: list[str], *, read_committed: bool = False, timeout: float = 60.0
) -> dict[str, Partitions]:
    """Every record of each topic from its log start to its end, with one consumer.

    Reads each partition to its end (``read_committed``: to its last stable offset), so
    transaction markers and aborted records, which hold offsets, never make it wait.

    Raises:
        KafkaException: A topic is missing or a read failed.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "coldwake-test-reader",  # assign() only: no membership, no commits
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed" if read_committed else "read_uncommitted",
            "log_level": 3,
        }
    )
    try:
        md = consumer.list_topics(timeout=10).topics
        out: dict[str, Partitions] = {}
        for topic in topics:
            meta = md.get(topic)
            if meta is None or meta.error is not None:
                raise KafkaException(f"{topic} on {bootstrap}: {meta and meta.error}")
            out[topic] = {p: [] for p in meta.partitions}
        pending = {(t, p) for t, parts in out.items() for p in parts}
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in pending])
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{bootstrap}: {sorted(pending)} not read to the end in time")
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            name, partition, err = msg.topic(), msg.partition(), msg.error()
            assert name is not None and partition is not None
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    raise KafkaException(err)
                pending.discard((name, partition))
                continue
            out[name][partition].append((msg.key(), msg.value()))
        return out
    finally:
        consumer.close()


def produce(bootstrap: str, records: Iterable[tuple[str, bytes, bytes]]) -> int:
    """Produce ``(topic, key, value)`` records as the vessel's producers do; return the count.

    Idempotent, ``acks=all``, lz4-compressed batches (what crosses the link), keys hashed
    like Java clients. Fails unless every record is acknowledged.
    """
    failures: list[KafkaError] = []

    def report(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failures.append(err)

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": "lz4",
            "linger.ms": 20,
            "partitioner": "murmur2_random",
            "message.timeout.ms": 60_000,
            "log_level": 3,
        }
    )
    count = 0
    for topic, key, value in records:
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.1)
        count += 1
        if count % 5000 == 0:
            producer.poll(0)
    assert producer.flush(90) == 0, "records still unacknowledged after 90 s"
    assert not failures, f"{len(failures)} records failed, first: {failures[0]}"
    return count
