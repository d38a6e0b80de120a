"""Helpers for the fleet source's tests on the shared shore cluster: topics, records, slots.

The shore cluster is shared with other tests, so every test makes topics of its own
vessels (random valid IMO numbers) and looks only at those; the source reads the
others too, which is what it does in production.
"""

from __future__ import annotations

import random
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from flows.config import KafkaSettings
from flows.edges.kafka.fleet_source import FleetKafkaSource, Snap

_RNG = random.Random()


def imo() -> str:
    """A random valid IMO number: six digits and their weighted check digit."""
    digits = [_RNG.randint(1, 9)] + [_RNG.randint(0, 9) for _ in range(5)]
    check = sum(d * w for d, w in zip(digits, range(7, 1, -1), strict=True)) % 10
    return "IMO" + "".join(map(str, digits)) + str(check)


def settings(brokers: str, stop_at_end: bool = False, timeout_s: float = 30.0) -> KafkaSettings:
    return KafkaSettings(brokers, timeout_s, stop_at_end, 5.0, "coldwake-fleet-test")


def create(brokers: str, topics: dict[str, int], config: dict[str, str] | None = None) -> None:
    """Create topics (name -> partitions); a partition may still lack a leader for a
    moment, which the source and the producer wait out."""
    admin = AdminClient({"bootstrap.servers": brokers})
    new = [NewTopic(t, n, 1, config=config or {}) for t, n in topics.items()]
    for future in admin.create_topics(new).values():
        future.result(timeout=30)


def delete(brokers: str, topics: list[str]) -> None:
    """Delete topics, so that the sources of later tests do not read them."""
    admin = AdminClient({"bootstrap.servers": brokers})
    for future in admin.delete_topics(topics, operation_timeout=30).values():
        future.result(timeout=30)


def produce(brokers: str, records: list[tuple[str, int, bytes | None]]) -> None:
    """Write `(topic, partition, value)` records in order; None is a tombstone."""
    producer = Producer({"bootstrap.servers": brokers, "acks": "all", "log_level": 3})
    for topic, partition, value in records:
        producer.produce(topic, value, key=b"k", partition=partition)
    assert producer.flush(30) == 0


def build(source: FleetKafkaSource, snapshots: dict[str, Snap] | None = None):
    return {
        name: source.build_part("fleet-in", name, (snapshots or {}).get(name))
        for name in source.list_parts()
    }


def drain(parts, topics: set[str], want: int, settle_s: float = 1.0, timeout: float = 60.0):
    """Poll every slot until `want` records of `topics` came, then `settle_s` longer:
    the records of `topics` in the order read, and the slots that stopped."""
    got: list[tuple[str, bytes]] = []
    stopped: set[str] = set()
    deadline = time.monotonic() + timeout
    settle_until: float | None = None
    while True:
        for name, part in parts.items():
            if name in stopped:
                continue
            try:
                batches = part.next_batch()
            except StopIteration:
                stopped.add(name)
                continue
            got += [(t, v) for batch in batches for t, v in batch if t in topics]
        now = time.monotonic()
        if len(got) >= want and settle_until is None:
            settle_until = now + settle_s
        if (settle_until is not None and now >= settle_until) or len(stopped) == len(parts):
            return got, stopped
        assert now < deadline, f"read {len(got)} of {want} records: {got}"
        time.sleep(0.01)


def close(parts) -> None:
    for part in parts.values():
        part.close()
