"""The failures behind contract version 2's rules: failing gas sensors, scrubbers, flicker.

Each design function returns a `Failure` whose label's `expect` is certain at the
contract's default thresholds, or None when the container or the draw does not
allow one (the planner then tries another draw or container):

- `gas_sensor_failure`: a fresh-air unit's CO2 sensor drifts up to 12.5-19.5 %
  or its O2 sensor down to 5-10.5 % within 20-75 min and reads so for 95-210
  min, until the sensor is replaced. Expects `atmosphere_out_of_range`.
- `scrubber_failure`: a CA unit's scrubber stops and respiration lifts CO2 4-9
  points above its setpoint within 30-90 min; it stays there 95-180 min until
  the repaired scrubber pulls it back. Expects `atmosphere_out_of_range`.

Noise included, every reading of a plateau lies at least half a point beyond
the limit, and a plateau of 95 minutes holds readings an hour apart whatever
the unit's 5-15 minute interval: over an hour clearly out.
- `power_flicker`: 3-4 outages of 2-3 readings each, all within 4 h, where the
  box stays within 1.1 °C of its setpoint. Expects `power_loss` (one per
  outage) and `power_unstable`.

Gas values are drawn here, for the readings from 40 minutes before to 40 minutes
after the failure, and checked with `clear_atmosphere` on exactly those values.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable
from typing import Final

from flows.contract import ATMOSPHERE, POWER_LOSS, POWER_UNSTABLE
from flows.sim.atmosphere import CO2, O2, GasDrift, clear_atmosphere
from flows.sim.config import (
    GAS_SENSOR_FAILURE,
    HOUR,
    MINUTE,
    POWER_FLICKER,
    SCRUBBER_FAILURE,
)
from flows.sim.container import Container, Drift, Failure
from flows.sim.physics import IN_BAND_C, flicker_curve, stays_in_band

_TRIES: Final = 24
_GAS_MARGIN_S: Final = 40 * MINUTE  # gas values drawn this far either side of a failure
_FLICKER_WITHIN_S: Final = 4 * HOUR  # third outage's alert opens this soon after the first
_UNSTABLE_QUIET_S: Final = 6 * HOUR  # power_unstable closes this long after the last outage

#: (ambient - setpoint) per minute at a container from a start time, for a duration.
Targets = Callable[[int, int], list[float]]


def gas_sensor_failure(
    c: Container, lo: int, hi: int, rng: random.Random, variant: int
) -> Failure | None:
    """A fresh-air unit's CO2 sensor reading high (even `variant`) or O2 sensor low (odd)."""
    if c.ca is not None:
        return None  # CA units have their own failure, judged against their setpoints
    gas = CO2 if variant % 2 == 0 else O2
    for _ in range(_TRIES):
        ramp, plateau = rng.randint(20, 75), rng.randint(95, 210)
        if gas == CO2:
            drift = GasDrift(CO2, c.co2, rng.uniform(12.5, 19.5), ramp, plateau, 0)
        else:
            drift = GasDrift(O2, c.o2, rng.uniform(5.0, 10.5), ramp, plateau, 0)
        note = (
            f"{c.commodity.name}: {gas.upper()} sensor drifts from {drift.base:.2f} % to "
            f"{drift.peak:.1f} % over {ramp} min, reads so for {plateau} min, then replaced"
        )
        failure = _gas_failure(c, lo, hi, rng, drift, GAS_SENSOR_FAILURE, note)
        if failure is not None:
            return failure
    return None


def scrubber_failure(c: Container, lo: int, hi: int, rng: random.Random) -> Failure | None:
    """A CA unit's CO2 scrubber stops: CO2 climbs well past its setpoint's tolerance."""
    if c.ca is None:
        return None
    for _ in range(_TRIES):
        ramp, plateau, recover = rng.randint(30, 90), rng.randint(95, 180), rng.randint(20, 60)
        drift = GasDrift(CO2, c.co2, c.ca[0] + rng.uniform(4.0, 9.0), ramp, plateau, recover)
        note = (
            f"{c.commodity.name} under CA {c.ca[0]:g} % CO2 / {c.ca[1]:g} % O2: scrubber down, "
            f"CO2 climbs to {drift.peak:.1f} % over {ramp} min, stays {plateau} min, "
            f"pulled back over {recover} min"
        )
        failure = _gas_failure(c, lo, hi, rng, drift, SCRUBBER_FAILURE, note)
        if failure is not None:
            return failure
    return None


