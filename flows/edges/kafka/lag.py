"""Consumer lag per input partition, for `flows.metrics.KAFKA_LAG`.

Lag is the high watermark the consumer last fetched minus the next offset to read.
The watermark comes from the client's cache (`cached=True`), which every fetch
response refreshes: no request to the brokers, and at most one look a second.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Protocol

from confluent_kafka import KafkaException, TopicPartition

from flows.metrics import KAFKA_LAG, UPDATE_S

Part = tuple[str, int]  # (topic, partition)


class _Watermarks(Protocol):
    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float = ..., cached: bool = ...
    ) -> tuple[int, int]: ...


#: Below 0, an offset is one of librdkafka's logical ones (beginning, end, invalid).
_KNOWN: Final = 0
#: While no watermark is known (no fetch answered yet), look again this soon: the
#: first backlog shows at once, and a cluster that stays away costs little.
_RETRY_S: Final = 0.1


def lag(low: int, high: int, next_offset: int) -> int | None:
    """Records not read yet; None while the client has fetched no watermark."""
    if high < _KNOWN:
        return None
    if next_offset < _KNOWN:  # nothing read yet: it starts at the log start
        if low < _KNOWN:
            return None
        next_offset = low
    return max(high - next_offset, 0)


class LagMeter:
    """Sets the lag gauge of the partitions a consumer reads, at most every `UPDATE_S`."""

    def __init__(self) -> None:
        self._due = 0.0
        self._shown: set[Part] = set()

    def report(
        self, consumer: _Watermarks, nexts: Mapping[Part, int], now: float, force: bool = False
    ) -> None:
        """`nexts`: each partition's next offset to read; `now`: monotonic seconds."""
        if now < self._due and not force:
            return
        known = False
        for (topic, partition), next_offset in nexts.items():
            try:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), cached=True
                )
            except KafkaException:  # not assigned (a bounded run's finished partition)
                continue
            behind = lag(low, high, next_offset)
            if behind is not None:
                KAFKA_LAG.labels(topic=topic, partition=str(partition)).set(behind)
                self._shown.add((topic, partition))
                known = True
        self._due = now + (UPDATE_S if known else _RETRY_S)
        for topic, partition in self._shown - nexts.keys():  # no longer read (deleted ashore)
            KAFKA_LAG.remove(topic, str(partition))
            self._shown.discard((topic, partition))
