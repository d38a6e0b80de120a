"""Which containers fail, how and when; and the routine events: defrosts and re-sends.

`FailurePlanner` designs each failure so that the contract's rules at default
thresholds raise exactly the alert kinds its label expects; the expectations
follow from the physical model's parameters (and, for gas failures, from the
30-minute means of the very values drawn for them), never from running the rules.
The designs of contract version 2's failures live in `flows.sim.episodes`.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence
from typing import Final

from flows.contract import DOOR, EXCURSION, FAULT, POWER_LOSS, SILENT
from flows.sim.config import (
    COMPRESSOR_FAILURE,
    DOOR_OPEN_AT_SEA,
    DOOR_OPEN_IN_PORT,
    FAILURE_KINDS,
    GAS_SENSOR_FAILURE,
    HOUR,
    IMPLAUSIBLE_SENSOR,
    MINUTE,
    POWER_CUT,
    POWER_FLICKER,
    SCRUBBER_FAILURE,
    SILENT_SENSOR,
)
from flows.sim.container import Container, Drift, Failure
from flows.sim.episodes import gas_sensor_failure, power_flicker, scrubber_failure
from flows.sim.physics import IN_BAND_C, clear_excursion, drift_curve, stays_in_band
from flows.sim.voyage import Voyage

# The mix of injected failures: faulty containers take these kinds in turn, so
# every run with at least thirteen faulty containers per vessel has all of them.
FAILURE_MIX: Final = (
    COMPRESSOR_FAILURE,
    POWER_CUT,
    SILENT_SENSOR,
    DOOR_OPEN_AT_SEA,
    GAS_SENSOR_FAILURE,
    IMPLAUSIBLE_SENSOR,
    POWER_FLICKER,
    POWER_CUT,
    COMPRESSOR_FAILURE,
    DOOR_OPEN_IN_PORT,
    SCRUBBER_FAILURE,
    SILENT_SENSOR,
    DOOR_OPEN_AT_SEA,
)
# Kinds that fit almost any container and time, for when a kind finds no host.
_FALLBACK_KINDS: Final = (SILENT_SENSOR, IMPLAUSIBLE_SENSOR)

# Margins from the contract's default thresholds (silence 30 min, door speed 2.0 kn)
# and the physics, used when designing failures.
_EDGE_MARGIN_S: Final = 3 * HOUR  # failures stay this far from first reading and run end
_DEFROST_MARGIN_S: Final = HOUR  # no defrost this close to a failure window
_COMPRESSOR_MIN_DELTA_C: Final = 8.0  # |ambient - setpoint| needed for a compressor failure
_SEA_MARGIN_S: Final = 2 * HOUR  # door at sea only this far inside a leg (speed >> 2 kn)
_PORT_MARGIN_S: Final = HOUR  # door in port only this far inside a port stay
_LATE_WITHIN_S: Final = HOUR

# Power-cut designs. A warming cut lasts long enough for the box to leave the
# tolerance clearly (power_loss and temperature_excursion); a short cut (under an
# hour) goes only where the box barely warms in that time (power_loss alone); any
# cut of 1-6 h is either, whichever the physics makes clear.
_WARMING_CUT: Final = "warming"
_SHORT_CUT: Final = "short"
_ANY_CUT: Final = "any"
_CUT_DESIGNS: Final = (_WARMING_CUT, _ANY_CUT, _SHORT_CUT)

_IMPLAUSIBLE_VALUES: Final = (
    ("temp_c", 85.0),
    ("temp_c", -99.0),
    ("humidity_pct", 140.0),
    ("co2_pct", -1.0),
)


class FailurePlanner:
    """Chooses the faulty containers of one vessel and designs each one's failure.

    Every design keeps clear margins from the contract's default thresholds so that
    the rules raise exactly the label's `expect` kinds; the expectations follow
    from the physical model's parameters, never from running the rules.
    """

    _TRIES: Final = 12
    _CANDIDATES: Final = 80

    def __init__(
        self,
        voyage: Voyage,
        ambient: Sequence[float],
        t0: int,
        t_end: int,
        rng: random.Random,
    ) -> None:
        self.voyage = voyage
        self.ambient = ambient
        self.t0 = t0
        self.t_end = t_end
        self.rng = rng
        self.placed: dict[str, int] = dict.fromkeys(FAILURE_KINDS, 0)
        self.cut_design = _ANY_CUT  # the design of the next power cut

    def assign(self, containers: Sequence[Container], n_faulty: int) -> None:
        """Give `n_faulty` containers one failure each, kinds in `FAILURE_MIX` order."""
        free = list(containers)
        self.rng.shuffle(free)
        for ordinal in range(min(n_faulty, len(free))):
            wanted = FAILURE_MIX[ordinal % len(FAILURE_MIX)]
            attempts = [(wanted, _ANY_CUT), *((k, _ANY_CUT) for k in _FALLBACK_KINDS)]
            if wanted == POWER_CUT:
                # Power cuts take the designs in turn; the 'any' design is the fallback.
                design = _CUT_DESIGNS[self.placed[POWER_CUT] % len(_CUT_DESIGNS)]
                attempts.insert(0, (POWER_CUT, design))
            for kind, design in attempts:
                self.cut_design = design
                host = self._place(kind, free)
                if host is not None:
                    free.remove(host)
                    self.placed[kind] += 1
                    break

    def _place(self, kind: str, free: Sequence[Container]) -> Container | None:
        # Not every container suits every kind (a compressor failure needs cargo far
        # from the ambient), so try candidates in their shuffled order.
        for c in free[: self._CANDIDATES]:
            failure = self.plan(kind, c)
            if failure is not None:
                c.failure = failure
                return c
        return None

    def plan(self, kind: str, c: Container) -> Failure | None:
        """Design a failure of `kind` for `c`, or None when none fits its run."""
        if not c.times:
            return None
        lo, hi = c.times[0] + _EDGE_MARGIN_S, self.t_end - _EDGE_MARGIN_S
        if hi - lo < HOUR:
            return None
        if kind == COMPRESSOR_FAILURE:
            return self._compressor_failure(c, lo, hi)
        if kind == POWER_CUT:
            return self._power_cut(c, lo, hi)
        if kind == SILENT_SENSOR:
            return self._silent_sensor(c, lo, hi)
        if kind == IMPLAUSIBLE_SENSOR:
            return self._implausible_sensor(c, lo, hi)
        if kind == DOOR_OPEN_AT_SEA:
            return self._door(c, lo, hi, at_sea=True)
        if kind == DOOR_OPEN_IN_PORT:
            return self._door(c, lo, hi, at_sea=False)
        if kind == GAS_SENSOR_FAILURE:
            variant = self.placed[GAS_SENSOR_FAILURE]
            return gas_sensor_failure(c, lo, hi, self.rng, variant)
        if kind == SCRUBBER_FAILURE:
            return scrubber_failure(c, lo, hi, self.rng)
        if kind == POWER_FLICKER:
            return power_flicker(
                c, lo, hi, self.rng, lambda start, duration: self._targets(c, start, duration)
            )
        raise ValueError(f"unknown failure kind {kind!r}")

    def _targets(self, c: Container, start: int, duration: int) -> list[float]:
        """Ambient minus setpoint at the container, per minute from `start`."""
        m0 = (start - self.t0) // MINUTE
        return [
            self.ambient[m0 + m] + c.ambient_offset - c.setpoint
            for m in range(-(-duration // MINUTE))
        ]

    def _compressor_failure(self, c: Container, lo: int, hi: int) -> Failure | None:
        rng = self.rng
        for _ in range(self._TRIES):
            duration = rng.randint(3 * HOUR, 8 * HOUR)
            tau_h, pulldown = rng.uniform(2.5, 4.5), rng.uniform(6.0, 12.0)
            if hi - duration <= lo:
                return None
            start = rng.randint(lo, hi - duration)
            targets = self._targets(c, start, duration)
            # Only where the ambient stays at least 8 °C above the setpoint for the
            # whole failure (in colder air the heaters still hold chilled cargo):
            # then the deviation is >= 8 * (1 - exp(-t / tau)), which passes 2.6 °C
            # after at most 0.39 tau (1.8 h), and the 3 h minimum leaves over an
            # hour clearly out of range before the repair.
            if not all(x >= _COMPRESSOR_MIN_DELTA_C for x in targets):
                continue
            drift = Drift(
                start, start + duration, tuple(drift_curve(targets, tau_h, pulldown)), False
            )
            if drift.end > hi or not clear_excursion(drift.curve):
                continue
            peak = max(drift.curve, key=abs)
            note = (
                f"{c.commodity.name} at {c.setpoint:+.1f} C: compressor down "
                f"{duration / HOUR:.1f} h with fans on (tau {tau_h:.1f} h), ambient "
                f"{min(targets) + c.setpoint:.0f}..{max(targets) + c.setpoint:.0f} C, "
                f"peak deviation {peak:+.1f} C, "
                f"pull-down {pulldown:.0f} C/h"
            )
            return Failure(COMPRESSOR_FAILURE, start, drift.end, (EXCURSION,), note, drift=drift)
        return None

    def _power_cut(self, c: Container, lo: int, hi: int) -> Failure | None:
        rng, design = self.rng, self.cut_design
        short = design == _SHORT_CUT
        for _ in range(self._TRIES):
            duration = (
                rng.randint(36 * MINUTE, 55 * MINUTE) if short else rng.randint(HOUR, 6 * HOUR)
            )
            # Without fans the air warms slower than with a failed compressor.
            tau_h, pulldown = rng.uniform(10.0, 16.0), rng.uniform(6.0, 12.0)
            if hi - duration <= lo:
                return None
            start = rng.randint(lo, hi - duration)
            first_off = bisect.bisect_left(c.times, start)
            if bisect.bisect_left(c.times, start + duration) - first_off < 2:
                continue  # power_loss needs two consecutive readings without power
            targets = self._targets(c, start, duration)
            drift = Drift(
                start, start + duration, tuple(drift_curve(targets, tau_h, pulldown)), True
            )
            end = max(drift.end, drift.repair)
            if end > hi:
                continue
            expect: tuple[str, ...]
            if design != _WARMING_CUT and stays_in_band(drift.curve):
                expect = (POWER_LOSS,)
            elif not short and clear_excursion(drift.curve):
                expect = (POWER_LOSS, EXCURSION)
            else:
                continue  # not the design asked for, or ambiguous: no such labels
            peak = max(drift.curve, key=abs, default=0.0)
            note = (
                f"{c.commodity.name} at {c.setpoint:+.1f} C: no power for {duration / 60:.0f} min "
                f"(tau {tau_h:.1f} h), peak deviation {peak:+.1f} C"
                + ("" if EXCURSION in expect else f", kept within {IN_BAND_C} C")
            )
            return Failure(POWER_CUT, start, end, expect, note, drift=drift)
        return None

    def _silent_sensor(self, c: Container, lo: int, hi: int) -> Failure | None:
        rng = self.rng
        for _ in range(self._TRIES):
            duration = rng.randint(HOUR, 4 * HOUR)
            if hi - duration <= lo:
                return None
            start = rng.randint(lo, hi - duration)
            i = bisect.bisect_left(c.times, start)
            j = bisect.bisect_left(c.times, start + duration)
            if i == 0 or j >= len(c.times) or j == i:
                continue
            before, after = c.times[i - 1], c.times[j]
            if before < lo or after > hi:
                continue
            note = f"{j - i} readings never sent: no reading for {(after - before) // 60} min"
            # The window runs from the last reading before the gap to the first after it.
            return Failure(SILENT_SENSOR, before, after, (SILENT,), note, dropped=range(i, j))
        return None

    def _reading_span(self, c: Container, lo: int, hi: int, count: int) -> range:
        """Indices i such that readings i .. i+count-1 all lie in [lo, hi]."""
        first = bisect.bisect_left(c.times, lo)
        last = bisect.bisect_right(c.times, hi) - count
        return range(first, last + 1)

    def _implausible_sensor(self, c: Container, lo: int, hi: int) -> Failure | None:
        count = self.rng.randint(1, 3)
        span = self._reading_span(c, lo, hi, count)
        if not span:
            return None
        i = self.rng.choice(span)
        name, value = _IMPLAUSIBLE_VALUES[
            self.placed[IMPLAUSIBLE_SENSOR] % len(_IMPLAUSIBLE_VALUES)
        ]
        note = f"{name} reads {value} on {count} reading(s)"
        return Failure(
            IMPLAUSIBLE_SENSOR,
            c.times[i],
            c.times[i + count - 1],
            (FAULT,),
            note,
            bad={i + k: (name, value) for k in range(count)},
        )

    def _door(self, c: Container, lo: int, hi: int, *, at_sea: bool) -> Failure | None:
        if c.ca is not None:
            return None  # opening a CA box lets in air: its atmosphere would be lost
        count = self.rng.randint(1, 3)
        # At sea only mid-leg: the ship makes 14-20 kn there, far above the 2 kn
        # threshold, and the fix in force (at most 5 min old) is from the same leg.
        fits = self.voyage.mid_leg if at_sea else self.voyage.in_port
        margin = _SEA_MARGIN_S if at_sea else _PORT_MARGIN_S
        candidates = [
            i
            for i in self._reading_span(c, lo, hi, count)
            if all(fits(c.times[i + k], margin) for k in range(count))
        ]
        if not candidates:
            return None
        i = self.rng.choice(candidates)
        state = self.voyage.state_at(c.times[i])
        # The warm (or cold) air let in moves the reading at most 0.9 °C, so with the
        # 0.6 °C noise the reading stays well inside the 2.0 °C tolerance.
        door = {i + k: 0.3 * (k + 1) for k in range(count)}
        if at_sea:
            note = f"door open on {count} reading(s) at {state.speed_kn:.1f} kn"
            return Failure(
                DOOR_OPEN_AT_SEA, c.times[i], c.times[i + count - 1], (DOOR,), note, door=door
            )
        note = f"door open on {count} reading(s) alongside in {state.port}"
        return Failure(DOOR_OPEN_IN_PORT, c.times[i], c.times[i + count - 1], (), note, door=door)


def plan_defrosts(c: Container, rng: random.Random) -> None:
    """Defrost every 6-12 h (fixed per unit): 1-2 readings, kept 1 h away from a failure."""
    if not c.times:
        return
    period = rng.uniform(6.0, 12.0) * HOUR
    f = c.failure
    blocked = (f.start - _DEFROST_MARGIN_S, f.end + _DEFROST_MARGIN_S) if f else None
    due = c.times[0] + rng.uniform(0.1, 1.0) * period
    while True:
        n = bisect.bisect_left(c.times, due)
        count = rng.randint(1, 2)
        if n + count > len(c.times):
            return
        if blocked and c.times[n] <= blocked[1] and c.times[n + count - 1] >= blocked[0]:
            due = blocked[1] + 1  # postpone until the unit has recovered
            continue
        for k in range(count):
            c.defrost[n + k] = rng.uniform(1.5, 4.8)  # setpoint + 5 °C at most
        due = c.times[n + count - 1] + period


def plan_resends(c: Container, rng: random.Random, dup_rate: float, late_rate: float) -> None:
    """Pick readings the gateway sends twice (right after) or again late (within 1 h)."""

    def clean(n: int) -> bool:
        # Re-sends stay away from failures and defrosts so that ground truth stays simple.
        return n not in c.defrost and not c.in_failure(c.times[n])

    times = c.times
    for n in range(len(times)):
        r = rng.random()
        if r >= dup_rate + late_rate or not clean(n):
            continue
        if r < dup_rate:
            c.duplicate.add(n)
            continue
        target = n + rng.randint(1, 3)  # re-sent after 1-3 newer readings
        if (
            target >= len(times)
            or times[target] - times[n] > _LATE_WITHIN_S
            or not all(clean(k) for k in range(n + 1, target + 1))
        ):
            continue
        c.late_at.setdefault(target, []).append(n)
        c.late_sources.add(n)
