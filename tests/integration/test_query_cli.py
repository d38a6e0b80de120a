"""`python -m state.query` against a real table, run the way the crew runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from state.store import TableWriter
from state.table import table_path

ROOT = Path(__file__).resolve().parents[2]

ROWS = {
    "MSKU1234565": {"container_id": "MSKU1234565", "temp_c": -18.4, "open_alerts": []},
    "MSKU7654321": {"container_id": "MSKU7654321", "temp_c": 4.0, "open_alerts": ["door_open"]},
    "TGHU0000001": {"container_id": "TGHU0000001", "temp_c": -25.1, "open_alerts": []},
}


def query(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "state.query", str(data_dir), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    # The writer stays open, as the running flow's sink would be.
    with TableWriter(table_path(tmp_path)) as writer:
        writer.apply(42, [(key, orjson.dumps(row)) for key, row in ROWS.items()])
        yield tmp_path


def test_get_prints_the_stored_json(data_dir: Path) -> None:
    done = query(data_dir, "get", "MSKU7654321")
    assert done.returncode == 0
    assert done.stdout == orjson.dumps(ROWS["MSKU7654321"]).decode() + "\n"

    pretty = query(data_dir, "get", "MSKU7654321", "--pretty")
    assert pretty.returncode == 0
    assert orjson.loads(pretty.stdout) == ROWS["MSKU7654321"]
    assert len(pretty.stdout.splitlines()) > 1


def test_get_of_an_unknown_container_exits_1_with_a_message(data_dir: Path) -> None:
    done = query(data_dir, "get", "ZZZU9999999")
    assert done.returncode == 1
    assert done.stdout == ""
    assert "ZZZU9999999" in done.stderr


def test_list_prints_one_object_per_line_in_key_order(data_dir: Path) -> None:
    done = query(data_dir, "list")
    assert done.returncode == 0
    assert [orjson.loads(line) for line in done.stdout.splitlines()] == [
        ROWS[key] for key in sorted(ROWS)
    ]

    msku = query(data_dir, "list", "--prefix", "MSKU", "--limit", "1")
    assert [orjson.loads(line) for line in msku.stdout.splitlines()] == [ROWS["MSKU1234565"]]


def test_count_and_position(data_dir: Path) -> None:
    count = query(data_dir, "count")
    assert (count.returncode, count.stdout) == (0, "3\n")
    position = query(data_dir, "position")
    assert (position.returncode, position.stdout) == (0, "42\n")


def test_missing_table_is_one_clear_line_and_exit_2(tmp_path: Path) -> None:
    done = query(tmp_path / "nowhere", "count")
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1
    assert "no container-state table at" in done.stderr
    assert "run the flow first" in done.stderr
    assert not (tmp_path / "nowhere").exists()


def test_bad_arguments_are_one_line_and_exit_2(data_dir: Path) -> None:
    done = query(data_dir, "list", "--limit", "many")
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1
    assert "--limit" in done.stderr
