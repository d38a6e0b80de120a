"""Records lost on a vessel before MirrorMaker 2 copied them, found ashore: one `GAP` line.

When retention on a vessel deletes records that MirrorMaker has not copied yet (the
outage outlasted it), MirrorMaker resets to the vessel's log start and goes on, saying
nothing the fleet can see. But it keeps, in `mm2-offsets.<alias>.internal` ashore, the
vessel offset O of the last record it copied from each vessel partition
(`["MirrorSourceConnector",{"cluster":A,"partition":P,"topic":T}]` -> `{"offset":O}`),
written in the same transaction as the copies. Vessel producers are idempotent, not
transactional, and vessel topics start at offset 0, so a vessel offset counts records
(compacted topics aside: `reefer.container-state` is never checked). Once the fleet has
read every record ashore up to that transaction:

    lost on the vessel = O + 1 - records the fleet read - `unread`

`unread` being 0 when the fleet read the partition from offset 0, else fixed by the
first exact check after it skipped records ashore or started past offset 0 (see
`VesselLosses`). A loss is reported once, in one line, when that number grows.

`CopiedOffsets` reads the offsets topics (a slot's rescan thread); `VesselLosses`
keeps the counts and says when the number grows (the slot's thread). A check that
raced MirrorMaker is skipped until a later one, never guessed: see `CopiedOffsets.copied`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Final

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException
from confluent_kafka import TopicPartition as KafkaTopicPartition
from confluent_kafka.admin import AdminClient

from flows.config import KafkaSettings
from flows.contract import OUTPUTS
from flows.edges.kafka.fleet_admin import LATEST, Part, list_offsets, note
from flows.fleet_core.names import INPUT_TOPICS, input_kind

#: MirrorMaker's offsets topic ashore, one per vessel: `mm2-offsets.<alias>.internal`.
OFFSETS_TOPIC: Final = re.compile(r"mm2-offsets\.([^.]+)\.internal")
SOURCE_CONNECTOR: Final = "MirrorSourceConnector"
#: Vessel topics whose compaction leaves offsets that no record holds: never checked.
_COMPACTED: Final = frozenset(o.topic for o in OUTPUTS if o.compacted)
_POLL_S: Final = 0.1


def mirrored(topic: str) -> tuple[str, str] | None:
    """`(alias, vessel topic)` of a shore topic whose vessel offsets count its records."""
    found = input_kind(topic)
    if found is None or not found[1] or INPUT_TOPICS[found[0]] in _COMPACTED:
        return None  # not mirrored (no prefix), or compacted on the vessel
    alias, _, vessel_topic = topic.partition(".")
    return alias, vessel_topic


def copied_part(alias: str, key: bytes | None) -> Part | None:
    """The shore topic-partition an offsets record of `alias` is about (None: another key)."""
    try:
        connector, where = orjson.loads(key or b"null")
        if connector != SOURCE_CONNECTOR or where["cluster"] != alias:
            return None
        return f"{alias}.{where['topic']}", int(where["partition"])
    except (ValueError, TypeError, KeyError):
        return None


def copied_offset(value: bytes | None) -> int | None:
    """O of an offsets record's value `{"offset": O}` (None: a tombstone, or not one)."""
    try:
        return int(orjson.loads(value or b"null")["offset"])
    except (ValueError, TypeError, KeyError):
        return None


