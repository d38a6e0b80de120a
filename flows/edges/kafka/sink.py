"""The contract's output topics: an idempotent, acks=all producer that loses nothing.

Bytewax's own KafkaSink sets no delivery callback, so a failed delivery is lost
silently. Here every record reports to a callback, each snapshot waits (with a
timeout) for all acknowledgements, and any failure stops the run so that recovery
replays the epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from confluent_kafka import Producer

from flows.config import KafkaSettings
from flows.contract import OUTPUTS, Keyed
from flows.edges.kafka.admin import topic_partitions
from flows.edges.kafka.errors import stop


@dataclass(slots=True)
class Deliveries:
    """Remembers the first failed delivery of a producer."""

    failure: str | None = None

    def on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None and self.failure is None:
            self.failure = f"{msg.topic()}: {err}"

    def config(self) -> dict[str, Any]:
        """Producer settings that report failed deliveries, and only those, here.

        A callback per delivered record would cost a Python call for every output
        record; failures are all that matter, and none is missed.
        """
        return {"on_delivery": self.on_delivery, "delivery.report.only.error": True}

    @staticmethod
    def produce(
        producer: Producer, topic: str, value: bytes | None, key: bytes | str | None
    ) -> None:
        """Queue one record; a full local queue waits for acks."""
        while True:
            try:
                producer.produce(topic, value, key)
                return
            except BufferError:
                producer.poll(0.05)


def output_producer(cfg: KafkaSettings, deliveries: Deliveries, **extra: Any) -> Producer:
    """An idempotent, acks=all producer of outputs that reports failed deliveries to
    `deliveries`; `extra` adds or overrides librdkafka settings."""
    return Producer(
        {
            "bootstrap.servers": cfg.brokers,
            "enable.idempotence": True,
            "acks": "all",
            # Transient warnings (e.g. "coordinator load in progress" at start) are retried
            # by the client; anything that loses data raises from the delivery callback.
            "log_level": 3,
            "linger.ms": 20,
            "compression.type": "lz4",
            # A bounded queue is backpressure (produce() waits for acks) instead of
            # hundreds of MB of outputs buffered in front of a slow cluster.
            "queue.buffering.max.kbytes": 16384,
            "queue.buffering.max.messages": 50_000,
            # Give up on a message only after the flush timeout, never silently.
            "delivery.timeout.ms": int(cfg.timeout_s * 1000),
            "socket.connection.setup.timeout.ms": int(cfg.timeout_s * 1000),
            **deliveries.config(),
            **extra,
        }
    )


class _TopicWriter(StatefulSinkPartition[list[Keyed], None]):
    """One output topic's producer (one sink partition per topic)."""

    def __init__(self, cfg: KafkaSettings, topic: str) -> None:
        self._topic, self._timeout = topic, cfg.timeout_s
        self._deliveries = Deliveries()
        self._producer = output_producer(cfg, self._deliveries)

    def write_batch(self, values: list[list[Keyed]]) -> None:
        produce, producer, topic = self._deliveries.produce, self._producer, self._topic
        for records in values:
            for key, value in records:
                produce(producer, topic, value, key)
            producer.poll(0)
        self._check()

    def snapshot(self) -> None:
        # An epoch's snapshot commits only once all its records are acknowledged.
        remaining = self._producer.flush(self._timeout)
        self._check()
        if remaining:
            stop(
                f"{remaining} records to {self._topic} unacknowledged after {self._timeout:g} s; "
                "the run stops here and, restarted with -r DIR, replays them from its last "
                "snapshot; check the cluster, or raise COLDWAKE_KAFKA_TIMEOUT_S"
            )

    def close(self) -> None:
        self.snapshot()

    def _check(self) -> None:
        if self._deliveries.failure is not None:
            stop(
                f"delivery failed ({self._deliveries.failure}); the run stops here and, "
                "restarted with -r DIR, replays it from its last snapshot; check the cluster, "
                "or raise COLDWAKE_KAFKA_TIMEOUT_S"
            )


class KafkaSink(FixedPartitionedSink[list[Keyed], None]):
    """Every output to its contract topic; items are `(output name, [(key, value), ...])`."""

    def __init__(self, cfg: KafkaSettings) -> None:
        self._cfg = cfg
        self._topics = {o.name: o.topic for o in OUTPUTS}
        self._parts = sorted(self._topics)
        self._checked = False

    def list_parts(self) -> list[str]:
        if not self._checked:
            topics = tuple(self._topics.values())
            topic_partitions(self._cfg.brokers, topics, self._cfg.timeout_s)
            self._checked = True
        return self._parts

    def part_fn(self, item_key: str) -> int:
        return self._parts.index(item_key)

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _TopicWriter:
        return _TopicWriter(self._cfg, self._topics[for_part])
