"""The fleet flow's settings: what it reads, and one clear line for each mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.config import ConfigError
from flows.fleet_config import load_fleet


def test_kafka_is_the_default_and_needs_the_shore_brokers():
    with pytest.raises(ConfigError) as err:
        load_fleet({})
    assert str(err.value) == (
        "COLDWAKE_FLEET_BROKERS is not set: the fleet flow reads the shore cluster, "
        "e.g. COLDWAKE_FLEET_BROKERS=127.0.0.1:9192 (or set COLDWAKE_INPUT=file:PATH)"
    )
    settings = load_fleet({"COLDWAKE_FLEET_BROKERS": "127.0.0.1:9192"})
    assert (settings.input.kind, settings.kafka.brokers) == ("kafka", "127.0.0.1:9192")
    assert settings.kafka.group_id == "coldwake-fleet"
    assert settings.rescan_s == 60.0


def test_files_and_directories_of_topic_named_files(tmp_path: Path):
    (tmp_path / "IMO9778791.reefer.alerts.jsonl").write_bytes(b"")
    (tmp_path / "IMO9778791.reefer.telemetry.jsonl").write_bytes(b"")  # not read: left out
    (tmp_path / "notes.txt").write_bytes(b"")
    other = tmp_path / "vessel.position.jsonl"
    other.write_bytes(b"")
    settings = load_fleet({"COLDWAKE_INPUT": f"file:{tmp_path}"})
    assert settings.input.paths == (
        tmp_path / "IMO9778791.reefer.alerts.jsonl",
        tmp_path / "vessel.position.jsonl",
    )
    assert load_fleet({"COLDWAKE_INPUT": f"file:{other}"}).input.paths == (other,)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "alerts.jsonl",
            "COLDWAKE_INPUT names {path}, whose name is not a topic the fleet reads; "
            "name each file after its topic, e.g. IMO9778791.reefer.alerts.jsonl",
        ),
        (
            "missing.jsonl",
            "COLDWAKE_INPUT names {path}, which is neither a file nor a directory; "
            "give JSONL files or directories as file:PATH[,PATH...]",
        ),
    ],
)
def test_a_file_the_fleet_cannot_read_is_one_line(tmp_path: Path, name: str, message: str):
    path = tmp_path / name
    if name != "missing.jsonl":
        path.write_bytes(b"")
    with pytest.raises(ConfigError) as err:
        load_fleet({"COLDWAKE_INPUT": f"file:{path}"})
    assert str(err.value) == message.format(path=path)


def test_the_simulator_is_not_a_fleet_input():
    with pytest.raises(ConfigError) as err:
        load_fleet({"COLDWAKE_INPUT": "sim"})
    assert str(err.value) == (
        "COLDWAKE_INPUT='sim' is not valid for the fleet flow: use kafka (the shore "
        "cluster, COLDWAKE_FLEET_BROKERS) or file:PATH[,PATH...]"
    )