class CopiedOffsets:
    """How far MirrorMaker has copied each vessel partition, from its offsets topics ashore.

    One thread only (a slot's rescan thread). Each offsets topic is read from its
    start once, then only what was added since; `wanted` keeps a slot's keys.
    """

    def __init__(self, cfg: KafkaSettings, admin: AdminClient, wanted: Callable[[Part], bool]):
        self._cfg, self._admin, self._wanted = cfg, admin, wanted
        self._consumer: Consumer | None = None  # made on first need
        self._pos: dict[Part, int] = {}  # offsets-topic partition -> next offset to read
        self._last: dict[Part, tuple[int, Part]] = {}  # shore part -> (O, where it was read)

    def copied(
        self, offsets: set[Part], asked: Mapping[Part, int], wait_s: float
    ) -> dict[Part, int]:
        """O of each `asked` shore partition whose loss can be counted exactly now.

        `offsets` are the partitions of every offsets topic listed; `asked` the fleet's
        next offset in each shore partition, taken BEFORE this call. A partition is
        returned only if nothing moved meanwhile: the offsets topic partition of its
        key had no open transaction and was read to its end, and then the shore
        partition had no open transaction and ended where the fleet already was. So
        the fleet's counts, taken with `asked`, hold exactly the records of the
        transactions up to the one that wrote O: none missing (which would be a false
        alarm), none later (a number too low). Transaction markers reach each partition
        one by one; both "no open transaction" checks cover that. Anything else (a
        partition moving, an error, the time running out) skips it until a later call.
        """
        if not asked or not (offsets or self._pos):
            return {}
        deadline = time.monotonic() + wait_s
        try:
            self._follow(offsets)
            ends, quiet = self._ends(sorted(self._pos), deadline)
            self._read_to(ends, deadline)
            settled = {p for p in quiet if self._pos[p] >= ends[p]}
            found = {
                part: o for part, (o, src) in self._last.items() if part in asked and src in settled
            }
            ends, quiet = self._ends(sorted(found), deadline)
        except KafkaException:
            return {}  # a cluster that does not answer is the broker check's business
        return {part: o for part, o in found.items() if part in quiet and ends[part] <= asked[part]}

    def _ends(self, parts: list[Part], deadline: float) -> tuple[dict[Part, int], set[Part]]:
        """The last stable offset of each of `parts`, and which of them had no transaction
        open (it was the high watermark too)."""
        ends, _ = list_offsets(self._admin, parts, LATEST, max(deadline - time.monotonic(), 0.1))
        wait = max(deadline - time.monotonic(), 0.1)
        tops, _ = list_offsets(self._admin, parts, LATEST, wait, committed=False)
        return ends, {p for p, end in ends.items() if tops.get(p) == end}

    def _follow(self, offsets: set[Part]) -> None:
        """Read new offsets topic partitions from their start; forget deleted ones."""
        gone = [p for p in self._pos if p not in offsets]
        new = sorted(offsets - self._pos.keys())
        if not gone and not new:
            return
        if self._consumer is None:
            self._consumer = Consumer(
                {
                    "bootstrap.servers": self._cfg.brokers,
                    "group.id": self._cfg.group_id,  # assign() only: no membership, no commits
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                    # Only what MirrorMaker committed: an aborted copy was never copied.
                    "isolation.level": "read_committed",
                    # The end-of-partition event carries the position past commit markers.
                    "enable.partition.eof": True,
                    "socket.connection.setup.timeout.ms": int(self._cfg.timeout_s * 1000),
                    # Small records, read once a rescan: little to hold meanwhile.
                    "queued.max.messages.kbytes": 1024,
                    "log_level": 0,  # the slot's own consumer reports a cluster down
                }
            )
        if gone:
            self._consumer.incremental_unassign([KafkaTopicPartition(t, p) for t, p in gone])
            for p in gone:
                del self._pos[p]
            self._last = {k: v for k, v in self._last.items() if v[1] not in gone}
        if new:
            self._consumer.incremental_assign(
                [KafkaTopicPartition(t, p, OFFSET_BEGINNING) for t, p in new]
            )
            self._pos |= dict.fromkeys(new, 0)

    def _read_to(self, ends: Mapping[Part, int], deadline: float) -> None:
        """Read the offsets topics up to `ends`, or until the deadline."""
        consumer = self._consumer
        behind = {p for p, end in ends.items() if self._pos[p] < end}
        while consumer is not None and behind and time.monotonic() < deadline:
            for msg in consumer.consume(1000, _POLL_S):
                topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
                assert topic is not None and partition is not None and offset is not None
                src = (topic, partition)
                if src not in self._pos:
                    continue  # unassigned meanwhile
                err = msg.error()
                if err is not None:
                    if err.code() != KafkaError._PARTITION_EOF:
                        raise KafkaException(err)
                    self._pos[src] = max(self._pos[src], offset)
                    continue
                self._pos[src] = offset + 1
                match = OFFSETS_TOPIC.fullmatch(topic)
                part = copied_part(match[1], msg.key()) if match else None
                if part is None or not self._wanted(part):
                    continue
                o = copied_offset(msg.value())
                if o is None:
                    self._last.pop(part, None)
                else:
                    self._last[part] = (o, src)
            behind = {p for p in behind if self._pos[p] < ends[p]}

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()


