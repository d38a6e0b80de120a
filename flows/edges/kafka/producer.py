"""Produce a JSONL file into the contract's input topics (the simulator's `--kafka`)."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
from confluent_kafka import Producer

from flows.contract import INPUT_TOPICS, POSITION, TELEMETRY
from flows.edges.kafka.admin import topic_partitions
from flows.edges.kafka.errors import KafkaUnavailableError
from flows.edges.kafka.sink import Deliveries


def topic_and_key(line: bytes) -> tuple[str, bytes]:
    """Where a record goes: positions by vessel, everything else as telemetry by container.

    Malformed lines go to the telemetry topic (that is where a broken sensor gateway
    would send them), keyed by whatever container id can be read, else unkeyed.
    """
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return TELEMETRY, b""
    if type(obj) is not dict:
        return TELEMETRY, b""
    if obj.get("type") == POSITION:
        return POSITION, str(obj.get("vessel_id", "")).encode()
    return TELEMETRY, str(obj.get("container_id", "")).encode()


def produce_file(
    path: Path, brokers: str, rate: float = 0.0, timeout_s: float = 60.0
) -> tuple[int, float]:
    """Produce a JSONL file's records in file order; return (records, seconds).

    Idempotent, acks=all, Java-compatible key hashing (murmur2) so that every client
    puts a container on the same partition. `rate` > 0 paces the records per second.
    """
    topic_partitions(brokers, INPUT_TOPICS, timeout_s)  # fail fast, clearly
    deliveries = Deliveries()
    producer = Producer(
        {
            "bootstrap.servers": brokers,
            "enable.idempotence": True,
            "acks": "all",
            "log_level": 3,
            "partitioner": "murmur2_random",
            "linger.ms": 50,
            "compression.type": "lz4",
            "batch.size": 1 << 20,
            "queue.buffering.max.messages": 500_000,
            "delivery.timeout.ms": int(timeout_s * 1000),
            **deliveries.config(),
        }
    )
    started = time.monotonic()
    sent = 0
    with path.open("rb") as f:
        for raw in f:
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            topic, key = topic_and_key(line)
            deliveries.produce(producer, topic, line, key or None)
            sent += 1
            if rate > 0 and sent % 100 == 0:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
            if sent % 10_000 == 0:
                producer.poll(0)
    remaining = producer.flush(timeout_s)
    if remaining or deliveries.failure:
        raise KafkaUnavailableError(
            f"producing {path} to {brokers}: {remaining} records unacknowledged, "
            f"first failure: {deliveries.failure}"
        )
    return sent, time.monotonic() - started
