"""Every vessel's mirrored topics ashore, in a fixed number of slots that find new vessels.

The fleet reads whatever topics MirrorMaker 2 has copied to the shore cluster
(`flows.fleet_core.names.INPUT_PATTERN`), and vessels join without configuration.
Bytewax partitions are fixed at start, so the source has `SLOTS` of them, always
the same (a resume with another worker count finds them all), and each Kafka
topic-partition belongs to one slot by a stable hash. A slot lists the topics at
start and every `rescan_s`, and reads new topic-partitions from their log start.

Offsets live in Bytewax snapshots (`{"topic[partition]": next offset}`), never in
consumer groups. The consumer never resets on its own (`auto.offset.reset=error`):
records that retention deleted ashore before the fleet read them are reported as one
`GAP` line on stderr, then reading continues from the log start. With
`stop_at_end` a slot reads the partitions it had at start up to their end offsets
then, and does not rescan: a bounded run reads a fixed set of records.
"""

from __future__ import annotations

import sys
import time
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Final

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import Consumer, IsolationLevel, KafkaError, KafkaException, Message
from confluent_kafka import TopicPartition as KafkaTopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from flows.config import KafkaSettings
from flows.edges.kafka.admin import split_name
from flows.edges.kafka.errors import stop
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

Part = tuple[str, int]
Snap = dict[str, int] | None
#: What a rescan found: every topic's name, and the log starts of this slot's new partitions.
_Look = tuple[set[str], dict[Part, int]]
_EARLIEST: Final[OffsetSpec] = OffsetSpec.earliest()  # type: ignore[no-untyped-call]
_LATEST: Final[OffsetSpec] = OffsetSpec.latest()  # type: ignore[no-untyped-call]


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


def _note(line: str) -> None:
    print(f"coldwake-fleet: {line}", file=sys.stderr, flush=True)


def _quiet_admin(cfg: KafkaSettings) -> AdminClient:
    """An AdminClient for metadata and offsets that logs nothing of its own: an
    unreachable cluster is one line, not buried under connection-refused lines."""
    return AdminClient(
        {
            "bootstrap.servers": cfg.brokers,
            "log_level": 0,
            "socket.connection.setup.timeout.ms": int(cfg.timeout_s * 1000),
        }
    )


def _offsets(
    admin: AdminClient, parts: list[Part], spec: OffsetSpec, timeout_s: float
) -> tuple[dict[Part, int], dict[Part, str]]:
    """One offset per topic-partition (earliest, or the last stable one), in bulk.

    One request per leader, whatever the number of partitions. Returns the offsets
    found and, apart, why the others are missing (a topic created a moment ago may
    have no leader yet).
    """
    if not parts:
        return {}, {}
    futures = admin.list_offsets(
        {KafkaTopicPartition(t, p): spec for t, p in parts},
        # The last stable offset: what a read_committed consumer can reach without
        # waiting for a transaction still open (MirrorMaker writes in transactions).
        isolation_level=IsolationLevel.READ_COMMITTED,
        request_timeout=timeout_s,
    )
    found: dict[Part, int] = {}
    failed: dict[Part, str] = {}
    for tp, future in futures.items():
        try:
            found[(tp.topic, tp.partition)] = future.result(timeout_s).offset
        except (KafkaException, TimeoutError) as exc:
            failed[(tp.topic, tp.partition)] = str(exc) or type(exc).__name__
    return found, failed


