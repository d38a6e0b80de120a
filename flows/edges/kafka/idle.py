"""When a quiet live partition stops holding the watermark back: a pure rule.

A partition with nothing to read for `idle_s` is *idle* unless its broker still
holds records it has not read (then it is late, not idle: a leader failing over, a
slow fetch). It says so again every `idle_s`. A partition that delivers again after
a pause of at least `RESUME_PAUSES` timeouts reports RESUMED, which voids the other
partitions' idle claims (see `flows.watermark`). Time is passed in, so tests drive
it with a fake clock; the live consumer only feeds it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from flows.watermark import PartState

#: A pause this many idle timeouts long counts as the stream having stopped.
RESUME_PAUSES: Final = 3


@dataclass(slots=True)
class IdleRule:
    """The idle state of one live partition, driven by `delivered` and `quiet`."""

    idle_s: float
    quiet_since: float  # when the partition last delivered, or last said it was idle
    idle_since: float = 0.0  # when the current idle spell began
    idle: bool = False

    def delivered(self, now: float) -> PartState:
        """Records arrived: ACTIVE, or RESUMED after a real pause."""
        paused = self.idle and now - self.idle_since >= RESUME_PAUSES * self.idle_s
        self.quiet_since, self.idle = now, False
        return PartState.RESUMED if paused else PartState.ACTIVE

    def quiet(self, now: float, has_backlog: Callable[[], bool]) -> bool:
        """Nothing arrived: whether to say IDLE now (`has_backlog` is asked only then)."""
        if now - self.quiet_since < self.idle_s or has_backlog():
            return False
        if not self.idle:
            self.idle_since = now
        self.quiet_since, self.idle = now, True
        return True
