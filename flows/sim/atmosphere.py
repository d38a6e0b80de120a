"""The air in the box: CO2 and O2 readings, controlled-atmosphere cargo, gas failures.

A unit carrying ordinary cargo breathes outside air through its fresh-air vent:
about 0.04 % CO2 and 20.9 % O2, with a little more CO2 (and correspondingly less
O2) where fruit respires. A controlled-atmosphere (CA) unit holds CO2 and O2
setpoints instead (e.g. 5 % and 3 %) with a scrubber and a nitrogen membrane.

The contract judges the atmosphere by 30-minute means of the readings, so the
design of a gas failure is checked on the very values the emitter will send:
`clear_atmosphere` accepts it only when every mean stays clear of its limit and
the means cross the limit once out and once back. The planner draws those values
(`GasDrift.readings`); the emitter sends them as they are.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from flows.sim.config import MINUTE
from flows.sim.physics import sensor_noise

# The contract's default limits for `atmosphere_out_of_range`.
CO2_MAX_PCT: Final = 10.0
O2_MIN_PCT: Final = 12.0
ATMOS_TOLERANCE_PCT: Final = 2.0
ATMOS_WINDOW_S: Final = 30 * MINUTE

AIR_O2_PCT: Final = 20.95
CO2: Final = "co2"
O2: Final = "o2"
#: No 30-minute mean of a gas failure comes closer than this to its limit.
CLEAR_PCT: Final = 0.25
# A CA unit holds each gas within its controller bias plus this noise of its setpoint.
CA_BIAS_PCT: Final = 0.2
CA_CO2_NOISE_PCT: Final = 0.3
CA_O2_NOISE_PCT: Final = 0.2


def gas_reading(
    co2_level: float, o2_level: float, controlled: bool, rnd: Callable[[], float]
) -> tuple[float, float]:
    """A healthy unit's (co2_pct, o2_pct) reading, before `emitted_gas`.

    Fresh-air units: CO2 within 7.5 % of the unit's level, O2 the air's less what
    respiration took, ±0.05. CA units: each gas within its noise of the held level.
    """
    if controlled:
        return (
            co2_level + 2.0 * CA_CO2_NOISE_PCT * (rnd() - 0.5),
            o2_level + 2.0 * CA_O2_NOISE_PCT * (rnd() - 0.5),
        )
    co2 = co2_level * (1.0 + 0.15 * (rnd() - 0.5))
    return co2, AIR_O2_PCT - 0.9 * co2 + 0.1 * (rnd() - 0.5)


def emitted_gas(co2: float, o2: float) -> tuple[float, float]:
    """The values as written to the record: two decimals, CO2 at least 0.01."""
    return round(max(co2, 0.01), 2), round(o2, 2)


@dataclass(frozen=True, slots=True)
class GasDrift:
    """One gas leaving its healthy level: a linear ramp, a plateau, then a return.

    `recover_min` 0 is a step back (a failed sensor replaced); otherwise the level
    returns linearly over that many minutes (a scrubber catching up after repair).
    """

    gas: str
    base: float
    peak: float
    ramp_min: int
    plateau_min: int
    recover_min: int

    @property
    def duration_s(self) -> int:
        return MINUTE * (self.ramp_min + self.plateau_min + self.recover_min)

    def level(self, dt_s: int) -> float:
        """The drifting gas's true level `dt_s` seconds after the failure began."""
        m = dt_s / MINUTE
        if m < 0.0 or m >= self.ramp_min + self.plateau_min + self.recover_min:
            return self.base
        if m < self.ramp_min:
            return self.base + (self.peak - self.base) * m / self.ramp_min
        m -= self.ramp_min + self.plateau_min
        if m < 0.0:
            return self.peak
        return self.peak + (self.base - self.peak) * m / self.recover_min

    def readings(
        self,
        times: Sequence[int],
        start: int,
        levels: tuple[float, float],
        controlled: bool,
        rng: random.Random,
    ) -> list[tuple[float, float]]:
        """Emitted (co2_pct, o2_pct) at `times`: healthy, the drifting gas overridden
        inside the failure with noise that grows with the level (bounded by 3 sigma)."""
        rnd = rng.random
        out: list[tuple[float, float]] = []
        for t in times:
            co2, o2 = gas_reading(*levels, controlled, rnd)
            if start <= t < start + self.duration_s:
                value = self.level(t - start)
                value += sensor_noise(rnd, 0.05 + 0.02 * value)
                co2, o2 = (value, o2) if self.gas == CO2 else (co2, value)
            out.append(emitted_gas(co2, o2))
        return out


def _distance(mean: float, setpoint: float | None, gas: str) -> float:
    """Signed distance of a 30-minute mean from its limit: > 0 in range, < 0 out."""
    if setpoint is not None:
        return ATMOS_TOLERANCE_PCT - abs(mean - setpoint)
    return CO2_MAX_PCT - mean if gas == CO2 else mean - O2_MIN_PCT


def clear_atmosphere(
    times: Sequence[int],
    gas: Sequence[tuple[float, float]],
    setpoints: tuple[float | None, float | None],
    start: int,
) -> int | None:
    """When the contract's atmosphere alert of these readings closes, if it is certain.

    `times` and `gas` are consecutive readings of one container that cover its
    failure and 30 minutes on either side; every reading whose 30 minutes lie
    inside them is evaluated. With the window's far edge counted in or out alike,
    the means must stay `CLEAR_PCT` from their limits, be out of range on exactly
    one run of readings that starts and ends inside `times`, and its alert's
    `started_at` (the window's first reading) must not precede `start`. Returns
    the latest closing reading's time, or None when any of that fails.
    """
    closes: list[int] = []
    for inclusive in (True, False):
        lo = 0
        state = "before"  # -> "out" -> "after"
        for k, t in enumerate(times):
            edge = t - ATMOS_WINDOW_S
            if edge < times[0]:
                continue  # this window reaches before the readings given
            while times[lo] < edge or (not inclusive and times[lo] == edge):
                lo += 1
            n = k + 1 - lo
            distances = [
                _distance(sum(g[i] for g in gas[lo : k + 1]) / n, setpoints[i], name)
                for i, name in enumerate((CO2, O2))
            ]
            if min(abs(d) for d in distances) < CLEAR_PCT:
                return None
            out = min(distances) < 0.0
            if state == "before" and out:
                if times[lo] < start:
                    return None
                state = "out"
            elif state == "out" and not out:
                state = "after"
                closes.append(t)
            elif state == "after" and out:
                return None  # a second episode
        if state != "after":
            return None
    return max(closes)