def _gas_failure(
    c: Container, lo: int, hi: int, rng: random.Random, drift: GasDrift, kind: str, note: str
) -> Failure | None:
    latest = hi - drift.duration_s - _GAS_MARGIN_S
    if latest <= lo:
        return None
    start = rng.randint(lo, latest)
    i = bisect.bisect_left(c.times, start - _GAS_MARGIN_S)
    j = bisect.bisect_right(c.times, start + drift.duration_s + _GAS_MARGIN_S)
    times = c.times[i:j]
    gas = drift.readings(times, start, (c.co2, c.o2), c.ca is not None, rng)
    end = clear_atmosphere(times, gas, c.ca or (None, None), start)
    if end is None or end > hi:
        return None
    return Failure(kind, start, end, (ATMOSPHERE,), note, gas=dict(enumerate(gas, i)))


def power_flicker(
    c: Container, lo: int, hi: int, rng: random.Random, targets: Targets
) -> Failure | None:
    """Short outages in a row; each is a `power_loss`, three within 6 h a `power_unstable`."""
    times = c.times
    # Up to 24 readings of flicker (at most 6 h), then 6 quiet hours, all before `hi`.
    first = bisect.bisect_left(times, lo + 5 * MINUTE)
    last = bisect.bisect_left(times, hi - _UNSTABLE_QUIET_S - 6 * HOUR)
    if last <= first:
        return None
    for _ in range(_TRIES):
        count = rng.randint(3, 4)
        lengths = [rng.randint(2, 3) for _ in range(count)]
        gaps = [rng.randint(1, 4) for _ in range(count - 1)]
        a = rng.randrange(first, last)
        outages: list[range] = []
        for k, length in enumerate(lengths):
            outages.append(range(a, a + length))
            a += length + (gaps[k] if k < len(gaps) else 0)
        # Each outage's alert opens at its second reading and closes at the next one
        # with power; the third must open well within 6 h of the first.
        if times[outages[2][1]] - times[outages[0][1]] > _FLICKER_WITHIN_S:
            continue
        quiet = bisect.bisect_left(times, times[outages[-1].stop] + _UNSTABLE_QUIET_S)
        if quiet >= len(times) or times[quiet] > hi:
            continue
        # The supply drops 0.5-2.5 min before an outage's first reading and returns
        # as long after its last (readings are at least 4 min apart).
        spans = [
            (times[r[0]] - rng.randint(30, 150), times[r[-1]] + rng.randint(30, 150))
            for r in outages
        ]
        start = spans[0][0]
        minutes = (spans[-1][1] - start) // MINUTE + 2
        off = [any(s <= start + m * MINUTE <= e for s, e in spans) for m in range(minutes)]
        # Without fans the air warms slowly; between outages the unit pulls back.
        tau_h, pulldown = rng.uniform(10.0, 16.0), rng.uniform(6.0, 12.0)
        curve = flicker_curve(targets(start, minutes * MINUTE), off, tau_h, pulldown)
        if not stays_in_band(curve):
            continue
        peak = max(curve, key=abs, default=0.0)
        note = (
            f"{c.commodity.name} at {c.setpoint:+.1f} C: power flickers, {count} outages of "
            f"{'/'.join(map(str, lengths))} readings in "
            f"{(spans[-1][1] - start) / HOUR:.1f} h (tau {tau_h:.1f} h), peak deviation "
            f"{peak:+.1f} C, kept within {IN_BAND_C} C"
        )
        return Failure(
            POWER_FLICKER,
            start,
            times[quiet],
            (POWER_LOSS, POWER_UNSTABLE),
            note,
            drift=Drift(start, start, tuple(curve), False),
            off=frozenset(n for r in outages for n in r),
        )
    return None
