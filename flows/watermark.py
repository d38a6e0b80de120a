"""Deterministic event-time merge of input partitions (the watermark).

Each partition keeps its own order. A record's merge key is its partition's event
time at that record: the running maximum `ts` of the partition's records up to and
including it, so keys never decrease within a partition and a late record keeps
its place. One wrong device clock must not move it: a record more than `max_ahead`
ahead of the partition's event time waits until the partition's next records show
whether the stream really jumped (see `_Part`).
Records leave the merge in (key, partition index, sequence) order, and
only once every partition that could still send an earlier key has moved past it
(the watermark). The order therefore depends only on each partition's contents,
never on how partitions interleave, how many workers read them, or on a resume.

An *ended* partition (end of file, or the end offset of a bounded Kafka run) never
holds the merge back. An *idle* partition (a live Kafka partition with nothing to
read for the idle timeout, re-confirmed every timeout) stops holding it back. When an
idle partition comes back (RESUMED), every other idle claim is void
until re-confirmed, so a backlog that arrives in a burst after an outage still merges
in order. What a partition delivers after the others moved on without it is released
at once, behind the watermark: the one place where timing can change results, and
only for live streams.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from flows.events import DeadLetter, Position, Record, Telemetry

NO_TIME: Final = -(2**62)
NO_LIMIT: Final = 2**62
#: Far-ahead records in a row from this many sources, or this many records, are a jump.
JUMP_SOURCES: Final = 3
JUMP_RECORDS: Final = 10


class PartState(Enum):
    """Whether a partition can still hold the watermark back."""

    ACTIVE = "active"
    IDLE = "idle"
    ENDED = "ended"
    # Active again after an idle claim: every idle claim is void until re-confirmed.
    RESUMED = "resumed"


@dataclass(slots=True)
class Batch:
    """What a source partition hands to the merge: parsed records and its state."""

    part: int  # index into `parts`
    parts: tuple[str, ...]  # every partition of the input, in tie-break order
    records: list[Record]
    state: PartState = PartState.ACTIVE


Entry = tuple[int, int, int, Record]  # (key, partition index, sequence, record)


def _source(record: Telemetry | Position) -> str:
    return record.container_id if isinstance(record, Telemetry) else f":{record.vessel_id}"


@dataclass(slots=True)
class _Part:
    """One partition: its event time (the merge key), and records not yet keyed.

    A record more than `max_ahead` ahead of the event time starts a *run* that waits,
    unkeyed, until the partition shows what it was: a record near the event time again
    ends it as noise (one wrong clock: the run is keyed at the event time, which does
    not move); records from `JUMP_SOURCES` sources, or `JUMP_RECORDS` records, far ahead
    within `max_ahead` of one another make it a jump (the stream really moved on: the
    gateway was off). Both depend only on the partition's own records.
    """

    event_time: int = NO_TIME  # running maximum ts: no later record has a lower key
    seq: int = 0
    state: PartState = PartState.ACTIVE
    pending: list[Entry] = field(default_factory=list)  # sorted: keys never decrease
    run: list[Record] = field(default_factory=list)  # from the first far-ahead record on
    run_sources: set[str] = field(default_factory=set)
    run_first: int = 0  # ts of the run's first record
    run_records: int = 0  # far-ahead records in the run (dead letters aside)

    def key(self, records: list[Record], index: int, max_ahead: int) -> list[Entry]:
        """Key these records (and any run they settle); return the entries, in order."""
        out: list[Entry] = []
        for record in records:
            if self.run:
                self._extend_run(record, index, max_ahead, out)
            else:
                self._key_one(record, index, max_ahead, out)
        return out

    def settle(self, index: int) -> list[Entry]:
        """The partition ended: a run still open was noise."""
        out: list[Entry] = []
        self._end_run(index, out)
        return out

    def _key_one(self, record: Record, index: int, max_ahead: int, out: list[Entry]) -> None:
        if not isinstance(record, DeadLetter) and record.ts > self.event_time:
            if self.event_time != NO_TIME and record.ts - self.event_time > max_ahead:
                self.run.append(record)
                self.run_sources.add(_source(record))
                self.run_first, self.run_records = record.ts, 1
                return
            self.event_time = record.ts
        out.append((self.event_time, index, self.seq, record))
        self.seq += 1

    def _extend_run(self, record: Record, index: int, max_ahead: int, out: list[Entry]) -> None:
        if isinstance(record, DeadLetter):
            self.run.append(record)
            return
        if record.ts - self.event_time <= max_ahead:  # back near the event time: noise
            self._end_run(index, out)
            self._key_one(record, index, max_ahead, out)
            return
        if abs(record.ts - self.run_first) > max_ahead:  # far from the run too: a new one
            self._end_run(index, out)
            self._key_one(record, index, max_ahead, out)
            return
        self.run.append(record)
        self.run_sources.add(_source(record))
        self.run_records += 1
        if len(self.run_sources) >= JUMP_SOURCES or self.run_records >= JUMP_RECORDS:
            run, self.run = self.run, []
            self.run_sources.clear()
            for r in run:  # a jump: the run moves the event time as it goes
                if not isinstance(r, DeadLetter) and r.ts > self.event_time:
                    self.event_time = r.ts
                out.append((self.event_time, index, self.seq, r))
                self.seq += 1

    def _end_run(self, index: int, out: list[Entry]) -> None:
        for r in self.run:  # noise: keyed at the event time, which stays
            out.append((self.event_time, index, self.seq, r))
            self.seq += 1
        self.run = []
        self.run_sources.clear()


@dataclass(slots=True)
class PartitionMerge:
    """Merges batches from all partitions into one canonical order."""

    max_ahead: int = NO_LIMIT
    parts: tuple[str, ...] = ()
    _parts: list[_Part] = field(default_factory=list)

    def push(self, batch: Batch) -> list[Record]:
        """Add one batch; return the records that can now be released, in order."""
        if not self._parts:
            self.parts = batch.parts
            self._parts = [_Part() for _ in batch.parts]
        elif batch.parts != self.parts:
            raise ValueError(
                f"input partitions changed from {list(self.parts)} to {list(batch.parts)}; "
                "a resumed run must read the same inputs (or start with a fresh recovery dir)"
            )
        part = self._parts[batch.part]
        if batch.state is PartState.RESUMED:
            # A stream that resumes after a pause usually resumes everywhere: the
            # other idle claims are void until confirmed again, so a backlog that
            # arrives in a burst still merges in event-time order.
            for other in self._parts:
                if other.state is PartState.IDLE:
                    other.state = PartState.ACTIVE
            batch.state = PartState.ACTIVE
        entries = part.key(batch.records, batch.part, self.max_ahead)
        if batch.state is PartState.ENDED:
            entries += part.settle(batch.part)
        part.state = batch.state
        if entries and self._only_blocker(batch.part):
            # Fast path: nothing else is queued or can come earlier (one partition,
            # or all others ended), so the entries are already in canonical order.
            return [entry[3] for entry in entries]
        part.pending += entries
        return self._release()

    def finish(self) -> list[Record]:
        """The whole input ended: release everything still queued."""
        for index, part in enumerate(self._parts):
            part.pending += part.settle(index)
            part.state = PartState.ENDED
        return self._release()

    def resumed(self) -> None:
        """A run resumes from this state: ended partitions may have more to say.

        A partition that ended before the snapshot (a finished bounded run) would
        otherwise hold nothing back, and the first partition to deliver new records
        would release them all at once, moving the clock past everyone else. Every
        source reports its end again, so an ended partition is active until it does.
        """
        for part in self._parts:
            if part.state is PartState.ENDED:
                part.state = PartState.ACTIVE

    @property
    def buffered(self) -> int:
        """Records waiting for the watermark."""
        return sum(len(p.pending) + len(p.run) for p in self._parts)

    @property
    def ended(self) -> bool:
        """True once every partition has ended."""
        return bool(self._parts) and all(p.state is PartState.ENDED for p in self._parts)

    def _only_blocker(self, index: int) -> bool:
        return all(
            not p.pending and (i == index or p.state is not PartState.ACTIVE)
            for i, p in enumerate(self._parts)
        )

    def _release(self) -> list[Record]:
        """Release every pending record that no active partition can still precede.

        An active partition's later records all have keys at or above its event time,
        so a record is safe below the lowest (event time, index) of the *other*
        active partitions. Each partition's safe prefix is found by bisection; the
        prefixes, already sorted, merge in one sort (cheaper than a heap per record).
        """
        lowest: tuple[int, int] | None = None
        second: tuple[int, int] | None = None
        for i, p in enumerate(self._parts):
            if p.state is PartState.ACTIVE:
                bound = (p.event_time, i)
                if lowest is None or bound < lowest:
                    lowest, second = bound, lowest
                elif second is None or bound < second:
                    second = bound
        released: list[Entry] = []
        runs = 0
        for i, p in enumerate(self._parts):
            if not p.pending:
                continue
            limit = second if lowest is not None and lowest[1] == i else lowest
            cut = len(p.pending) if limit is None else bisect_left(p.pending, limit)
            if cut:
                released += p.pending[:cut]
                del p.pending[:cut]
                runs += 1
        if runs > 1:
            released.sort()
        return [entry[3] for entry in released]
