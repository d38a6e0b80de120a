"""Settings from `COLDWAKE_*` environment variables: one table, the only reader of `os.environ`.

Each variable is one `Var` row (name, default, parser, hint, meaning); defaults live
only here (the simulator's in `flows.sim.SimConfig`). A bad value, or an unknown
`COLDWAKE_*` name, raises `ConfigError` whose message is one line naming the
variable and the fix; `flows.vessel` prints it and exits before Bytewax starts.
`python -m flows.config` prints the table with the values in force.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any, Final, Literal, cast

from flows.rules.thresholds import Thresholds
from flows.sim.config import SimConfig

PREFIX: Final = "COLDWAKE_"

InputKind = Literal["sim", "file", "kafka"]
OutputKind = Literal["local", "kafka"]


class ConfigError(ValueError):
    """A `COLDWAKE_*` variable has a value the program cannot use."""


@dataclass(frozen=True, slots=True)
class InputSpec:
    """Where records come from: the simulator, JSONL files, or Kafka."""

    kind: InputKind
    paths: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    """Kafka connection and run options (used by the kafka input and output)."""

    brokers: str
    timeout_s: float
    stop_at_end: bool
    idle_s: float
    group_id: str


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a run needs, validated."""

    input: InputSpec
    output: OutputKind
    data_dir: Path
    thresholds: Thresholds
    sim: SimConfig
    kafka: KafkaSettings
    batch_size: int
    progress_s: float

    @property
    def out_dir(self) -> Path:
        """Where the local JSONL outputs go."""
        return self.data_dir / "out"


# -- parsers: text -> value, ValueError when the text is not allowed ---------------


def _number(lo: float, hi: float = math.inf, *, above: bool = False) -> Callable[[str], float]:
    """A finite number in [lo, hi] (lo excluded with `above`)."""

    def parse(text: str) -> float:
        value = float(text)
        if not (math.isfinite(value) and lo <= value <= hi) or (above and value == lo):
            raise ValueError(text)
        return value

    return parse