class _Slot(StatefulSourcePartition[FleetBatch, dict[str, int]]):
    """The topic-partitions of one slot, read by one consumer; snapshot: next offsets."""

    def __init__(
        self, cfg: KafkaSettings, slot: int, batch: int, rescan_s: float, resume: Snap
    ) -> None:
        self._cfg, self._slot, self._batch, self._rescan_s = cfg, slot, batch, rescan_s
        self._admin = _quiet_admin(cfg)
        listed = self._listed_at_start()
        self._consumer = Consumer(
            {
                "bootstrap.servers": cfg.brokers,
                "group.id": cfg.group_id,
                "enable.auto.commit": False,
                # Never skip records silently: an offset the log no longer has is an
                # error event, reported below as a GAP line.
                "auto.offset.reset": "error",
                # MirrorMaker 2 copies in transactions: read only what it committed.
                "isolation.level": "read_committed",
                # The end-of-partition event carries the fetch position, which moves past
                # transaction markers that no message ever reports.
                "enable.partition.eof": True,
                "socket.connection.setup.timeout.ms": int(cfg.timeout_s * 1000),
                # One queue for all of a slot's partitions; SLOTS of them per process.
                "queued.max.messages.kbytes": 8192,
                "fetch.max.bytes": 8 << 20,
                "log_level": 3,
                "error_cb": self._on_error,
            }
        )
        self._next: dict[Part, int] = {}
        self._ends: dict[Part, int] = {}  # stop_at_end: the end offsets at start
        self._down_since: float | None = None
        self._busy = True
        try:
            self._start(listed, resume or {})
        except BaseException:
            self._consumer.close()
            raise
        self._next_scan = time.monotonic() + self._rescan_s
        # Rescans ask the cluster from their own thread: `next_batch` never waits on them.
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"fleet-rescan-{slot}")
        self._look: Future[_Look] | None = None

    # -- assignment ------------------------------------------------------------------

    def _listed(self, timeout_s: float) -> tuple[set[Part], set[str]]:
        """This slot's topic-partitions on the cluster now, and every topic's name.

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
        return mine, set(metadata.topics)

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

    def _start(self, listed: set[Part], resume: dict[str, int]) -> None:
        resumed = {split_name(n): o for n, o in resume.items()}
        # A resumed offset is checked by the broker itself: one below the log start is
        # the error event that `_reset` turns into a GAP line.
        self._next = {part: resumed[part] for part in listed if part in resumed}
        self._next |= self._offsets_at_start(sorted(listed - resumed.keys()), _EARLIEST)
        if self._cfg.stop_at_end:
            self._ends = self._offsets_at_start(sorted(listed), _LATEST)
        self._assign(list(self._next))

    def _offsets_at_start(self, parts: list[Part], spec: OffsetSpec) -> dict[Part, int]:
        """Offsets of all `parts`, retried until the timeout (new topics get leaders)."""
        cfg = self._cfg
        deadline = time.monotonic() + cfg.timeout_s
        found: dict[Part, int] = {}
        while True:
            wait = max(deadline - time.monotonic(), 0.1)
            got, failed = _offsets(self._admin, parts, spec, wait)
            found |= got
            if not failed:
                return found
            if time.monotonic() >= deadline:
                part, why = next(iter(sorted(failed.items())))
                stop(
                    f"no offsets for {len(failed)} fleet topic-partitions such as "
                    f"{part_name(*part)} from {cfg.brokers} within {cfg.timeout_s:g} s "
                    f"({why}); check the shore cluster, or raise COLDWAKE_KAFKA_TIMEOUT_S"
                )
            parts = sorted(failed)
            time.sleep(0.2)

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
                self._look = self._pool.submit(self._look_up, known)
            return
        if not self._look.done():
            return
        look, self._look = self._look, None
        try:
            topics, starts = look.result()
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
                _note(f"topic {part[0]} partition {part[1]} deleted ashore; no longer read")
        self._next |= starts
        self._assign(sorted(starts))

    def _look_up(self, known: frozenset[Part]) -> _Look:
        """The rescan thread's work: metadata, and the log starts of new partitions."""
        wait = min(self._cfg.timeout_s, _RESCAN_WAIT_S)
        listed, topics = self._listed(wait)
        # Partitions without an offset yet (no leader) are new again at the next rescan.
        starts, _ = _offsets(self._admin, sorted(listed - known), _EARLIEST, wait)
        return topics, starts

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
            _note(
                f"GAP {where}: {low - was} records lost, deleted ashore before the fleet read "
                f"them (next offset {was}, log starts at {low}); continuing from {low}"
            )
        elif was > high:
            # Recreated or truncated ashore: what it holds now is unread (duplicates of
            # earlier records are harmless, the tables converge).
            _note(
                f"RESET {where}: next offset {was} is past the log end {high} (topic recreated "
                f"or truncated ashore); reading it again from its log start {low}"
            )
        self._next[part] = low if was < low or was > high else was  # else: a leader change
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
            raise StopIteration  # also a slot that had nothing at start
        now = time.monotonic()
        if not self._cfg.stop_at_end:
            self._rescan(now)
        # Never wait here: Bytewax polls every partition of the worker in turn, and a
        # wait on an empty one would stall all the others.
        messages = self._consumer.consume(self._batch, 0)
        batch: FleetBatch = []
        nexts, ends = self._next, self._ends
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
            value = msg.value()
            if value is not None:  # a tombstone carries nothing to fold in
                batch.append((topic, value))
        self._busy = bool(messages)
        if messages:
            self._down_since = None
        else:
            self._check_brokers(now)
        return [batch] if batch else []

    def next_awake(self) -> datetime | None:
        # After an empty poll, look again a little later rather than spin.
        return None if self._busy else datetime.now(UTC) + _EMPTY_POLL_PAUSE

    def snapshot(self) -> dict[str, int]:
        return {part_name(t, p): offset for (t, p), offset in self._next.items()}

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._consumer.close()


class FleetKafkaSource(FixedPartitionedSource[FleetBatch, dict[str, int]]):
    """Every vessel's mirrored topics on the shore cluster, in `SLOTS` fixed partitions.

    Items are batches of `(topic, value)`; tombstones are skipped. New topics are
    found at start and every `rescan_s` (not with `stop_at_end`: see the module).
    """

    def __init__(self, cfg: KafkaSettings, batch_size: int = 2000, rescan_s: float = 60.0) -> None:
        self._cfg, self._batch, self._rescan_s = cfg, batch_size, rescan_s

    def list_parts(self) -> list[str]:
        return [f"slot-{i}" for i in range(SLOTS)]

    def build_part(self, step_id: str, for_part: str, resume_state: dict[str, int] | None) -> _Slot:
        slot = int(for_part.removeprefix("slot-"))
        return _Slot(self._cfg, slot, self._batch, self._rescan_s, resume_state)
