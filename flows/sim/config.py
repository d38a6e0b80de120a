"""What to simulate and what comes out: `SimConfig`, `Label`, `Emission`, the label kinds.

Also the units of simulated time and `seeded_rng`, the one place random
generators are made: every draw of the simulator comes from a generator seeded
with `SimConfig.seed` and the purpose of the draw, never from the global
generator or the wall clock.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, fields
from typing import Any, Final, NamedTuple

from flows.contract import DOOR
from flows.events import parse_ts

# Units of simulated time, in epoch seconds.
MINUTE: Final = 60
HOUR: Final = 3600
DAY: Final = 86_400

# Label kinds: the injected failures, then the events the rules by design ignore.
COMPRESSOR_FAILURE: Final = "compressor_failure"
POWER_CUT: Final = "power_cut"
SILENT_SENSOR: Final = "silent_sensor"
IMPLAUSIBLE_SENSOR: Final = "implausible_sensor"
DOOR_OPEN_AT_SEA: Final = DOOR  # the failure is named after the alert it must raise
DOOR_OPEN_IN_PORT: Final = "door_open_in_port"
GAS_SENSOR_FAILURE: Final = "gas_sensor_failure"
SCRUBBER_FAILURE: Final = "scrubber_failure"
POWER_FLICKER: Final = "power_flicker"
DEFROST: Final = "defrost"
MALFORMED: Final = "malformed"
DUPLICATE: Final = "duplicate"
LATE: Final = "late"
FAILURE_KINDS: Final = (
    COMPRESSOR_FAILURE,
    POWER_CUT,
    SILENT_SENSOR,
    IMPLAUSIBLE_SENSOR,
    DOOR_OPEN_AT_SEA,
    DOOR_OPEN_IN_PORT,
    GAS_SENSOR_FAILURE,
    SCRUBBER_FAILURE,
    POWER_FLICKER,
)

_MAX_HOURS: Final = 24.0 * 366
_RATES: Final = ("fault_rate", "malformed_rate", "duplicate_rate", "late_rate")
_TYPE_NAMES: Final = {int: "an integer", float: "a number", str: "a string"}


@dataclass(frozen=True, slots=True)
class SimConfig:
    """What to simulate; the same config always yields the same bytes.

    The fields and their defaults are defined here only: `SimConfig.defaults()`
    lists them for whoever builds a config from options (the CLI, the job's
    environment). An invalid value raises ValueError with a one-line message
    that starts with the field's name.

    Attributes:
        seed: Seed of every random draw.
        vessels: Number of vessels; each sails its own route.
        containers: Reefer containers per vessel.
        hours: Simulated time span.
        start: Start of the simulation, RFC 3339 with an offset.
        fault_rate: Share of containers that get exactly one injected failure.
        malformed_rate: Share of emitted lines followed by an extra malformed line.
        duplicate_rate: Share of readings re-sent identically right after.
        late_rate: Share of readings re-sent late (after newer readings).
    """

    seed: int = 7
    vessels: int = 1
    containers: int = 500
    hours: float = 48.0
    start: str = "2026-11-20T00:00:00Z"
    fault_rate: float = 0.08
    malformed_rate: float = 0.001
    duplicate_rate: float = 0.002
    late_rate: float = 0.002

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every field's name and default value, in declaration order."""
        return {f.name: f.default for f in fields(cls)}

    def __post_init__(self) -> None:
        for name, default in self.defaults().items():
            _check_type(name, getattr(self, name), type(default))
        if self.vessels < 1:
            raise ValueError(f"vessels must be a positive integer, got {self.vessels}")
        if self.containers < 0:
            raise ValueError(f"containers must be a non-negative integer, got {self.containers}")
        if not (math.isfinite(self.hours) and 0.0 < self.hours <= _MAX_HOURS):
            raise ValueError(f"hours must be in (0, {_MAX_HOURS:g}], got {self.hours}")
        for name in _RATES:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.duplicate_rate + self.late_rate > 1.0:
            raise ValueError(
                f"duplicate_rate + late_rate must not exceed 1, "
                f"got {self.duplicate_rate} + {self.late_rate}"
            )
        try:
            parse_ts(self.start)
        except ValueError:
            raise ValueError(
                f"start must be RFC 3339 with an offset, e.g. 2026-11-20T00:00:00Z, "
                f"got {self.start!r}"
            ) from None


def _check_type(name: str, value: object, expected: type) -> None:
    """Raise unless `value` is of the field's type (an int passes for a float, a bool never)."""
    ok = isinstance(value, expected) or (expected is float and isinstance(value, int))
    if isinstance(value, bool) or not ok:
        raise ValueError(f"{name} must be {_TYPE_NAMES[expected]}, got {value!r}")


@dataclass(frozen=True, slots=True)
class Label:
    """Ground truth for one injected event.

    Attributes:
        container_id: The container, or "" for vessel-level labels (malformed lines).
        vessel_id: The vessel.
        kind: One of the label kinds (`FAILURE_KINDS`, defrost, malformed,
            duplicate, late).
        start: First moment of the event, RFC 3339 UTC.
        end: Last moment of the event (recovery included), RFC 3339 UTC.
        expect: Alert kinds the contract's rules must raise for it at default
            thresholds; () when the rules by design see nothing.
        note: Human-readable detail; "line N" names emitted lines (1-based).
    """

    container_id: str
    vessel_id: str
    kind: str
    start: str
    end: str
    expect: tuple[str, ...]
    note: str = ""


class Emission(NamedTuple):
    """One emitted line with where a Kafka producer would send it."""

    line: bytes
    topic: str
    key: bytes


def seeded_rng(seed: int, *purpose: object) -> random.Random:
    """The generator for one purpose (e.g. "noise", vessel, container) of a run."""
    # String seeds hash with SHA-512, independent of PYTHONHASHSEED.
    return random.Random("/".join(map(str, ("coldwake", seed, *purpose))))
