"""When a quiet live partition stops holding the watermark back: a pure rule.

A partition with nothing to read for `idle_s` is *idle* unless its broker still
holds records it has not read (then it is late, not idle: a leader failing over, a
slow fetch). It says so again every `idle_s`. A partition that delivers again after
it said it was idle reports RESUMED, which voids the other partitions' idle claims
(see `flows.watermark`): a stream that stopped everywhere and starts again must not
let its first partition to deliver run ahead of the rest, however short the pause.
Time is passed in, so tests drive it with a fake clock; the live consumer only feeds it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flows.watermark import PartState


@dataclass(slots=True)
class IdleRule:
    """The idle state of one live partition, driven by `delivered` and `quiet`."""

    idle_s: float
    quiet_since: float  # when the partition last delivered, or last said it was idle
    idle: bool = False  # said IDLE since it last delivered

    def delivered(self, now: float) -> PartState:
        """Records arrived: ACTIVE, or RESUMED if the partition had said it was idle."""
        resumed = self.idle
        self.quiet_since, self.idle = now, False
        return PartState.RESUMED if resumed else PartState.ACTIVE

    def quiet(self, now: float, has_backlog: Callable[[], bool]) -> bool:
        """Nothing arrived: whether to say IDLE now (`has_backlog` is asked only then)."""
        if now - self.quiet_since < self.idle_s or has_backlog():
            return False
        self.quiet_since, self.idle = now, True
        return True
