"""A vessel's event time, the position fixes it can still use, and its containers' timers."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Final

from flows.events import US_PER_S, Position
from flows.rules.holding import Holding

MINUTE: Final = 60 * US_PER_S
POSITION_MAX_AGE: Final = 120 * MINUTE  # the contract's 2 h; not a tunable
NO_TIME: Final = -(2**62)
NO_BOUND: Final = 2**62

# Timer kinds, in firing order for equal deadlines.
TIMER_SILENCE: Final = 0
TIMER_WINDOW: Final = 1

Timer = tuple[int, int, str, int]  # (deadline, kind, container id, token)


@dataclass(slots=True)
class VesselClock:
    """A vessel's event time, its usable positions and its containers' timers.

    `bound` is the latest ts a record may have without being held (event time plus
    the allowed lead; none before the first record).
    """

    event_time: int = NO_TIME
    bound: int = NO_BOUND
    holding: Holding = field(default_factory=Holding)
    position_time: int = NO_TIME
    position_ts: list[int] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)  # a heap
    learning: bool = True  # fewer than the 3 sources that matter to `holding` seen yet
    jumping: bool = False  # a corroborated group is being processed
    # The last answer of `position_at` holds for every ts in [_from, _until).
    _from: int = NO_BOUND
    _until: int = NO_TIME
    _fix: Position | None = None

    def position_at(self, ts: int) -> Position | None:
        """The fix in force at `ts`: the latest at or before it, at most 2 h older."""
        if self._from <= ts < self._until:  # readings of one moment share their fix
            return self._fix
        times = self.position_ts
        i = bisect_right(times, ts) - 1
        after = times[i + 1] if i + 1 < len(times) else NO_BOUND
        fix: Position | None = None
        if i < 0:
            start, end = NO_TIME, after
        elif ts - times[i] > POSITION_MAX_AGE:
            start, end = times[i] + POSITION_MAX_AGE + 1, after
        else:
            start, end = times[i], min(after, times[i] + POSITION_MAX_AGE + 1)
            fix = self.positions[i]
        self._from, self._until, self._fix = start, end, fix
        return fix

    def add_position(self, p: Position) -> bool:
        """Record an in-order fix; return whether the list grew (else it replaced one)."""
        self._from, self._until = NO_BOUND, NO_TIME  # the answers may change
        self.position_time = p.ts
        if self.position_ts and self.position_ts[-1] == p.ts:
            self.positions[-1] = p  # same instant: the later fix wins
            return False
        self.position_ts.append(p.ts)
        self.positions.append(p)
        return True

    def prune_positions(self, oldest_reading: int) -> None:
        """Drop fixes no future reading can use: older than 2 h before the oldest latest
        reading of the vessel's containers (a container's next reading is never older
        than its latest)."""
        horizon = oldest_reading - POSITION_MAX_AGE
        keep = max(0, bisect_right(self.position_ts, horizon) - 1)
        del self.position_ts[:keep], self.positions[:keep]
        self._from, self._until = NO_BOUND, NO_TIME
