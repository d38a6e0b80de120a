"""Every vessel's mirrored topics ashore, in a fixed number of slots that find new vessels.

The fleet reads whatever topics MirrorMaker 2 has copied to the shore cluster
(`flows.fleet_core.names.INPUT_PATTERN`), and vessels join without configuration.
Bytewax partitions are fixed at start, so the source has `SLOTS` of them, always
the same (a resume with another worker count finds them all), and each Kafka
topic-partition belongs to one slot by a stable hash. A slot lists the topics at
start and every `rescan_s`, and reads new topic-partitions from their log start.

Offsets live in Bytewax snapshots (`{"topic[partition]": (next offset, counts)}`),
never in consumer groups. The consumer never resets on its own
(`auto.offset.reset=error`): records that retention deleted ashore before the fleet
read them are reported as one `GAP` line on stderr, then reading continues from the
log start. Records deleted on a vessel before MirrorMaker copied them are another
`GAP` line, from the counts (`vessel_gaps`), checked at every rescan. With
`stop_at_end` a slot reads the partitions it had at start up to their end offsets
then, and does not rescan (it checks the counts once, at its end): a bounded run
reads a fixed set of records.
"""

from __future__ import annotations

import contextlib
import time
import zlib
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Final

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import KafkaError, KafkaException, Message
from confluent_kafka import TopicPartition as KafkaTopicPartition

from flows.config import KafkaSettings
from flows.edges.kafka.admin import split_name
from flows.edges.kafka.errors import stop
from flows.edges.kafka.fleet_admin import (
    EARLIEST,
    LATEST,
    Part,
    list_offsets,
    note,
    offsets_at_start,
    quiet_admin,
    slot_consumer,
)
from flows.edges.kafka.lag import LagMeter
from flows.edges.kafka.vessel_gaps import OFFSETS_TOPIC, CopiedOffsets, VesselLosses
from flows.fleet_core.names import INPUT_PATTERN, UNKNOWN_VESSEL, FleetBatch, input_kind

#: Bytewax partitions of the source; fixed, so snapshots stay valid at any worker count.
SLOTS: Final = 8
_EMPTY_POLL_PAUSE: Final = timedelta(milliseconds=10)
#: A rescan (in its own thread) waits at most this long for an answer; a cluster that
#: does not answer is the broker check's business, not the rescan's.
_RESCAN_WAIT_S: Final = 10.0
#: Errors of a topic deleted (or not yet known) while assigned: the next rescan drops it.
_GONE: Final = frozenset(
    {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_PARTITION, KafkaError._UNKNOWN_TOPIC}
)

#: A topic-partition in a snapshot: (next offset, records read, records not read
#: (None: unknown yet), records lost on the vessel reported); see `vessel_gaps`.
PartState = tuple[int, int, int | None, int]
Snap = dict[str, PartState]
#: What a rescan found: every topic's name, the log starts of this slot's new
#: partitions, and the vessel offsets MirrorMaker copied up to, where they can be checked.
_Look = tuple[set[str], dict[Part, int], dict[Part, int]]


def part_name(topic: str, partition: int) -> str:
    """`IMO9778791.reefer.alerts[0]`: a topic-partition's name in snapshots."""
    return f"{topic}[{partition}]"


def slot_of(topic: str, partition: int) -> int:
    """The slot (0 .. SLOTS-1) a topic-partition belongs to: CRC-32 of its name."""
    return zlib.crc32(part_name(topic, partition).encode()) % SLOTS


def is_fleet_input(topic: str) -> bool:
    """Whether the fleet reads `topic` (MirrorMaker's own topics never)."""
    if topic.startswith(("__", "mm2-")) or topic.endswith((".internal", ".heartbeats")):
        return False
    return INPUT_PATTERN.fullmatch(topic) is not None and input_kind(topic) is not None


