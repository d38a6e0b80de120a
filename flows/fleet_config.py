"""The fleet flow's settings: the same `COLDWAKE_*` table (`flows.config`), read its way.

The fleet reads the shore cluster (`COLDWAKE_FLEET_BROKERS`) or, with
`COLDWAKE_INPUT=file:PATH[,PATH...]`, JSONL files each named after the topic it
stands in for (`IMO9778791.reefer.alerts.jsonl`); a directory stands for the
`*.jsonl` files in it that are named after a topic the fleet reads. Every error is
one line naming the variable and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Final

from flows.config import ConfigError, InputSpec, KafkaSettings, check_names, value
from flows.fleet_core.names import input_kind

#: The fleet's consumer group when `COLDWAKE_KAFKA_GROUP` is not set.
FLEET_GROUP: Final = "coldwake-fleet"
JSONL: Final = ".jsonl"


@dataclass(frozen=True, slots=True)
class FleetSettings:
    """Everything a fleet run needs, validated.

    Attributes:
        input: `kafka` (the shore cluster) or `file` with the JSONL files to read.
        data_dir: Where the fleet tables (`state/fleet/`) and dead letters (`out/`) live.
        kafka: The shore cluster's settings (`brokers` is "" in file mode).
        rescan_s: Seconds between looks for new vessels' topics.
        progress_s: Seconds between progress lines (0: none).
    """

    input: InputSpec
    data_dir: Path
    kafka: KafkaSettings
    rescan_s: float
    progress_s: float


def topic_of(path: Path) -> str:
    """The topic a JSONL file stands in for: its name without `.jsonl`."""
    return path.name[: -len(JSONL)] if path.name.endswith(JSONL) else path.name


def _files(text: str) -> tuple[Path, ...]:
    paths: list[Path] = []
    for given in (Path(p) for p in text.split(",") if p):
        if given.is_dir():  # the files in it named after a topic the fleet reads
            found = sorted(given.glob(f"*{JSONL}"))
            paths.extend(p for p in found if input_kind(topic_of(p)) is not None)
        elif given.is_file():
            paths.append(given)
        else:
            raise ConfigError(
                f"COLDWAKE_INPUT names {given}, which is neither a file nor a directory; "
                "give JSONL files or directories as file:PATH[,PATH...]"
            )
    if not paths:
        raise ConfigError(
            f"COLDWAKE_INPUT={('file:' + text)!r} holds no .jsonl file; "
            "give JSONL files or directories of them as file:PATH[,PATH...]"
        )
    for path in paths:
        if input_kind(topic_of(path)) is None:
            raise ConfigError(
                f"COLDWAKE_INPUT names {path}, whose name is not a topic the fleet reads; "
                "name each file after its topic, e.g. IMO9778791.reefer.alerts.jsonl"
            )
    return tuple(paths)


def _input(env: Mapping[str, str]) -> InputSpec:
    text = env.get("COLDWAKE_INPUT", "").strip() or "kafka"
    if text == "kafka":
        return InputSpec("kafka")
    if text.startswith("file:") and len(text) > 5:
        return InputSpec("file", _files(text[5:]))
    raise ConfigError(
        f"COLDWAKE_INPUT={text!r} is not valid for the fleet flow: use kafka (the shore "
        "cluster, COLDWAKE_FLEET_BROKERS) or file:PATH[,PATH...]"
    )


def load_fleet(env: Mapping[str, str] | None = None) -> FleetSettings:
    """Read and validate the fleet's settings; raise `ConfigError` on the first bad one."""
    env = os.environ if env is None else env
    check_names(env)
    v = partial(value, env)
    inp = _input(env)
    brokers = v("COLDWAKE_FLEET_BROKERS")
    if inp.kind == "kafka" and not brokers:
        raise ConfigError(
            "COLDWAKE_FLEET_BROKERS is not set: the fleet flow reads the shore cluster, "
            "e.g. COLDWAKE_FLEET_BROKERS=127.0.0.1:9192 (or set COLDWAKE_INPUT=file:PATH)"
        )
    group = env.get("COLDWAKE_KAFKA_GROUP", "").strip() or FLEET_GROUP
    return FleetSettings(
        input=inp,
        data_dir=v("COLDWAKE_DATA_DIR"),
        kafka=KafkaSettings(
            brokers=brokers,
            timeout_s=v("COLDWAKE_KAFKA_TIMEOUT_S"),
            stop_at_end=v("COLDWAKE_KAFKA_STOP_AT_END"),
            idle_s=v("COLDWAKE_IDLE_S"),
            group_id=group,
        ),
        rescan_s=v("COLDWAKE_FLEET_RESCAN_S"),
        progress_s=v("COLDWAKE_PROGRESS_S"),
    )
