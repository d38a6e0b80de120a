"""``mirror status``: what waits on each vessel to cross the link, and what was lost.

How far MirrorMaker 2 has copied comes from its offsets ashore
(:func:`deploy.kafka.internal.copied_offsets`). A vessel's records are then, per
partition: waiting (from the next offset to copy up to the end offset) or lost. Lost
records are those whose offsets are below the vessel's log start offset but were never
copied: retention deleted them before the link came back. MirrorMaker itself would skip
them silently (its consumer resets to the earliest offset), so they are reported in one
line naming vessel, topic, partition and count; and once MirrorMaker has skipped them,
its own log's offset resets are reported the same way (:func:`skipped_in_log`).

"Records" are offsets: a vessel producer that used transactions would add one commit
marker per transaction. Coldwake's producers are idempotent, not transactional.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Final

from confluent_kafka import Consumer, KafkaException, TopicPartition

from deploy.kafka.errors import LauncherError
from deploy.kafka.mirror import mirrored_topics
from deploy.kafka.parts import Cluster, Mirror

READ_TIMEOUT_S: Final = 10.0
# The source consumer's log when a position is no longer on the vessel.
_OUT_OF_RANGE: Final = re.compile(
    r"^\[(?P<at>[^\]]+)\] INFO .*Fetch position FetchPosition\{offset=(?P<old>\d+),.*"
    r"is out of range for partition (?P<tp>\S+), resetting offset",
    re.MULTILINE,
)


@dataclass(frozen=True, slots=True)
class PartitionBacklog:
    """One vessel partition as seen from the shore.

    Attributes:
        vessel: Vessel id.
        topic: Vessel topic.
        partition: Partition number.
        log_start: The vessel's log start offset (older records are deleted).
        end: The vessel's end offset.
        copied: The next offset MirrorMaker copies (0 if it has copied nothing yet).
        oldest_ms: Timestamp of the oldest waiting record, if known.
    """

    vessel: str
    topic: str
    partition: int
    log_start: int
    end: int
    copied: int
    oldest_ms: int | None = None

    @property
    def waiting(self) -> int:
        """Records still on the vessel that are not ashore yet."""
        return max(self.end - max(self.copied, self.log_start), 0)

    @property
    def lost(self) -> int:
        """Records deleted on the vessel before they were copied."""
        return max(self.log_start - self.copied, 0)

    def gap_line(self) -> str:
        """The one line that reports :attr:`lost`."""
        return (
            f"GAP {self.vessel} {self.topic} partition {self.partition}: {self.lost} records "
            f"lost, deleted on the vessel before they were copied ashore (vessel log starts "
            f"at offset {self.log_start}, copied up to {self.copied}): retention outran the "
            "link outage"
        )


def _consumer(bootstrap: str, **conf: object) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "coldwake-mirror-status",  # assign() only: no membership, no commits
            "enable.auto.commit": False,
            "socket.connection.setup.timeout.ms": 5000,
            "log_level": 3,
            **conf,
        }
    )


def vessel_backlog(
    vessel: Cluster, mirror: Mirror, copied: dict[tuple[str, int], int], *, ages: bool = True
) -> list[PartitionBacklog]:
    """Every mirrored partition of ``vessel``, read on its own listener (not across the link).

    Args:
        vessel: The vessel cluster.
        mirror: Its MirrorMaker.
        copied: From :func:`copied_offsets`.
        ages: Also read the oldest waiting record of each partition for its timestamp.

    Raises:
        LauncherError: The vessel is unreachable.
    """
    consumer = _consumer(vessel.bootstrap)
    rows: list[PartitionBacklog] = []
    try:
        md = consumer.list_topics(timeout=READ_TIMEOUT_S).topics
        for topic in mirrored_topics(mirror.raw):
            if topic not in md:
                continue
            for p in sorted(md[topic].partitions):
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=READ_TIMEOUT_S
                )
                rows.append(
                    PartitionBacklog(vessel.name, topic, p, low, high, copied.get((topic, p), 0))
                )
        if ages:
            rows = _with_ages(consumer, rows)
    except KafkaException as e:
        raise LauncherError(f"cannot read {vessel.name} at {vessel.bootstrap}: {e}") from e
    finally:
        consumer.close()
    return rows


def _with_ages(consumer: Consumer, rows: list[PartitionBacklog]) -> list[PartitionBacklog]:
    """``rows`` with the timestamp of each partition's oldest waiting record."""
    waiting = {(r.topic, r.partition): r for r in rows if r.waiting}
    if not waiting:
        return rows
    consumer.assign(
        [TopicPartition(t, p, max(r.copied, r.log_start)) for (t, p), r in waiting.items()]
    )
    stamps: dict[tuple[str, int], int] = {}
    deadline = time.monotonic() + READ_TIMEOUT_S
    while len(stamps) < len(waiting) and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        tp = (str(msg.topic()), int(msg.partition() or 0))
        if tp in waiting and tp not in stamps:
            stamps[tp] = msg.timestamp()[1]
            consumer.pause([TopicPartition(*tp)])
    return [
        PartitionBacklog(
            r.vessel, r.topic, r.partition, r.log_start, r.end, r.copied,
            stamps.get((r.topic, r.partition)),
        )
        for r in rows
    ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Skipped:
    """Records MirrorMaker's consumer skipped: its position was deleted on the vessel.

    Attributes:
        vessel: Vessel id.
        topic: Vessel topic.
        partition: Partition number.
        first: First offset skipped.
        resumed: Offset it went on from (the vessel's log start then).
        at: When, as MirrorMaker's log says.
    """

    vessel: str
    topic: str
    partition: int
    first: int
    resumed: int
    at: str

    def gap_line(self) -> str:
        """The one line that reports the skip."""
        return (
            f"GAP {self.vessel} {self.topic} partition {self.partition}: "
            f"{self.resumed - self.first} records lost, deleted on the vessel before they "
            f"were copied ashore (MirrorMaker skipped offsets {self.first} to "
            f"{self.resumed - 1} at {self.at}): retention outran the link outage"
        )


def skipped_in_log(mirror: Mirror) -> list[Skipped]:
    """Every offset reset in MirrorMaker's log that skipped records it never copied.

    MirrorMaker's consumer resets to the vessel's log start when its position was
    deleted; its log is what is left of the gap once the offsets have moved past it.
    """
    try:
        text = mirror.server_log.read_text(errors="replace")
    except OSError:
        return []
    found = []
    for m in _OUT_OF_RANGE.finditer(text):
        reset = re.compile(
            rf"Resetting offset for partition {re.escape(m['tp'])} to position "
            r"FetchPosition\{offset=(\d+),"
        ).search(text, m.end())
        if reset is None:
            continue
        topic, _, partition = m["tp"].rpartition("-")
        first, resumed = int(m["old"]), int(reset[1])
        if resumed > first:
            found.append(Skipped(mirror.vessel, topic, int(partition), first, resumed, m["at"]))
    return found
