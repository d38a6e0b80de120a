"""Kafka edges that fail loudly: a bounded-time input and an output that loses nothing.

Bytewax's own connectors hang on an unreachable broker (`list_topics()` without a
timeout) and drop failed deliveries silently; these do neither. The input keeps its
offsets in Bytewax snapshots (no consumer-group commits), so a resumed run rereads
exactly what the last snapshot had not covered.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, NoReturn

import orjson
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer
from confluent_kafka import TopicPartition as KafkaPartition
from confluent_kafka.admin import AdminClient

from flows.config import KafkaSettings, Settings
from flows.detect import Outputs
from flows.events import POSITION, TELEMETRY, DeadLetter, parse
from flows.watermark import Batch, PartState

_EMPTY_POLL_PAUSE: Final = timedelta(milliseconds=10)

#: Input topics in tie-break order: a fix and a reading with the same time take the fix first.
INPUT_TOPICS: Final = (POSITION, TELEMETRY)

#: Outputs name -> topic.
OUTPUT_TOPICS: Final = {
    "alerts": "reefer.alerts",
    "windows": "reefer.windows",
    "late": "reefer.late",
    "dlq": "reefer.dlq",
    "rows": "reefer.container-state",
}


class KafkaUnavailableError(RuntimeError):
    """Brokers could not be reached, a topic is missing, or a delivery failed."""


def _stop(message: str) -> NoReturn:
    """Say why the run stops, then stop it.

    Raised inside a running dataflow, an exception reaches the user through Bytewax,
    which may abort with a Rust panic that drops its text: so print it first.
    """
    print(f"coldwake: error: {message}", file=sys.stderr, flush=True)
    raise KafkaUnavailableError(message)


def topic_partitions(brokers: str, topics: tuple[str, ...], timeout_s: float) -> list[str]:
    """Partition names like `reefer.telemetry[3]` of existing topics, within a timeout."""
    # The client's own connection-refused lines would bury the one line said below.
    admin = AdminClient(
        {
            "bootstrap.servers": brokers,
            "log_level": 0,
            "socket.connection.setup.timeout.ms": int(timeout_s * 1000),
        }
    )
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise KafkaUnavailableError(
            f"no Kafka broker answered at {brokers} within {timeout_s:g} s ({exc.args[0]}); "
            "check COLDWAKE_BROKERS and that the cluster is up, or raise COLDWAKE_KAFKA_TIMEOUT_S"
        ) from None
    names = []
    for topic in topics:
        info = metadata.topics.get(topic)
        if info is None or info.error is not None:
            raise KafkaUnavailableError(
                f"topic {topic!r} does not exist on {brokers}; create it (python -m deploy.kafka "
                "up creates the contract's topics) — Coldwake never auto-creates topics"
            )
        names += [f"{topic}[{p}]" for p in sorted(info.partitions)]
    return names


def _split(name: str) -> tuple[str, int]:
    topic, _, rest = name.partition("[")
    return topic, int(rest.rstrip("]"))


class _KafkaPartition(StatefulSourcePartition[Batch, int]):
    def __init__(
        self,
        cfg: KafkaSettings,
        name: str,
        index: int,
        parts: tuple[str, ...],
        batch_size: int,
        resume: int | None,
    ) -> None:
        self._topic, self._partition = _split(name)
        self._index, self._parts, self._cfg, self._batch = index, parts, cfg, batch_size
        self._label = f"{name}@"
        self._consumer = Consumer(
            {
                "bootstrap.servers": cfg.brokers,
                "group.id": cfg.group_id,
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "socket.connection.setup.timeout.ms": int(cfg.timeout_s * 1000),
                # One consumer per partition: librdkafka's default 64 MB prefetch each
                # would take most of an edge box's memory for no gain in throughput.
                "queued.max.messages.kbytes": 2048,
                "fetch.max.bytes": 8 << 20,
                "log_level": 3,
                "error_cb": self._on_error,
            }
        )
        self._down_since: float | None = None
        self._busy = True
        self._next = OFFSET_BEGINNING if resume is None else resume
        self._end: int | None = None
        if cfg.stop_at_end:
            tp = KafkaPartition(self._topic, self._partition)
            try:
                _, self._end = self._consumer.get_watermark_offsets(tp, timeout=cfg.timeout_s)
            except KafkaException as exc:
                raise KafkaUnavailableError(
                    f"could not read the end offset of {name} within {cfg.timeout_s:g} s: {exc}"
                ) from None
        self._assigned = KafkaPartition(self._topic, self._partition)
        self._consumer.assign([KafkaPartition(self._topic, self._partition, self._next)])
        self._quiet_since = self._idle_since = time.monotonic()
        self._idle_s = cfg.idle_s
        self._state = PartState.ACTIVE

    def _on_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._ALL_BROKERS_DOWN and self._down_since is None:
            self._down_since = time.monotonic()

    def _check_brokers(self) -> None:
        """Stop the run once the cluster has been unreachable for the timeout.

        The client retries forever on its own; a flow that silently waits on a dead
        cluster is worse than one that stops and resumes from its snapshot later.
        """
        if self._down_since is None or time.monotonic() - self._down_since < self._cfg.timeout_s:
            return
        try:  # the cluster may be back while this partition has nothing to read
            self._consumer.list_topics(self._topic, timeout=1.0)
            self._down_since = None
        except KafkaException:
            _stop(
                f"no broker of {self._cfg.brokers} has answered for "
                f"{self._cfg.timeout_s:g} s while reading {self._topic}[{self._partition}]; "
                "the run stops here and resumes from its last snapshot once restarted "
                "(-r DIR); check the cluster, or raise COLDWAKE_KAFKA_TIMEOUT_S"
            )

    def next_batch(self) -> list[Batch]:
        if self._state is PartState.ENDED:
            raise StopIteration
        if self._end is not None and (self._next >= self._end or self._end == 0):
            self._state = PartState.ENDED
            return [Batch(self._index, self._parts, [], PartState.ENDED)]
        # Never wait here: Bytewax polls every partition of the worker in turn, and a
        # wait on an empty one would stall all the others.
        messages = self._consumer.consume(self._batch, 0)
        records = []
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                _stop(f"reading {self._topic}[{self._partition}]: {err}; the run stops here")
            offset = msg.offset()
            assert offset is not None  # only error events lack an offset
            if self._end is not None and offset >= self._end:
                break
            record = parse(msg.value() or b"", self._label)
            if type(record) is DeadLetter:  # spelled out only where it is needed
                record.source = f"{self._label}{offset}"
            records.append(record)
            self._next = offset + 1
        now = time.monotonic()
        self._busy = bool(messages)
        if messages:
            self._down_since = None
        else:
            self._check_brokers()
        if records:
            # Back after a real pause (several idle timeouts): the others were likely
            # paused too, and their backlog must merge with this one in order.
            paused = self._state is PartState.IDLE and now - self._idle_since >= 3 * self._idle_s
            self._quiet_since, self._state = now, PartState.ACTIVE
            state = PartState.RESUMED if paused else PartState.ACTIVE
            if self._end is not None and self._next >= self._end:
                state = self._state = PartState.ENDED
            return [Batch(self._index, self._parts, records, state)]
        if now - self._quiet_since >= self._idle_s and not self._has_backlog():
            # Nothing to read for a while: stop holding the others back, and say so
            # again every timeout (a resumed partition voids the idle claims).
            if self._state is not PartState.IDLE:
                self._idle_since = now
            self._quiet_since, self._state = now, PartState.IDLE
            return [Batch(self._index, self._parts, [], PartState.IDLE)]
        return []

    def _has_backlog(self) -> bool:
        """Whether the broker holds records not read yet: then the partition is late
        (a leader failing over, a slow fetch), not idle, and must keep holding the
        merge back. A bounded run always has a backlog until its end offset."""
        if self._end is not None:
            return True
        low, high = self._consumer.get_watermark_offsets(self._assigned, cached=True)
        if high is None or high < 0:  # no fetch answered yet: nothing known
            return False
        return bool(high > (self._next if self._next >= 0 else low))

    def next_awake(self) -> datetime | None:
        # After an empty poll, look again a little later rather than spin.
        return None if self._busy else datetime.now(UTC) + _EMPTY_POLL_PAUSE

    def snapshot(self) -> int:
        return self._next

    def close(self) -> None:
        self._consumer.close()


class KafkaInput(FixedPartitionedSource[Batch, int]):
    """`vessel.position` and `reefer.telemetry`, one Bytewax partition per Kafka partition."""

    def __init__(self, cfg: KafkaSettings, batch_size: int = 1000) -> None:
        self._cfg, self._batch = cfg, batch_size
        self._parts: tuple[str, ...] | None = None

    def _all_parts(self) -> tuple[str, ...]:
        if self._parts is None:
            self._parts = tuple(
                topic_partitions(self._cfg.brokers, INPUT_TOPICS, self._cfg.timeout_s)
            )
        return self._parts

    def list_parts(self) -> list[str]:
        return list(self._all_parts())

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _KafkaPartition:
        parts = self._all_parts()
        return _KafkaPartition(
            self._cfg, for_part, parts.index(for_part), parts, self._batch, resume_state
        )


def kafka_items(out: Outputs) -> list[tuple[str, list[tuple[str, bytes]]]]:
    """Split one `Outputs` into (topic, [(key, value), ...]) items for `KafkaOutput`."""
    items = []
    for name, topic in OUTPUT_TOPICS.items():
        records = getattr(out, name)
        if records:
            items.append((topic, records))
    return items


@dataclass(slots=True)
class _Deliveries:
    failure: str | None = None

    def on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None and self.failure is None:
            self.failure = f"{msg.topic()}: {err}"

    def produce(
        self, producer: Producer, topic: str, value: bytes, key: bytes | str | None
    ) -> None:
        """Queue one record, reported to `on_delivery`; a full local queue waits for acks."""
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=self.on_delivery)
                return
            except BufferError:
                producer.poll(0.05)


class _TopicPartition(StatefulSinkPartition[list[tuple[str, bytes]], None]):
    def __init__(self, cfg: KafkaSettings, topic: str) -> None:
        self._topic, self._timeout = topic, cfg.timeout_s
        self._producer = Producer(
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
            }
        )
        self._deliveries = _Deliveries()

    def write_batch(self, values: list[list[tuple[str, bytes]]]) -> None:
        for records in values:
            for key, value in records:
                self._deliveries.produce(self._producer, self._topic, value, key)
            self._producer.poll(0)
        self._check()

    def snapshot(self) -> None:
        # An epoch's snapshot commits only once all its records are acknowledged.
        remaining = self._producer.flush(self._timeout)
        self._check()
        if remaining:
            _stop(
                f"{remaining} records to {self._topic} unacknowledged after {self._timeout:g} s; "
                "the run stops here and, restarted with -r DIR, replays them from its last "
                "snapshot; check the cluster, or raise COLDWAKE_KAFKA_TIMEOUT_S"
            )

    def close(self) -> None:
        self.snapshot()

    def _check(self) -> None:
        if self._deliveries.failure is not None:
            _stop(
                f"delivery failed ({self._deliveries.failure}); the run stops here and, "
                "restarted with -r DIR, replays it from its last snapshot; check the cluster, "
                "or raise COLDWAKE_KAFKA_TIMEOUT_S"
            )


class KafkaOutput(FixedPartitionedSink[list[tuple[str, bytes]], None]):
    """Idempotent, acks=all producer per output topic; any failed delivery stops the run."""

    def __init__(self, cfg: KafkaSettings) -> None:
        self._cfg = cfg
        self._parts = sorted(OUTPUT_TOPICS.values())
        self._checked = False

    def list_parts(self) -> list[str]:
        if not self._checked:
            topic_partitions(self._cfg.brokers, tuple(self._parts), self._cfg.timeout_s)
            self._checked = True
        return self._parts

    def part_fn(self, item_key: str) -> int:
        return self._parts.index(item_key)

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _TopicPartition:
        return _TopicPartition(self._cfg, for_part)


def preflight(settings: Settings) -> None:
    """Check at start that the brokers answer and the topics exist (one clear error)."""
    if settings.input.kind == "kafka":
        topic_partitions(settings.kafka.brokers, INPUT_TOPICS, settings.kafka.timeout_s)
    if settings.output == "kafka":
        topic_partitions(
            settings.kafka.brokers, tuple(OUTPUT_TOPICS.values()), settings.kafka.timeout_s
        )


def _topic_and_key(line: bytes) -> tuple[str, bytes]:
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
        }
    )
    deliveries = _Deliveries()
    started = time.monotonic()
    sent = 0
    with path.open("rb") as f:
        for raw in f:
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            topic, key = _topic_and_key(line)
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
