"""Records held far ahead of their vessel's clock, until other sources corroborate them.

A device clock that says 2099 must not move its vessel's event time; a gateway that
was off for two days must. A record more than `max_ahead` ahead of its vessel's clock
is held. Once held records from enough distinct sources (3, or every source the vessel
has shown if fewer, never fewer than 2) lie within `max_ahead` of one another, the
clock has really moved: that group is released in order of (ts, arrival). A held
record not corroborated by the time the clock has moved another `max_ahead`, or by the
end of input, is dead-lettered by the caller; so is the longest held one past the cap.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from flows.events import Position, Telemetry

#: A vessel holds at most this many records; past that the one held longest goes.
HOLD_CAP: Final = 10_000
#: The vessel's position feed, as a source (container ids never look like this).
POSITION_SOURCE: Final = ":position"
#: Held records from this many distinct sources corroborate one another.
CORROBORATING_SOURCES: Final = 3


def source_of(record: Telemetry | Position) -> str:
    """Which of its vessel's sources a record comes from."""
    return record.container_id if isinstance(record, Telemetry) else POSITION_SOURCE


@dataclass(slots=True)
class Held:
    """One held record: when (vessel event time) and in which order it was held."""

    record: Telemetry | Position
    held_at: int
    seq: int


@dataclass(slots=True)
class Holding:
    """One vessel's held records, and the sources it has shown (up to the 3 that matter).

    `times` keeps each source's held timestamps sorted, so that most holds (the same
    broken clock again and again) are ruled out as a group without a scan.
    """

    held: list[Held] = field(default_factory=list)
    sources: set[str] = field(default_factory=set)
    times: dict[str, list[int]] = field(default_factory=dict)
    seq: int = 0

    def saw(self, source: str) -> None:
        """Remember a source of the vessel (only the count up to 3 matters)."""
        if len(self.sources) < CORROBORATING_SOURCES:
            self.sources.add(source)

    def hold(self, record: Telemetry | Position, event_time: int) -> Held | None:
        """Hold a record; return the one held longest if the cap is passed."""
        source = source_of(record)
        self.saw(source)
        self.held.append(Held(record, event_time, self.seq))
        self.seq += 1
        insort(self.times.setdefault(source, []), record.ts)
        if len(self.held) <= HOLD_CAP:
            return None
        evicted = self.held.pop(0)
        self._forget([evicted])
        return evicted

    def corroborated(self, record: Telemetry | Position, max_ahead: int) -> list[Held]:
        """After holding `record`: remove and return the group it completes, in (ts,
        arrival) order; empty when it completes none."""
        enough = max(2, min(CORROBORATING_SOURCES, len(self.sources)))
        lo_ts, hi_ts = record.ts - max_ahead, record.ts + max_ahead
        near = 0
        for times in self.times.values():
            i = bisect_left(times, lo_ts)
            if i < len(times) and times[i] <= hi_ts:
                near += 1
        if near < enough:
            return []
        ordered = sorted(
            (h for h in self.held if lo_ts <= h.record.ts <= hi_ts),
            key=lambda h: (h.record.ts, h.seq),
        )
        counts: Counter[str] = Counter()
        lo = 0
        for hi, h in enumerate(ordered):
            counts[source_of(h.record)] += 1
            while h.record.ts - ordered[lo].record.ts > max_ahead:
                gone = source_of(ordered[lo].record)
                counts[gone] -= 1
                if not counts[gone]:
                    del counts[gone]
                lo += 1
            if len(counts) >= enough:
                limit = ordered[lo].record.ts + max_ahead
                end = hi + 1
                while end < len(ordered) and ordered[end].record.ts <= limit:
                    end += 1
                group = ordered[lo:end]
                taken = {id(g) for g in group}
                self.held = [x for x in self.held if id(x) not in taken]
                self._forget(group)
                return group
        return []

    def release(self, where: Callable[[Held], bool]) -> list[Held]:
        """Remove and return the held records `where` is true of, in arrival order."""
        gone = [h for h in self.held if where(h)]
        if gone:
            self.held = [h for h in self.held if not where(h)]
            self._forget(gone)
        return gone

    def _forget(self, gone: list[Held]) -> None:
        for h in gone:
            source = source_of(h.record)
            times = self.times[source]
            del times[bisect_left(times, h.record.ts)]
            if not times:
                del self.times[source]
