"""The contract's configurable thresholds (their defaults live in `flows.config`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Limits the rules apply; every one is a `COLDWAKE_*` variable.

    A resumed run compares these with the ones its recovery state was made with.
    """

    tolerance_c: float
    excursion_min: float
    silence_min: float
    window_min: int
    door_speed_kn: float
    max_ahead_min: float
    co2_max_pct: float
    o2_min_pct: float
    atmos_tolerance_pct: float
    atmos_min: float
    power_unstable_count: int
    power_unstable_hours: float
