"""Deterministic event-time merge of input partitions (the watermark).

Each partition keeps its own order. A record's merge key is its partition's event
time at that record: the running maximum `ts` of the partition's records up to and
including it, so keys never decrease within a partition and a late record keeps
its place. One wrong device clock must not move it: a record more than `max_ahead`
ahead of the partition's event time leaves it alone, unless `JUMP_RUN` such records
in a row, within `max_ahead` of one another, show that the stream really jumped.
Records leave the merge in (key, partition index, sequence) order, and
only once every partition that could still send an earlier key has moved past it
(the watermark). The order therefore depends only on each partition's contents,
never on how partitions interleave, how many workers read them, or on a resume.

An *ended* partition (end of file, or the end offset of a bounded Kafka run) never
holds the merge back. An *idle* partition (a live Kafka partition with nothing to
read for the idle timeout, re-confirmed every timeout) stops holding it back. When a
partition comes back after a long pause (RESUMED), every other idle claim is void
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

from flows.events import DeadLetter, Record

NO_TIME: Final = -(2**62)
NO_LIMIT: Final = 2**62
#: This many records in a row far ahead of a partition's clock move it.
JUMP_RUN: Final = 3


class PartState(Enum):
    """Whether a partition can still hold the watermark back."""

    ACTIVE = "active"
    IDLE = "idle"
    ENDED = "ended"
    # Active again after a long pause: every idle claim is void until re-confirmed.
    RESUMED = "resumed"


@dataclass(slots=True)
class Batch:
    """What a source partition hands to the merge: parsed records and its state."""

    part: int  # index into `parts`
    parts: tuple[str, ...]  # every partition of the input, in tie-break order
    records: list[Record]
    state: PartState = PartState.ACTIVE


Entry = tuple[int, int, int, Record]  # (key, partition index, sequence, record)


@dataclass(slots=True)
class _Part:
    event_time: int = NO_TIME  # running maximum ts: no later record has a lower key
    seq: int = 0
    state: PartState = PartState.ACTIVE
    pending: list[Entry] = field(default_factory=list)  # sorted: keys never decrease
    ahead: list[int] = field(default_factory=list)  # the current run of far-ahead ts

    def clock(self, ts: int, max_ahead: int) -> int:
        """Move the partition's event time for a record at `ts`; return it."""
        event_time = self.event_time
        if ts <= event_time:
            return event_time
        if ts - event_time <= max_ahead or event_time == NO_TIME:
            self.ahead.clear()
        else:
            ahead = self.ahead
            ahead.append(ts)
            if len(ahead) < JUMP_RUN:
                return event_time
            if max(ahead) - min(ahead) > max_ahead:
                del ahead[0]
                return event_time
            ts = max(ahead)
            ahead.clear()
        self.event_time = ts
        return ts


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
            # A stream that resumes after a long pause usually resumes everywhere: the
            # other idle claims are void until confirmed again, so a backlog that
            # arrives in a burst still merges in event-time order.
            for other in self._parts:
                if other.state is PartState.IDLE:
                    other.state = PartState.ACTIVE
            batch.state = PartState.ACTIVE
        if batch.records and self._only_blocker(batch.part):
            # Fast path: nothing else is queued or can come earlier (one partition,
            # or all others ended), so the batch is already in canonical order.
            clock, max_ahead = part.clock, self.max_ahead
            for record in batch.records:
                if not isinstance(record, DeadLetter) and record.ts > part.event_time:
                    clock(record.ts, max_ahead)
            part.seq += len(batch.records)
            part.state = batch.state
            return batch.records
        seq, index, max_ahead = part.seq, batch.part, self.max_ahead
        append, clock = part.pending.append, part.clock
        for record in batch.records:
            if not isinstance(record, DeadLetter) and record.ts > part.event_time:
                clock(record.ts, max_ahead)
            append((part.event_time, index, seq, record))
            seq += 1
        part.seq, part.state = seq, batch.state
        return self._release()

    def finish(self) -> list[Record]:
        """The whole input ended: release everything still queued."""
        for part in self._parts:
            part.state = PartState.ENDED
        return self._release()

    @property
    def buffered(self) -> int:
        """Records waiting for the watermark."""
        return sum(len(p.pending) for p in self._parts)

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