def _integer(lo: int, hi: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < lo or (hi is not None and value > hi):
            raise ValueError(text)
        return value

    return parse


def _day_divisor(text: str) -> int:
    """Whole minutes that divide a day, so that windows align to UTC midnight."""
    value = int(text)
    if not 1 <= value <= 1440 or 1440 % value:
        raise ValueError(text)
    return value


def _share(hi: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = float(text)
        if not 0.0 <= value <= hi:
            raise ValueError(text)
        return value

    return parse


def _flag(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def _input(text: str) -> InputSpec:
    if text in ("sim", "kafka"):
        return InputSpec(cast(InputKind, text))
    if text.startswith("file:") and len(text) > 5:
        paths = tuple(Path(p) for p in text[5:].split(",") if p)
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise ConfigError(
                f"COLDWAKE_INPUT names {', '.join(missing)}, which is not a readable file; "
                "give existing JSONL files as file:PATH[,PATH...]"
            )
        return InputSpec("file", paths)
    raise ValueError(text)


def _output(text: str) -> OutputKind:
    if text not in ("local", "kafka"):
        raise ValueError(text)
    return cast(OutputKind, text)


def _port(text: str) -> int | None:
    """A TCP port, or None when unset."""
    return _integer(0, 65535)(text) if text else None


def _text(text: str) -> str:
    return text


_SIM_DEFAULTS: Final = SimConfig()


@dataclass(frozen=True, slots=True)
class Var:
    """One `COLDWAKE_*` variable.

    Attributes:
        name: The variable, e.g. `COLDWAKE_WINDOW_MIN`.
        default: Its default as it would be written in the environment ("" for none).
        parse: Text -> value; raises ValueError for a value that is not allowed.
        hint: What is allowed, said to a user whose value was not.
        meaning: What it sets, for `python -m flows.config` and the README.
    """

    name: str
    default: str
    parse: Callable[[str], Any]
    hint: str
    meaning: str


# fmt: off
VARS: Final = (
    Var("COLDWAKE_INPUT", "sim", _input, "use sim, kafka or file:PATH[,PATH...]",
        "`sim` (built-in simulator), `file:PATH[,PATH…]` (JSONL replay; each file is one "
        "partition, read in file order) or `kafka` (`vessel.position` and `reefer.telemetry`); "
        "the fleet flow: `kafka` (its default) or `file:PATH[,PATH…]` (`<topic>.jsonl` "
        "files, or directories of them)"),
    Var("COLDWAKE_OUTPUT", "local", _output, "use local or kafka",
        "`local` (JSONL files under `out/`) or `kafka` (the contract's output topics); the "
        "RocksDB table under `state/` is kept in both modes"),
    Var("COLDWAKE_DATA_DIR", "data", Path, "a directory path",
        "where local outputs and the container-state table live"),
    Var("COLDWAKE_BROKERS", "", _text, "bootstrap servers, e.g. 127.0.0.1:9092",
        "Kafka bootstrap servers; required by the kafka input and output"),
    Var("COLDWAKE_TOLERANCE_C", "2.0", _number(0.0, 50.0, above=True),
        "degrees C above 0 and at most 50, e.g. 2.0",
        "excursion: allowed `abs(temp_c - setpoint_c)`"),
    Var("COLDWAKE_EXCURSION_MIN", "30", _number(0.0, 1440.0), "minutes from 0 to 1440, e.g. 30",
        "excursion: minutes out of range before it opens"),
    Var("COLDWAKE_SILENCE_MIN", "30", _number(0.0, 10080.0, above=True),
        "minutes above 0 and at most 10080 (a week), e.g. 30",
        "minutes of vessel event time without a reading before `sensor_silent`"),
    Var("COLDWAKE_WINDOW_MIN", "15", _day_divisor,
        "whole minutes that divide 1440 (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60, ... 1440)",
        "tumbling window length, aligned to UTC midnight"),
    Var("COLDWAKE_DOOR_SPEED_KN", "2.0", _number(0.0, 50.0), "knots from 0 to 50, e.g. 2.0",
        "a door open above this speed is `door_open_at_sea`"),
    Var("COLDWAKE_MAX_AHEAD_MIN", "360", _number(1.0, 10080.0),
        "minutes from 1 to 10080, e.g. 360",
        "a record this far ahead of its vessel's clock is held until other sources "
        "corroborate it"),
    Var("COLDWAKE_CO2_MAX_PCT", "10.0", _number(0.0, 30.0, above=True),
        "percent above 0 and at most 30, e.g. 10.0",
        "atmosphere: highest allowed 30-minute mean of `co2_pct` (no setpoint)"),
    Var("COLDWAKE_O2_MIN_PCT", "12.0", _number(0.0, 30.0, above=True),
        "percent above 0 and at most 30, e.g. 12.0",
        "atmosphere: lowest allowed 30-minute mean of `o2_pct` (no setpoint)"),
    Var("COLDWAKE_ATMOS_TOLERANCE_PCT", "2.0", _number(0.0, 30.0, above=True),
        "percentage points above 0 and at most 30, e.g. 2.0",
        "atmosphere: allowed distance of a mean from its controlled-atmosphere setpoint"),
    Var("COLDWAKE_ATMOS_MIN", "30", _number(0.0, 1440.0, above=True),
        "minutes above 0 and at most 1440, e.g. 30",
        "atmosphere: minutes of readings each mean covers"),
    Var("COLDWAKE_POWER_UNSTABLE_COUNT", "3", _integer(2, 100),
        "a whole number from 2 to 100, e.g. 3",
        "`power_unstable`: this many `power_loss` alerts opened within the hours below"),
    Var("COLDWAKE_POWER_UNSTABLE_HOURS", "6", _number(0.0, 168.0, above=True),
        "hours above 0 and at most 168, e.g. 6",
        "`power_unstable`: the span those alerts open in, and the calm that closes it"),
    Var("COLDWAKE_KAFKA_TIMEOUT_S", "30", _number(0.0, 3600.0, above=True),
        "seconds above 0 and at most 3600, e.g. 30",
        "how long Kafka may be unreachable (at start, or to acknowledge an epoch's "
        "records) before the run stops with a clear error"),
    Var("COLDWAKE_KAFKA_STOP_AT_END", "0", _flag, "use 1 or 0",
        "`1`: stop when every input partition reaches the end offset it had at start "
        "(backfills, tests)"),
    Var("COLDWAKE_IDLE_S", "5", _number(0.0, 3600.0, above=True),
        "seconds above 0 and at most 3600, e.g. 5",
        "a live Kafka partition with nothing to read for this long stops holding the "
        "watermark back (see Idle partitions)"),
    Var("COLDWAKE_KAFKA_GROUP", "coldwake-vessel", _text, "a consumer group id",
        "consumer `group.id` (offsets live in Bytewax snapshots, not in the group; the "
        "fleet flow's default is `coldwake-fleet`)"),
    Var("COLDWAKE_FLEET_BROKERS", "", _text, "bootstrap servers, e.g. 127.0.0.1:9192",
        "fleet flow: the shore cluster (mirrored vessel topics in, `fleet.*` tables out); "
        "required unless `COLDWAKE_INPUT=file:`"),
    Var("COLDWAKE_FLEET_RESCAN_S", "60", _number(0.0, 3600.0, above=True),
        "seconds above 0 and at most 3600, e.g. 60",
        "fleet flow: how often it looks for new vessels' topics"),
    Var("COLDWAKE_SIM_SEED", str(_SIM_DEFAULTS.seed), int, "an integer, e.g. 7",
        "simulator: seed of every random draw"),
    Var("COLDWAKE_SIM_VESSELS", str(_SIM_DEFAULTS.vessels), _integer(1),
        "a positive integer, e.g. 1", "simulator: vessels"),
    Var("COLDWAKE_SIM_CONTAINERS", str(_SIM_DEFAULTS.containers), _integer(1),
        "a positive integer, e.g. 500", "simulator: reefer containers per vessel"),
    Var("COLDWAKE_SIM_HOURS", f"{_SIM_DEFAULTS.hours:g}", _number(0.0, 24.0 * 366, above=True),
        "a positive number of hours up to 8784, e.g. 48", "simulator: simulated hours"),
    Var("COLDWAKE_SIM_MALFORMED_RATE", str(_SIM_DEFAULTS.malformed_rate), _share(0.5),
        "a share between 0 and 0.5, e.g. 0.001", "simulator: share of malformed lines"),
    Var("COLDWAKE_BATCH_SIZE", "2000", _integer(1, 1_000_000),
        "a whole number from 1 to 1000000, e.g. 2000",
        "records per simulator batch"),
    Var("COLDWAKE_PROGRESS_S", "5", _number(0.0, 3600.0),
        "seconds from 0 (none) to 3600, e.g. 5",
        "seconds between progress lines on stderr; `0` for none"),
    Var("COLDWAKE_METRICS_PORT", "", _port, "a TCP port from 0 to 65535, e.g. 9464",
        "serve Prometheus metrics at http://127.0.0.1:PORT/metrics (process i of a "
        "multi-process run: PORT + i; 0: any free port); unset: no metrics server"),
    # Read by the query API (python -m state.api), listed so that it is known.
    Var("COLDWAKE_API_TOKEN", "", _text, "a long random string",
        "query API: the bearer token every request must carry; required to bind an "
        "address other than 127.0.0.1"),
    # Read by the Kafka launcher (python -m deploy.kafka), listed so that they are known.
    Var("COLDWAKE_KAFKA_CACHE", "", _text, "a directory path",
        "launcher: where Maven-fetched Kafka jars are kept (default: the user cache)"),
    Var("COLDWAKE_KAFKA_JVM_OPTS", "", _text, "JVM flags separated by spaces",
        "launcher: extra flags for every Kafka JVM"),
)
# fmt: on
_BY_NAME: Final = {v.name: v for v in VARS}


def value(env: Mapping[str, str], name: str) -> Any:
    """The parsed value of variable `name` (its default when unset); ConfigError if bad."""
    var = _BY_NAME[name]
    text = env.get(name, "").strip() or var.default
    try:
        return var.parse(text)
    except ConfigError:
        raise
    except (ValueError, TypeError):
        raise ConfigError(f"{name}={text!r} is not valid: {var.hint}") from None


def threshold_var(name: str) -> str:
    """The variable that sets the `Thresholds` field `name`."""
    return f"{PREFIX}{name.upper()}"


def check_names(env: Mapping[str, str]) -> None:
    """Raise ConfigError for the first `COLDWAKE_*` name that is not a setting."""
    for name in sorted(env):
        if name.startswith(PREFIX) and name not in _BY_NAME:
            near = difflib.get_close_matches(name, list(_BY_NAME), n=1)
            fix = f"did you mean {near[0]}?" if near else "see python -m flows.config"
            raise ConfigError(f"{name} is not a Coldwake setting; {fix}")


def _sim(env: Mapping[str, str]) -> SimConfig:
    values = {
        f.name: value(env, f"COLDWAKE_SIM_{f.name.upper()}")
        for f in fields(SimConfig)
        if f"COLDWAKE_SIM_{f.name.upper()}" in _BY_NAME
    }
    try:
        return SimConfig(**values)
    except ValueError as exc:  # a rule across fields, or one the table does not know
        raise ConfigError(f"simulator settings (COLDWAKE_SIM_*) are not valid: {exc}") from None


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raise `ConfigError` on the first bad one."""
    env = os.environ if env is None else env
    check_names(env)
    v = partial(value, env)
    inp, output, brokers = v("COLDWAKE_INPUT"), v("COLDWAKE_OUTPUT"), v("COLDWAKE_BROKERS")
    if (inp.kind == "kafka" or output == "kafka") and not brokers:
        raise ConfigError(
            "COLDWAKE_BROKERS is not set: the kafka input/output needs bootstrap servers, "
            "e.g. COLDWAKE_BROKERS=127.0.0.1:9092"
        )
    return Settings(
        input=inp,
        output=output,
        data_dir=v("COLDWAKE_DATA_DIR"),
        thresholds=Thresholds(**{f.name: v(threshold_var(f.name)) for f in fields(Thresholds)}),
        sim=_sim(env),
        kafka=KafkaSettings(
            brokers=brokers,
            timeout_s=v("COLDWAKE_KAFKA_TIMEOUT_S"),
            stop_at_end=v("COLDWAKE_KAFKA_STOP_AT_END"),
            idle_s=v("COLDWAKE_IDLE_S"),
            group_id=v("COLDWAKE_KAFKA_GROUP"),
        ),
        batch_size=v("COLDWAKE_BATCH_SIZE"),
        progress_s=v("COLDWAKE_PROGRESS_S"),
    )


#: The contract's default thresholds, for callers that do not read the environment.
DEFAULT_THRESHOLDS: Final = load({}).thresholds


def describe(env: Mapping[str, str] | None = None) -> str:
    """Every variable with its default, what is allowed and the value in force."""
    env = os.environ if env is None else env
    lines = []
    for var in VARS:
        given = env.get(var.name, "").strip()
        in_force = given or var.default or "(unset)"
        lines.append(f"{var.name}  [default: {var.default or '(unset)'}]  now: {in_force}")
        lines.append(f"    {var.meaning}. Allowed: {var.hint}")
    return "\n".join(lines)


def markdown() -> str:
    """The table as the README shows it (a test keeps the README equal to this)."""
    lines = ["| variable | default | meaning | allowed |", "|---|---|---|---|"]
    for var in VARS:
        default = f"`{var.default}`" if var.default else "—"
        lines.append(f"| `{var.name}` | {default} | {var.meaning} | {var.hint} |")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(markdown() if sys.argv[1:] == ["--markdown"] else describe())
