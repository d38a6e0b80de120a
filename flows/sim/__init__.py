"""Deterministic fleet simulator with labelled failures.

It plays what a vessel's gateway would send: `vessel.position` fixes of ships
sailing great-circle legs between real ports, and `reefer.telemetry` readings of
refrigerated containers whose temperatures follow a small physical model of the
ambient air, with failures injected at known times. `labels()` is the ground
truth for the same config: which failure happened where and when, and which
alert kinds the contract's rules must raise for it at default thresholds.

Every random draw comes from a private `random.Random` seeded from
`SimConfig.seed` and the purpose of the draw (one per vessel, container and
concern), never from the global generator or the wall clock, so a config always
yields the same bytes.

Modules, in the order data flows through them (each imports only earlier ones):

- `config`: `SimConfig`, `Label`, `Emission`, label kinds, time units, seeding.
- `ids`: timestamps, IMO numbers, container ids.
- `voyage`: ports, waypoints, routes, great-circle legs, `Voyage`.
- `physics`: ambient air, cargo types (some under controlled atmosphere), unit
  power, drift and flicker curves, sensor noise.
- `atmosphere`: CO2 and O2 readings, gas drifts, and the check that keeps their
  30-minute means clear of the contract's limits.
- `container`: a planned container and its failure.
- `episodes`: the failures behind contract version 2's rules: a failing gas
  sensor, a CA unit's scrubber, a flickering power supply.
- `failures`: the failure planner, defrosts, duplicate and late re-sends.
- `fleet`: plans a config's vessels and containers and labels what it planned.
- `malformed`: the malformed-line variants.
- `emit`: merges the record streams into gateway order; the public API.
- `__main__`: the CLI, `python -m flows.sim --out DIR`.

The package imports only `flows.contract`, `flows.events`, the standard library
and orjson: never bytewax, never `flows.config`, and never an edge, except the
Kafka producer, imported lazily by the CLI for `--kafka`.
"""

from flows.sim.config import (
    COMPRESSOR_FAILURE,
    DEFROST,
    DOOR_OPEN_AT_SEA,
    DOOR_OPEN_IN_PORT,
    DUPLICATE,
    FAILURE_KINDS,
    GAS_SENSOR_FAILURE,
    IMPLAUSIBLE_SENSOR,
    LATE,
    MALFORMED,
    POWER_CUT,
    POWER_FLICKER,
    SCRUBBER_FAILURE,
    SILENT_SENSOR,
    Emission,
    Label,
    SimConfig,
)
from flows.sim.emit import emissions, generate, labels, load_labels, write_files
from flows.sim.failures import FAILURE_MIX
from flows.sim.ids import imo_check_digit
from flows.sim.voyage import PORTS

__all__ = [
    "COMPRESSOR_FAILURE",
    "DEFROST",
    "DOOR_OPEN_AT_SEA",
    "DOOR_OPEN_IN_PORT",
    "DUPLICATE",
    "FAILURE_KINDS",
    "FAILURE_MIX",
    "GAS_SENSOR_FAILURE",
    "IMPLAUSIBLE_SENSOR",
    "LATE",
    "MALFORMED",
    "PORTS",
    "POWER_CUT",
    "POWER_FLICKER",
    "SCRUBBER_FAILURE",
    "SILENT_SENSOR",
    "Emission",
    "Label",
    "SimConfig",
    "emissions",
    "generate",
    "imo_check_digit",
    "labels",
    "load_labels",
    "write_files",
]
