"""Settings from `COLDWAKE_*` environment variables: the only reader of `os.environ`.

A bad value raises `ConfigError` whose message is one line naming the variable and
the fix; `flows.vessel` prints it and exits before Bytewax starts.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from flows.detect import Thresholds
from flows.simulator import SimConfig

T = TypeVar("T")


class ConfigError(ValueError):
    """A `COLDWAKE_*` variable has a value the program cannot use."""


@dataclass(frozen=True, slots=True)
class InputSpec:
    """Where records come from: the simulator, JSONL files, or Kafka."""

    kind: str  # "sim" | "file" | "kafka"
    paths: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    """Kafka connection and run options (used by the kafka input and output)."""

    brokers: str = ""
    timeout_s: float = 30.0
    stop_at_end: bool = False
    idle_s: float = 5.0
    group_id: str = "coldwake-vessel"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a run needs, validated."""

    input: InputSpec = field(default_factory=lambda: InputSpec("sim"))
    output: str = "local"
    data_dir: Path = Path("data")
    thresholds: Thresholds = field(default_factory=Thresholds)
    sim: SimConfig = field(default_factory=SimConfig)
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    batch_size: int = 2000
    progress_s: float = 5.0

    @property
    def out_dir(self) -> Path:
        """Where the local JSONL outputs go."""
        return self.data_dir / "out"


def _get(
    env: Mapping[str, str], name: str, default: T, convert: Callable[[str], T], hint: str
) -> T:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        return convert(text)
    except ConfigError:
        raise
    except (ValueError, TypeError):
        raise ConfigError(f"{name}={text!r} is not valid: {hint}") from None


def _positive(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(text)
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(text)
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(text)
    return value


def _int(text: str) -> int:
    return int(text)


def _flag(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 0.5:
        raise ValueError(text)
    return value


def _input(text: str) -> InputSpec:
    if text in ("sim", "kafka"):
        return InputSpec(text)
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


def _output(text: str) -> str:
    if text not in ("local", "kafka"):
        raise ValueError(text)
    return text


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raise `ConfigError` on the first bad one."""
    env = os.environ if env is None else env
    g = _get
    inp = g(
        env, "COLDWAKE_INPUT", InputSpec("sim"), _input, "use sim, kafka or file:PATH[,PATH...]"
    )
    output = g(env, "COLDWAKE_OUTPUT", "local", _output, "use local or kafka")
    brokers = env.get("COLDWAKE_BROKERS", "").strip()
    if (inp.kind == "kafka" or output == "kafka") and not brokers:
        raise ConfigError(
            "COLDWAKE_BROKERS is not set: the kafka input/output needs bootstrap servers, "
            "e.g. COLDWAKE_BROKERS=127.0.0.1:9092"
        )
    thresholds = Thresholds(
        tolerance_c=g(
            env, "COLDWAKE_TOLERANCE_C", 2.0, _positive, "a positive number of degrees C, e.g. 2.0"
        ),
        excursion_min=g(
            env, "COLDWAKE_EXCURSION_MIN", 30.0, _non_negative, "minutes >= 0, e.g. 30"
        ),
        silence_min=g(
            env, "COLDWAKE_SILENCE_MIN", 30.0, _positive, "a positive number of minutes, e.g. 30"
        ),
        window_min=g(
            env, "COLDWAKE_WINDOW_MIN", 15.0, _positive, "a positive number of minutes, e.g. 15"
        ),
        door_speed_kn=g(env, "COLDWAKE_DOOR_SPEED_KN", 2.0, _non_negative, "knots >= 0, e.g. 2.0"),
    )
    default_sim = SimConfig()
    sim = SimConfig(
        seed=g(env, "COLDWAKE_SIM_SEED", default_sim.seed, _int, "an integer, e.g. 7"),
        vessels=g(
            env,
            "COLDWAKE_SIM_VESSELS",
            default_sim.vessels,
            _positive_int,
            "a positive integer, e.g. 1",
        ),
        containers=g(
            env,
            "COLDWAKE_SIM_CONTAINERS",
            default_sim.containers,
            _positive_int,
            "a positive integer, e.g. 500",
        ),
        hours=g(
            env,
            "COLDWAKE_SIM_HOURS",
            default_sim.hours,
            _positive,
            "a positive number of hours, e.g. 48",
        ),
        malformed_rate=g(
            env,
            "COLDWAKE_SIM_MALFORMED_RATE",
            default_sim.malformed_rate,
            _rate,
            "a share between 0 and 0.5, e.g. 0.001",
        ),
    )
    kafka = KafkaSettings(
        brokers=brokers,
        timeout_s=g(
            env,
            "COLDWAKE_KAFKA_TIMEOUT_S",
            30.0,
            _positive,
            "a positive number of seconds, e.g. 30",
        ),
        stop_at_end=g(env, "COLDWAKE_KAFKA_STOP_AT_END", False, _flag, "use 1 or 0"),
        idle_s=g(env, "COLDWAKE_IDLE_S", 5.0, _positive, "a positive number of seconds, e.g. 5"),
        group_id=env.get("COLDWAKE_KAFKA_GROUP", "").strip() or "coldwake-vessel",
    )
    return Settings(
        input=inp,
        output=output,
        data_dir=Path(env.get("COLDWAKE_DATA_DIR", "").strip() or "data"),
        thresholds=thresholds,
        sim=sim,
        kafka=kafka,
        batch_size=g(
            env, "COLDWAKE_BATCH_SIZE", 2000, _positive_int, "a positive integer, e.g. 2000"
        ),
        progress_s=g(
            env,
            "COLDWAKE_PROGRESS_S",
            5.0,
            _non_negative,
            "seconds between progress lines, 0 for none",
        ),
    )
