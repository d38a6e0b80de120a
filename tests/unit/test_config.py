"""Configuration: defaults, and one clear line naming the variable for each bad value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flows.config import ConfigError, load

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_follow_the_contract() -> None:
    s = load({})
    assert (s.input.kind, s.output, s.data_dir) == ("sim", "local", Path("data"))
    th = s.thresholds
    assert (th.tolerance_c, th.excursion_min, th.silence_min, th.window_min, th.door_speed_kn) == (
        2.0,
        30.0,
        30.0,
        15.0,
        2.0,
    )


def test_file_input_lists_partitions_in_order(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.touch()
    b.touch()
    assert load({"COLDWAKE_INPUT": f"file:{b},{a}"}).input.paths == (b, a)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"COLDWAKE_TOLERANCE_C": "abc"}, "COLDWAKE_TOLERANCE_C='abc' is not valid"),
        ({"COLDWAKE_WINDOW_MIN": "-5"}, "COLDWAKE_WINDOW_MIN='-5' is not valid"),
        ({"COLDWAKE_SILENCE_MIN": "nan"}, "COLDWAKE_SILENCE_MIN='nan' is not valid"),
        ({"COLDWAKE_INPUT": "foo"}, "use sim, kafka or file:PATH"),
        ({"COLDWAKE_INPUT": "file:/no/such.jsonl"}, "/no/such.jsonl, which is not a readable"),
        ({"COLDWAKE_OUTPUT": "s3"}, "COLDWAKE_OUTPUT='s3' is not valid: use local or kafka"),
        ({"COLDWAKE_INPUT": "kafka"}, "COLDWAKE_BROKERS is not set"),
        ({"COLDWAKE_KAFKA_STOP_AT_END": "maybe"}, "COLDWAKE_KAFKA_STOP_AT_END='maybe'"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load(env)


def test_the_job_stops_at_start_with_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bytewax.run", "flows.vessel"],
        cwd=ROOT,
        capture_output=True,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(ROOT),
            "COLDWAKE_DATA_DIR": str(tmp_path),
            "COLDWAKE_DOOR_SPEED_KN": "fast",
        },
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines() == [
        "coldwake: configuration error: COLDWAKE_DOOR_SPEED_KN='fast' is not valid: "
        "knots >= 0, e.g. 2.0"
    ]
