"""`vessel.position` and `reefer.telemetry` in: one Bytewax partition per Kafka partition.

Offsets live in Bytewax snapshots (no consumer-group commits), so a resumed run
rereads exactly what the last snapshot had not covered. A cluster that stays
unreachable for the timeout stops the run with one clear line.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Final

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException
from confluent_kafka import TopicPartition as KafkaTopicPartition

from flows.config import KafkaSettings
from flows.contract import INPUT_TOPICS
from flows.edges.kafka.admin import split_name, topic_partitions
from flows.edges.kafka.errors import KafkaUnavailableError, stop
from flows.edges.kafka.idle import IdleRule
from flows.edges.kafka.lag import LagMeter
from flows.lines import Lines
from flows.watermark import PartState

_EMPTY_POLL_PAUSE: Final = timedelta(milliseconds=10)


class _InputPartition(StatefulSourcePartition[Lines, int]):
    """One Kafka partition of an input topic; its snapshot is the next offset to read."""

    def __init__(
        self,
        cfg: KafkaSettings,
        name: str,
        index: int,
        parts: tuple[str, ...],
        batch_size: int,
        resume: int | None,
    ) -> None:
        self._topic, self._partition = split_name(name)
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
        self._assigned = KafkaTopicPartition(self._topic, self._partition)
        if cfg.stop_at_end:
            try:
                _, self._end = self._consumer.get_watermark_offsets(
                    self._assigned, timeout=cfg.timeout_s
                )
            except KafkaException as exc:
                raise KafkaUnavailableError(
                    f"could not read the end offset of {name} within {cfg.timeout_s:g} s: {exc}"
                ) from None
        self._consumer.assign([KafkaTopicPartition(self._topic, self._partition, self._next)])
        self._idle = IdleRule(cfg.idle_s, quiet_since=time.monotonic())
        self._ended = False
        self._lag = LagMeter()

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
            stop(
                f"no broker of {self._cfg.brokers} has answered for "
                f"{self._cfg.timeout_s:g} s while reading {self._topic}[{self._partition}]; "
                "the run stops here and resumes from its last snapshot once restarted "
                "(-r DIR); check the cluster, or raise COLDWAKE_KAFKA_TIMEOUT_S"
            )

    def _lines(self, raws: list[bytes], offsets: list[int], state: PartState) -> list[Lines]:
        return [Lines(self._index, self._parts, self._label, offsets, raws, state, text=False)]

    def next_batch(self) -> list[Lines]:
        if self._ended:
            raise StopIteration
        if self._end is not None and (self._next >= self._end or self._end == 0):
            self._ended = True
            return self._lines([], [], PartState.ENDED)
        # Never wait here: Bytewax polls every partition of the worker in turn, and a
        # wait on an empty one would stall all the others.
        messages = self._consumer.consume(self._batch, 0)
        raws: list[bytes] = []
        offsets: list[int] = []
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                stop(f"reading {self._topic}[{self._partition}]: {err}; the run stops here")
            offset = msg.offset()
            assert offset is not None  # only error events lack an offset
            if self._end is not None and offset >= self._end:
                break
            raws.append(msg.value() or b"")
            offsets.append(offset)
            self._next = offset + 1
        now = time.monotonic()
        at_end = self._end is not None and self._next >= self._end
        self._lag.report(self._consumer, {(self._topic, self._partition): self._next}, now, at_end)
        self._busy = bool(messages)
        if messages:
            self._down_since = None
        else:
            self._check_brokers()
        if raws:
            state = self._idle.delivered(now)
            if at_end:
                state, self._ended = PartState.ENDED, True
            return self._lines(raws, offsets, state)
        if self._idle.quiet(now, self._has_backlog):
            # Nothing to read for a while: stop holding the others back, and say so
            # again every timeout (a resumed partition voids the idle claims).
            return self._lines([], [], PartState.IDLE)
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


class KafkaSource(FixedPartitionedSource[Lines, int]):
    """The contract's input topics, one Bytewax partition per Kafka partition."""

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

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _InputPartition:
        parts = self._all_parts()
        return _InputPartition(
            self._cfg, for_part, parts.index(for_part), parts, self._batch, resume_state
        )
