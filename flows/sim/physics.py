"""The physical model: ambient air along a voyage, cargo types, unit power, drift curves.

Also the margins that keep every planned drift clear of the contract's default
thresholds (tolerance 2.0 °C, excursion 30 min), and the sensor noise model
the emitted readings use.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from flows.sim.config import DAY, HOUR, MINUTE
from flows.sim.voyage import Voyage

HEALTHY_NOISE_C: Final = 0.55  # |temp - setpoint| of a healthy unit, before rounding
FAILURE_NOISE_C: Final = 0.2  # bound of the sensor noise on top of a planned drift curve
IN_BAND_C: Final = 1.1  # a drift that peaks below this never reads beyond 1.5 °C
_CLEARLY_OUT_C: Final = 2.6  # a drift above this always reads beyond 2.0 °C
_FLAP_C: Final = 1.7  # below this a drift never reads beyond 2.0 °C
_CLEARLY_OUT_MIN: Final = 60  # minutes clearly out of range, for a 30 min rule
_RECOVERED_C: Final = 0.3  # a pull-down ends when the deviation is this small


def _season(t0: int) -> float:
    """+1 at the northern midsummer (mid July), -1 at its midwinter."""
    doy = datetime.fromtimestamp(t0, UTC).timetuple().tm_yday
    return math.cos(2.0 * math.pi * (doy - 196) / 365.25)


def _climate_c(lat: float, season: float) -> float:
    """Seasonal mean air temperature at a latitude (tropics ~27 °C, cooler poleward)."""
    a = abs(lat)
    mean = 27.0 - 0.45 * max(0.0, a - 15.0)
    swing = min(12.0, 0.2 * a)  # seasons matter more far from the equator
    return mean + swing * season * (1.0 if lat >= 0.0 else -1.0)


def ambient_grid(voyage: Voyage, t0: int, minutes: int, rng: random.Random) -> list[float]:
    """Air temperature around a vessel for each minute of the run.

    Latitude sets the climate, local solar time a day/night cycle (wider in port
    than at sea) and two slow sine waves stand for passing weather.
    """
    season = _season(t0)
    phase1, phase2 = rng.uniform(0.0, 2 * math.pi), rng.uniform(0.0, 2 * math.pi)
    grid: list[float] = []
    for m in range(minutes):
        t = t0 + m * MINUTE
        state = voyage.state_at(t)
        solar_hour = ((t % DAY) / HOUR + state.lon / 15.0) % 24.0
        amplitude = 3.0 if state.port is not None else 1.0
        diurnal = amplitude * math.cos(2 * math.pi * (solar_hour - 14.0) / 24.0)
        hours = m / 60.0
        weather = 1.5 * math.sin(2 * math.pi * hours / 37.0 + phase1) + 0.7 * math.sin(
            2 * math.pi * hours / 11.0 + phase2
        )
        grid.append(_climate_c(state.lat, season) + diurnal + weather)
    return grid


@dataclass(frozen=True, slots=True)
class Commodity:
    """A cargo type: its setpoints and the atmosphere in its box."""

    name: str
    weight: int
    setpoints: tuple[float, ...]
    supply_control: bool  # chilled cargo is controlled on supply air, frozen on return air
    humidity: tuple[float, float]
    co2: tuple[float, float]  # respiring fruit raises CO2, frozen cargo does not
    ca_share: float = 0.0  # share of units shipped under controlled atmosphere
    ca_setpoints: tuple[tuple[float, float], ...] = ()  # (co2_pct, o2_pct) held by CA units


def _steps(lo: float, hi: float, step: float) -> tuple[float, ...]:
    return tuple(round(lo + i * step, 1) for i in range(round((hi - lo) / step) + 1))


COMMODITIES: Final = (
    Commodity("frozen meat", 25, (-18.0, -25.0), False, (60.0, 85.0), (0.03, 0.06)),
    Commodity("frozen fish", 20, (-25.0, -18.0), False, (60.0, 85.0), (0.03, 0.06)),
    # Some fruit (avocados, pears, apples, bananas) ships under CA to slow its ripening.
    Commodity(
        "chilled produce", 25, _steps(0.0, 4.0, 0.5), True, (85.0, 95.0), (0.1, 0.8),
        ca_share=0.35, ca_setpoints=((5.0, 3.0), (6.0, 4.0), (2.5, 2.0)),
    ),
    Commodity(
        "bananas", 15, (13.3,), True, (88.0, 95.0), (0.4, 1.5),
        ca_share=0.35, ca_setpoints=((5.0, 3.0),),
    ),
    Commodity("pharma", 15, _steps(3.0, 7.0, 0.5), True, (40.0, 60.0), (0.03, 0.06)),
)  # fmt: skip


def healthy_power_kw(ambient_c: float, setpoint_c: float) -> float:
    """Electrical draw of a unit holding its setpoint: grows with the heat it must move."""
    return 1.4 + 0.055 * abs(ambient_c - setpoint_c)


def drift_curve(targets: Sequence[float], tau_h: float, pulldown_c_per_h: float) -> list[float]:
    """Deviation from setpoint, minute by minute, of a unit that stops cooling.

    While the unit is down the air approaches the ambient exponentially (time
    constant `tau_h`, with `targets` = ambient - setpoint per minute); then the
    unit pulls back linearly at `pulldown_c_per_h` until it is within
    `_RECOVERED_C`. The list ends at that moment.
    """
    k = 1.0 - math.exp(-1.0 / (tau_h * 60.0))
    u = 0.0
    curve: list[float] = []
    for target in targets:
        curve.append(u)
        u += (target - u) * k
    step = pulldown_c_per_h / 60.0
    while abs(u) > _RECOVERED_C:
        curve.append(u)
        u = math.copysign(max(0.0, abs(u) - step), u)
    return curve


def flicker_curve(
    targets: Sequence[float], off: Sequence[bool], tau_h: float, pulldown_c_per_h: float
) -> list[float]:
    """Deviation from setpoint, minute by minute, of a unit whose power comes and goes.

    Without power (`off[m]`) the air approaches the ambient as in `drift_curve`;
    with power the unit pulls back at `pulldown_c_per_h`. After the last minute the
    pull-down goes on until the deviation is within `_RECOVERED_C`; the list ends then.
    """
    k = 1.0 - math.exp(-1.0 / (tau_h * 60.0))
    step = pulldown_c_per_h / 60.0
    u = 0.0
    curve: list[float] = []
    for target, no_power in zip(targets, off, strict=True):
        curve.append(u)
        u = u + (target - u) * k if no_power else math.copysign(max(0.0, abs(u) - step), u)
    while abs(u) > _RECOVERED_C:
        curve.append(u)
        u = math.copysign(max(0.0, abs(u) - step), u)
    return curve


def stays_in_band(curve: Sequence[float]) -> bool:
    """Noise included, no reading of this drift strays more than 1.5 °C from setpoint."""
    return max((abs(u) for u in curve), default=0.0) <= IN_BAND_C


def clear_excursion(curve: Sequence[float]) -> bool:
    """Noise included, this drift reads beyond 2.0 °C as one run of clearly ≥ 45 min.

    The curve must exceed `_CLEARLY_OUT_C` for `_CLEARLY_OUT_MIN` minutes in a row,
    and the minutes above `_FLAP_C` (where noise could take a reading past 2.0 °C)
    must form one run, so that the excursion is one event.
    """
    runs_above_flap = 0
    longest_clear = current_clear = 0
    previous_above = False
    for u in curve:
        above = abs(u) > _FLAP_C
        if above and not previous_above:
            runs_above_flap += 1
        previous_above = above
        current_clear = current_clear + 1 if abs(u) >= _CLEARLY_OUT_C else 0
        longest_clear = max(longest_clear, current_clear)
    return runs_above_flap == 1 and longest_clear >= _CLEARLY_OUT_MIN


def sensor_noise(rnd: Callable[[], float], sigma: float) -> float:
    """Zero-mean noise with standard deviation `sigma`, bounded by 3 sigma.

    A sum of three uniforms is close enough to a normal for sensor noise and costs a
    fraction of `random.gauss`, which matters at a million draws per run.
    """
    return (rnd() + rnd() + rnd() - 1.5) * 2.0 * sigma