class VesselLosses:
    """Per shore partition: records read, records not read, vessel losses reported.

    The slot's thread only. `read` is counted by the slot itself, record by record.
    `unread` is None while unknown (reading started past offset 0, or skipped records
    ashore): the next exact check then sets it so that the loss is what was reported,
    and later losses are counted from there. A skip ashore is not counted by its
    offsets, as the other GAP line reports it: those include one commit marker per
    MirrorMaker transaction, and would hide as many records lost on the vessel.
    """

    def __init__(self) -> None:
        self.read: dict[Part, int] = {}
        self._unread: dict[Part, int | None] = {}
        self._reported: dict[Part, int] = {}
        self._epoch: dict[Part, int] = {}  # in memory: moves at every skip ashore
        self._gone: set[Part] = set()  # deleted ashore; if it comes back, not from 0
        self._where: dict[Part, tuple[str, str]] = {}  # checked parts: (alias, topic)
        self._asked: dict[Part, tuple[int, int | None, int]] = {}

    def start(self, part: Part, log_start: int) -> None:
        """A partition read from its log start (new, or not in the snapshot)."""
        known = log_start == 0 and part not in self._gone
        self.resume(part, 0, 0 if known else None, 0)

    def resume(self, part: Part, read: int, unread: int | None, reported: int) -> None:
        self.read[part], self._unread[part], self._reported[part] = read, unread, reported
        self._epoch[part] = 0
        if (where := mirrored(part[0])) is not None:
            self._where[part] = where

    def state(self, part: Part) -> tuple[int, int | None, int]:
        """`(read, unread, reported)`, for the snapshot."""
        return self.read[part], self._unread[part], self._reported[part]

    def skipped(self, part: Part) -> None:
        """Records skipped ashore (deleted, or a topic recreated): `unread` is unknown."""
        self._unread[part] = None
        self._epoch[part] += 1

    def forget(self, part: Part) -> None:
        for counts in (self.read, self._unread, self._reported, self._epoch, self._where):
            counts.pop(part, None)
        self._asked.pop(part, None)
        self._gone.add(part)

    def ask(self, nexts: Mapping[Part, int]) -> dict[Part, int]:
        """The next offsets to give `CopiedOffsets.copied`; notes the counts they go with."""
        self._asked = {
            p: (self.read[p], self._unread[p], self._epoch[p]) for p in self._where if p in nexts
        }
        return {p: nexts[p] for p in self._asked}

    def check(self, copied: Mapping[Part, int]) -> None:
        """Compare the counts noted by `ask` with what `copied` found; report any growth."""
        for part, o in sorted(copied.items()):
            asked = self._asked.get(part)
            if asked is None or self._epoch.get(part) != asked[2]:
                continue  # skipped ashore since, or gone: the next check
            read, unread, _ = asked
            reported = self._reported[part]
            if unread is None:
                if self._unread[part] is None:
                    # Counting starts here: earlier losses stay what was reported.
                    self._unread[part] = o + 1 - read - reported
                continue
            lost = o + 1 - read - unread
            if lost > reported:
                self._reported[part] = lost
                alias, topic = self._where[part]
                # The fleet's count is a count of these offsets only if it read them all.
                has = "" if unread else f"; the fleet has {read} of them"
                before = f", {reported} lost before" if reported else ""
                note(
                    f"GAP vessel {alias} topic {topic} partition {part[1]}: {lost - reported} "
                    "records lost, deleted on the vessel before MirrorMaker copied them ashore "
                    f"(MirrorMaker has copied up to vessel offset {o + 1}{has}{before})"
                )
