"""A reefer container as planned: identity, cargo, reading schedule and the events it gets.

`Container` is filled in by the planners in `flows.sim.failures` (one `Failure`,
defrosts, re-sends) and read by the emitter.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from flows.sim.config import MINUTE
from flows.sim.physics import Commodity


@dataclass(frozen=True, slots=True)
class Drift:
    """A planned temperature drift: unit down from `start` to `repair`, back in band at `end`."""

    start: int
    repair: int
    curve: tuple[float, ...]
    power_off: bool

    @property
    def end(self) -> int:
        return self.start + MINUTE * len(self.curve)


@dataclass(frozen=True, slots=True)
class Failure:
    """One injected failure of a container and what it does to its readings."""

    kind: str
    start: int
    end: int
    expect: tuple[str, ...]
    note: str
    drift: Drift | None = None
    dropped: range = range(0)  # reading indices never sent
    door: dict[int, float] = field(default_factory=dict)  # reading index -> temp effect, °C
    bad: dict[int, tuple[str, float]] = field(default_factory=dict)  # reading -> field, value
    gas: dict[int, tuple[float, float]] = field(default_factory=dict)  # reading -> co2, o2
    off: frozenset[int] = frozenset()  # reading indices without power


@dataclass(slots=True, eq=False)
class Container:
    """A reefer container: identity, cargo, reading schedule and planned events."""

    ci: int
    cid: str
    commodity: Commodity
    setpoint: float
    times: list[int]  # reading timestamps, epoch seconds
    ambient_offset: float  # stowage: on deck in the sun or deep in the hold
    return_delta: float  # return air above supply air, for supply-controlled cargo
    humidity: float
    co2: float  # the healthy CO2 level, %
    o2: float  # the healthy O2 level, %
    ca: tuple[float, float] | None = None  # controlled atmosphere: CO2 and O2 setpoints, %
    failure: Failure | None = None
    defrost: dict[int, float] = field(default_factory=dict)  # reading index -> temp rise, °C
    duplicate: set[int] = field(default_factory=set)  # reading indices sent twice
    late_at: dict[int, list[int]] = field(default_factory=dict)  # after reading -> late copies
    late_sources: set[int] = field(default_factory=set)

    def in_failure(self, t: int) -> bool:
        return self.failure is not None and self.failure.start <= t <= self.failure.end


def reading_times(rng: random.Random, t0: int, t_end: int) -> list[int]:
    """A fixed interval of 5-15 min, jittered by up to 30 s, from an offset in the first 15 min."""
    interval = rng.randint(5, 15) * MINUTE
    first = t0 + rng.randrange(15 * MINUTE)
    rnd = rng.random  # randint is slow for one draw per reading
    times: list[int] = []
    n, t = 0, first
    while t < t_end:
        times.append(t)
        n += 1
        t = first + n * interval + int(rnd() * 61) - 30
    return times
