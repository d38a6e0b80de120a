"""`python -m state.query` against a real table, run the way the crew runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import orjson
import pytest

from flows.fleet_core.names import shard_of
from state.fleet_layout import shard_path
from state.fleet_store import ShardWriter
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


# -- tables and dump: the vessel's table and the fleet's ---------------------------

FLEET_ROWS: list[tuple[str, str, bytes | None]] = [
    ("vessels", "IMO9811000", b'{"vessel_id":"IMO9811000","last_heard":"2024-05-01T09:30:00Z"}'),
    ("vessels", "IMO9778791", b'{"vessel_id":"IMO9778791","last_heard":"2024-05-01T10:00:00Z"}'),
    ("container-state", "MSKU1234565", b'{"container_id":"MSKU1234565","temp_c":-18.4}'),
    ("cargo", "2024-05-01T11|frozen", b'{"hour":"2024-05-01T11","band":"frozen","containers":9}'),
    # Stored as the flow encoded it, spaces and all: `dump` embeds it verbatim.
    ("cargo", "2024-05-01T10|chilled", b'{"hour": "2024-05-01T10", "band": "chilled"}'),
    ("cargo", "2024-05-01T10|frozen", b'{"hour":"2024-05-01T10","band":"frozen","containers":12}'),
    ("cargo", "2024-05-01T09|warm", b'{"hour":"2024-05-01T09","band":"warm","containers":1}'),
    ("cargo", "2024-05-01T09|warm", None),
]


@pytest.fixture
def fleet_dir(tmp_path: Path) -> Iterator[Path]:
    # The shard writers stay open, as the running fleet flow's sink partitions would be.
    with ExitStack() as stack:
        for shard in sorted({shard_of(key) for _, key, _ in FLEET_ROWS}):
            writer = stack.enter_context(ShardWriter(shard_path(tmp_path, shard)))
            writer.apply([row for row in FLEET_ROWS if shard_of(row[1]) == shard])
            writer.snapshot()
        yield tmp_path


FLEET_TABLES = (
    '{"table":"container-state","rows":1}\n'
    '{"table":"vessels","rows":2}\n'
    '{"table":"open-alerts","rows":0}\n'
    '{"table":"cargo","rows":3}\n'
    '{"table":"grid","rows":0}\n'
    '{"table":"hourly","rows":0}\n'
    '{"table":"container-windows","rows":0}\n'
    '{"table":"container-alerts","rows":0}\n'
)


def test_tables_of_a_fleet_dir_lists_the_six_fleet_tables(fleet_dir: Path) -> None:
    done = query(fleet_dir, "tables")
    assert (done.returncode, done.stdout, done.stderr) == (0, FLEET_TABLES, "")


def test_tables_of_a_vessel_dir_lists_its_container_state_table(data_dir: Path) -> None:
    done = query(data_dir, "tables")
    assert (done.returncode, done.stdout) == (0, '{"table":"container-state","rows":3}\n')


def test_tables_of_a_dir_with_both_lists_both(fleet_dir: Path) -> None:
    with TableWriter(table_path(fleet_dir)) as writer:
        writer.apply(1, [("TGHU0000001", b'{"container_id":"TGHU0000001"}')])
    done = query(fleet_dir, "tables")
    assert (done.returncode, done.stdout) == (
        0,
        '{"table":"container-state","rows":1}\n' + FLEET_TABLES,
    )


def test_dump_prints_every_row_of_a_fleet_table_in_key_order(fleet_dir: Path) -> None:
    done = query(fleet_dir, "dump", "cargo")
    assert done.returncode == 0
    assert done.stdout == (
        '{"key":"2024-05-01T10|chilled","value":{"hour": "2024-05-01T10", "band": "chilled"}}\n'
        '{"key":"2024-05-01T10|frozen","value":'
        '{"hour":"2024-05-01T10","band":"frozen","containers":12}}\n'
        '{"key":"2024-05-01T11|frozen","value":'
        '{"hour":"2024-05-01T11","band":"frozen","containers":9}}\n'
    )
    vessels = query(fleet_dir, "dump", "vessels")
    assert vessels.stdout == (
        '{"key":"IMO9778791","value":'
        '{"vessel_id":"IMO9778791","last_heard":"2024-05-01T10:00:00Z"}}\n'
        '{"key":"IMO9811000","value":'
        '{"vessel_id":"IMO9811000","last_heard":"2024-05-01T09:30:00Z"}}\n'
    )
    empty = query(fleet_dir, "dump", "grid")
    assert (empty.returncode, empty.stdout) == (0, "")


def test_dump_of_a_vessel_dir_prints_its_container_state_table(data_dir: Path) -> None:
    done = query(data_dir, "dump", "container-state")
    assert done.returncode == 0
    assert done.stdout == (
        '{"key":"MSKU1234565","value":'
        '{"container_id":"MSKU1234565","temp_c":-18.4,"open_alerts":[]}}\n'
        '{"key":"MSKU7654321","value":'
        '{"container_id":"MSKU7654321","temp_c":4.0,"open_alerts":["door_open"]}}\n'
        '{"key":"TGHU0000001","value":'
        '{"container_id":"TGHU0000001","temp_c":-25.1,"open_alerts":[]}}\n'
    )


def test_dump_of_an_unknown_table_names_the_fleet_tables(fleet_dir: Path) -> None:
    done = query(fleet_dir, "dump", "ships")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"error: no table 'ships' in {fleet_dir}; its tables are "
        "container-state, vessels, open-alerts, cargo, grid, hourly, "
        "container-windows, container-alerts\n"
    )


def test_dump_of_a_fleet_table_in_a_vessel_dir_names_its_one_table(data_dir: Path) -> None:
    done = query(data_dir, "dump", "vessels")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"error: no table 'vessels' in {data_dir}; its tables are container-state\n"
    )


def test_tables_and_dump_of_a_dir_without_tables_say_run_the_flow(tmp_path: Path) -> None:
    for args in (("tables",), ("dump", "vessels")):
        done = query(tmp_path, *args)
        assert done.returncode == 2
        assert done.stdout == ""
        assert len(done.stderr.splitlines()) == 1
        assert "run the flow first" in done.stderr
