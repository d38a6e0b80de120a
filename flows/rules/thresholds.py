"""The contract's configurable thresholds (their defaults live in `flows.config`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Limits the rules apply; every one is a `COLDWAKE_*` variable."""

    tolerance_c: float
    excursion_min: float
    silence_min: float
    window_min: float
    door_speed_kn: float