class _Slot(StatefulSourcePartition[FleetBatch, Snap]):
    """The topic-partitions of one slot, read by one consumer; snapshot: next offsets, counts."""

    def __init__(
        self, cfg: KafkaSettings, slot: int, batch: int, rescan_s: float, resume: Snap | None
    ) -> None:
        self._cfg, self._slot, self._batch, self._rescan_s = cfg, slot, batch, rescan_s
        self._admin = quiet_admin(cfg)
        listed = self._listed_at_start()
        self._consumer = slot_consumer(cfg, self._on_error)
        self._next: dict[Part, int] = {}
        self._ends: dict[Part, int] = {}  # stop_at_end: the end offsets at start
        self._down_since: float | None = None
        self._busy = True
        self._losses = VesselLosses()
        self._copied = CopiedOffsets(cfg, self._admin, lambda part: slot_of(*part) == slot)
        try:
            self._start(listed, resume or {})
        except BaseException:
            self._consumer.close()
            raise
        self._next_scan = time.monotonic() + self._rescan_s
        # Rescans ask the cluster from their own thread: `next_batch` never waits on them.
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"fleet-rescan-{slot}")
        self._look: Future[_Look] | None = None
        self._lag = LagMeter()  # metrics: consumer lag per topic-partition
        self._last_look: Future[_Look] | None = None  # stop_at_end: the check at the end
        self._ended = False

    # -- assignment ------------------------------------------------------------------

    def _listed(self, timeout_s: float) -> tuple[set[Part], set[str], set[Part]]:
        """This slot's topic-partitions on the cluster now, every topic's name, and the
        partitions of MirrorMaker's offsets topics.

        Raises KafkaException when no broker answers within `timeout_s`.
        """
        metadata = self._admin.list_topics(timeout=timeout_s)
        mine = {
            (topic, p)
            for topic, info in metadata.topics.items()
            if info.error is None and is_fleet_input(topic)
            for p in info.partitions
            if slot_of(topic, p) == self._slot
        }
        offsets = {
            (topic, p)
            for topic, info in metadata.topics.items()
            if info.error is None and OFFSETS_TOPIC.fullmatch(topic)
            for p in info.partitions
        }
        return mine, set(metadata.topics), offsets

    def _listed_at_start(self) -> set[Part]:
        cfg = self._cfg
        try:
            return self._listed(cfg.timeout_s)[0]
        except KafkaException as exc:
            why = exc.args[0]
        # Stopped outside the handler: one line, no chained traceback under it.
        stop(
            f"no Kafka broker answered at {cfg.brokers} within {cfg.timeout_s:g} s while "
            f"listing the fleet's topics (slot {self._slot}: {why}); check "
            "COLDWAKE_FLEET_BROKERS and that the cluster is up, or raise COLDWAKE_KAFKA_TIMEOUT_S"
        )

    def _start(self, listed: set[Part], resume: Mapping[str, PartState | int]) -> None:
        resumed = {split_name(n): o for n, o in resume.items()}
        for part in listed & resumed.keys():
            state = resumed[part]
            if isinstance(state, int):  # a snapshot of offsets only, from before the counts
                state = (state, 0, None, 0)
            # A resumed offset is checked by the broker itself: one below the log start
            # is the error event that `_reset` turns into a GAP line.
            self._next[part] = state[0]
            self._losses.resume(part, *state[1:])
        self._started(
            offsets_at_start(self._admin, self._cfg, sorted(listed - resumed.keys()), EARLIEST)
        )
        if self._cfg.stop_at_end:
            self._ends = offsets_at_start(self._admin, self._cfg, sorted(listed), LATEST)
        self._assign(list(self._next))

    def _started(self, starts: dict[Part, int]) -> None:
        """Partitions read from their log start."""
        self._next |= starts
        for part, low in starts.items():
            self._losses.start(part, low)

    def _assign(self, parts: list[Part]) -> None:
        todo = [p for p in parts if not self._done(p)]
        if todo:
            self._consumer.incremental_assign(
                [KafkaTopicPartition(t, p, self._next[(t, p)]) for t, p in todo]
            )

    def _done(self, part: Part) -> bool:
        end = self._ends.get(part)
        return end is not None and self._next[part] >= end

    def _rescan(self, now: float) -> None:
        """Start a look at the cluster when one is due; apply one that has finished."""
        if self._look is None:
            # A cluster known to be down is not rescanned: the broker check decides.
            if now >= self._next_scan and self._down_since is None:
                self._next_scan = now + self._rescan_s
                known = frozenset(self._next)
                asked = self._losses.ask(self._next)  # before the look: see `vessel_gaps`
                self._look = self._pool.submit(self._look_up, known, asked)
            return
        if not self._look.done():
            return
        look, self._look = self._look, None
        try:
            topics, starts, copied = look.result()
        except KafkaException:
            # Try again at the next rescan; a cluster that stays away stops the run.
            self._down_since = self._down_since or now
            return
        gone = [part for part in self._next if part[0] not in topics]
        if gone:
            # Deleted ashore: nothing is left to read. If it comes back, it is new.
            self._consumer.incremental_unassign([KafkaTopicPartition(t, p) for t, p in gone])
            for part in gone:
                del self._next[part]
                self._losses.forget(part)
                note(f"topic {part[0]} partition {part[1]} deleted ashore; no longer read")
        self._started(starts)
        self._assign(sorted(starts))
        self._losses.check(copied)

    def _look_up(self, known: frozenset[Part] | None, asked: dict[Part, int]) -> _Look:
        """The rescan thread's work: metadata, the log starts of new partitions (unless
        `known` is None), and how far MirrorMaker copied the `asked` partitions."""
        wait = min(self._cfg.timeout_s, _RESCAN_WAIT_S)
        listed, topics, offsets = self._listed(wait)
        # Partitions without an offset yet (no leader) are new again at the next rescan.
        new = [] if known is None else sorted(listed - known)
        starts, _ = list_offsets(self._admin, new, EARLIEST, wait)
        return topics, starts, self._copied.copied(offsets, asked, wait)

    def _end(self) -> bool:
        """Whether a bounded run's slot has ended: after one last look at the counts."""
        if self._ended:
            return True
        if self._last_look is None:
            asked = self._losses.ask(self._next)
            if asked:
                self._last_look = self._pool.submit(self._look_up, None, asked)
            self._ended = not asked
            return self._ended
        if not self._last_look.done():
            return False
        with contextlib.suppress(KafkaException):  # no check then: the run ends anyway
            self._losses.check(self._last_look.result()[2])
        self._ended = True
        return True

    def _reset(self, msg: Message) -> None:
        """The broker refused the next offset: report why once, continue at the log start."""
        topic, partition = msg.topic(), msg.partition()
        assert topic is not None and partition is not None  # a partition's error
        part = (topic, partition)
        if part not in self._next:
            return  # unassigned meanwhile
        tp = KafkaTopicPartition(topic, partition)
        try:
            low, high = self._consumer.get_watermark_offsets(tp, timeout=self._cfg.timeout_s)
        except KafkaException as exc:
            stop(f"reading {part_name(*part)}: no log start offset within the timeout ({exc})")
        was = self._next[part]
        vessel = (input_kind(topic) or ("", ""))[1] or UNKNOWN_VESSEL
        where = f"vessel {vessel} topic {topic} partition {partition}"
        if was < low:
            note(
                f"GAP {where}: {low - was} records lost, deleted ashore before the fleet read "
                f"them (next offset {was}, log starts at {low}); continuing from {low}"
            )
        elif was > high:
            # Recreated or truncated ashore: what it holds now is unread (duplicates of
            # earlier records are harmless, the tables converge).
            note(
                f"RESET {where}: next offset {was} is past the log end {high} (topic recreated "
                f"or truncated ashore); reading it again from its log start {low}"
            )
        self._next[part] = low if was < low or was > high else was  # else: a leader change
        if self._next[part] != was:
            self._losses.skipped(part)
        # The client stops fetching a partition whose reset failed: assign it afresh.
        self._consumer.incremental_unassign([tp])
        self._assign([part])

    # -- reading -----------------------------------------------------------------------

    def _on_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._ALL_BROKERS_DOWN and self._down_since is None:
            self._down_since = time.monotonic()

    def _check_brokers(self, now: float) -> None:
        """Stop the run once the cluster has been unreachable for the timeout.

        The client retries forever on its own; a flow that silently waits on a dead
        cluster is worse than one that stops and resumes from its snapshot later.
        """
        if self._down_since is None or now - self._down_since < self._cfg.timeout_s:
            return
        try:  # the cluster may be back while this slot has nothing to read
            self._consumer.list_topics(timeout=1.0)
            self._down_since = None
        except KafkaException:
            stop(
                f"no broker of {self._cfg.brokers} has answered for {self._cfg.timeout_s:g} s "
                f"while reading the fleet's topics (slot {self._slot}); the run stops here and "
                "resumes from its last snapshot once restarted (-r DIR); check the cluster, or "
                "raise COLDWAKE_KAFKA_TIMEOUT_S"
            )

    def next_batch(self) -> list[FleetBatch]:
        if self._cfg.stop_at_end and all(self._done(p) for p in self._next):
            if self._end():
                raise StopIteration  # also a slot that had nothing at start
            self._busy = False
            return []
        now = time.monotonic()
        if not self._cfg.stop_at_end:
            self._rescan(now)
        # Never wait here: Bytewax polls every partition of the worker in turn, and a
        # wait on an empty one would stall all the others.
        messages = self._consumer.consume(self._batch, 0)
        batch: FleetBatch = []
        nexts, ends, reads = self._next, self._ends, self._losses.read
        for msg in messages:
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            assert topic is not None and partition is not None and offset is not None
            part = (topic, partition)
            err = msg.error()
            if err is not None:
                code = err.code()
                if code == KafkaError._PARTITION_EOF:
                    # Past any transaction markers; capped by the end in a bounded run.
                    if part in nexts and offset > nexts[part]:
                        nexts[part] = min(offset, ends.get(part, offset))
                elif code == KafkaError._AUTO_OFFSET_RESET:
                    self._reset(msg)
                elif code in _GONE:
                    self._next_scan = now  # the rescan drops it
                else:
                    stop(f"reading {part_name(*part)}: {err}; the run stops here")
                continue
            if part not in nexts or self._done(part):
                continue  # unassigned meanwhile, or past the end of a bounded run
            end = ends.get(part)
            if end is not None and offset >= end:
                nexts[part] = end  # only markers lie between: the end is next
                continue
            nexts[part] = offset + 1
            reads[part] += 1  # tombstones too: each holds a vessel offset
            value = msg.value()
            if value is not None:  # a tombstone carries nothing to fold in
                batch.append((topic, value))
        self._lag.report(self._consumer, nexts, now)  # metrics, from cached watermarks
        self._busy = bool(messages)
        if messages:
            self._down_since = None
        else:
            self._check_brokers(now)
        return [batch] if batch else []

    def next_awake(self) -> datetime | None:
        # After an empty poll, look again a little later rather than spin.
        return None if self._busy else datetime.now(UTC) + _EMPTY_POLL_PAUSE

    def snapshot(self) -> Snap:
        losses = self._losses
        return {part_name(*part): (at, *losses.state(part)) for part, at in self._next.items()}

    def close(self) -> None:
        for look in (self._look, self._last_look):
            if look is not None:
                look.cancel()
        # The offsets reader is the rescan thread's: closed there, after a look under way.
        self._pool.submit(self._copied.close)
        self._pool.shutdown(wait=False)
        self._consumer.close()


class FleetKafkaSource(FixedPartitionedSource[FleetBatch, Snap]):
    """Every vessel's mirrored topics on the shore cluster, in `SLOTS` fixed partitions.

    Items are batches of `(topic, value)`; tombstones are skipped. New topics are
    found at start and every `rescan_s` (not with `stop_at_end`: see the module).
    """

    def __init__(self, cfg: KafkaSettings, batch_size: int = 2000, rescan_s: float = 60.0) -> None:
        self._cfg, self._batch, self._rescan_s = cfg, batch_size, rescan_s

    def list_parts(self) -> list[str]:
        return [f"slot-{i}" for i in range(SLOTS)]

    def build_part(self, step_id: str, for_part: str, resume_state: Snap | None) -> _Slot:
        slot = int(for_part.removeprefix("slot-"))
        return _Slot(self._cfg, slot, self._batch, self._rescan_s, resume_state)
