"""Configuration: defaults, and one clear line naming the variable for each bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.config import ConfigError, describe, load, markdown


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


def test_an_unknown_variable_is_named_with_the_likely_fix() -> None:
    with pytest.raises(ConfigError) as err:
        load({"COLDWAKE_WINDOWS_MIN": "5"})
    assert str(err.value) == (
        "COLDWAKE_WINDOWS_MIN is not a Coldwake setting; did you mean COLDWAKE_WINDOW_MIN?"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"COLDWAKE_SIM_HOURS": "9000"},
            "COLDWAKE_SIM_HOURS='9000' is not valid: a positive",
        ),
        ({"COLDWAKE_SIM_CONTAINERS": "0"}, "COLDWAKE_SIM_CONTAINERS='0' is not valid"),
        ({"COLDWAKE_SIM_MALFORMED_RATE": "0.9"}, "COLDWAKE_SIM_MALFORMED_RATE='0.9' is not"),
    ],
)
def test_simulator_settings_fail_in_one_line_naming_the_variable(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load(env)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_describe_lists_every_variable_with_default_and_value_in_force() -> None:
    text = describe({"COLDWAKE_WINDOW_MIN": "5"})
    assert "COLDWAKE_WINDOW_MIN  [default: 15]  now: 5" in text.splitlines()
    assert "COLDWAKE_TOLERANCE_C  [default: 2.0]  now: 2.0" in text.splitlines()
    assert "COLDWAKE_BROKERS  [default: (unset)]  now: (unset)" in text.splitlines()


def test_the_readme_documents_every_variable_as_the_table_defines_it() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert markdown() in readme
