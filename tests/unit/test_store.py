"""The container-state table on a real RocksDB, in this process: writer and reader."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

from state.reader import TableReader
from state.store import TableWriter
from state.table import StoreError, table_path

ROOT = Path(__file__).resolve().parents[2]


def _row(key: str, **fields: object) -> tuple[str, bytes]:
    return key, orjson.dumps({"container_id": key, **fields})


def test_rows_and_position_survive_close_and_reopen(tmp_path: Path) -> None:
    path = table_path(tmp_path)
    with TableWriter(path) as writer:
        assert writer.position() is None
        assert writer.apply(7, [_row("MSKU1234565", temp_c=-18.5), _row("TGHU0000001")])

    with TableWriter(path) as writer:
        assert writer.position() == 7
    with TableReader(path) as reader:
        assert reader.get_json("MSKU1234565") == {"container_id": "MSKU1234565", "temp_c": -18.5}
        assert reader.count() == 2
        assert reader.position() == 7


def test_stored_bytes_come_back_unchanged(tmp_path: Path) -> None:
    # The store moves bytes: whatever JSON encoding the flow chose is what readers get.
    raw = b'{"container_id": "MSKU1234565",  "temp_c": -18.50}'
    with TableWriter(table_path(tmp_path)) as writer:
        writer.apply(1, [("MSKU1234565", raw)])
    with TableReader(table_path(tmp_path)) as reader:
        assert reader.get("MSKU1234565") == raw
        assert reader.get("MSKU0000000") is None
        assert reader.get_json("MSKU0000000") is None


def test_replayed_position_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    path = table_path(tmp_path)
    with TableWriter(path) as writer:
        writer.apply(10, [_row("MSKU1234565", temp_c=-18.0)])
        assert not writer.apply(10, [_row("MSKU1234565", temp_c=99.0)])
        assert not writer.apply(4, [_row("MSKU1234565", temp_c=99.0), _row("NEW0000001")])
        assert writer.position() == 10
    with TableReader(path) as reader:
        assert reader.get_json("MSKU1234565") == {"container_id": "MSKU1234565", "temp_c": -18.0}
        assert reader.count() == 1
        assert reader.position() == 10


def test_none_value_deletes_the_row(tmp_path: Path) -> None:
    path = table_path(tmp_path)
    with TableWriter(path) as writer:
        writer.apply(1, [_row("MSKU1234565"), _row("TGHU0000001")])
        writer.apply(2, [("MSKU1234565", None), ("NEVER000001", None)])
    with TableReader(path) as reader:
        assert [key for key, _ in reader.items()] == ["TGHU0000001"]
        assert reader.position() == 2


def test_reset_empties_rows_and_position(tmp_path: Path) -> None:
    path = table_path(tmp_path)
    with TableWriter(path) as writer:
        writer.apply(50, [_row(f"MSKU{i:07d}") for i in range(100)])
        writer.reset()
        assert writer.position() is None
        # A fresh run counts its input from the start again.
        assert writer.apply(1, [_row("TGHU0000001")])
    with TableReader(path) as reader:
        assert [key for key, _ in reader.items()] == ["TGHU0000001"]
        assert reader.position() == 1


def test_items_are_sorted_and_honour_prefix_and_limit(tmp_path: Path) -> None:
    path = table_path(tmp_path)
    keys = ["TGHU0000002", "MSKU0000002", "MSKU0000001", "MSK", "MSL0000001", "ÄBC0000001"]
    with TableWriter(path) as writer:
        writer.apply(1, [_row(key) for key in keys])
    with TableReader(path) as reader:
        assert [key for key, _ in reader.items()] == sorted(keys, key=str.encode)
        assert [key for key, _ in reader.items(prefix="MSKU")] == ["MSKU0000001", "MSKU0000002"]
        assert [key for key, _ in reader.items(prefix="MSK", limit=2)] == ["MSK", "MSKU0000001"]
        assert list(reader.items(limit=0)) == []
        assert list(reader.items(prefix="ZZZ")) == []
        with pytest.raises(ValueError, match="limit"):
            reader.items(limit=-1)


def test_reader_sees_new_writes_only_after_refresh(tmp_path: Path) -> None:
    path = table_path(tmp_path)
    with TableWriter(path) as writer:
        writer.apply(1, [_row("MSKU1234565", temp_c=-18.0)])
        writer.flush()
        with TableReader(path) as reader:
            writer.apply(2, [_row("MSKU1234565", temp_c=-17.0), _row("TGHU0000001")])
            # Without a catch-up the view stays where it was: old row, old position.
            assert reader.get_json("MSKU1234565", refresh=False)["temp_c"] == -18.0
            assert reader.count(refresh=False) == 1
            assert reader.position(refresh=False) == 1
            assert reader.get_json("MSKU1234565")["temp_c"] == -17.0
            assert reader.count() == 2
            assert reader.position() == 2


def test_reader_follows_writer_restarts_but_refuses_a_replaced_table(tmp_path: Path) -> None:
    path = table_path(tmp_path)
    with TableWriter(path) as writer:
        writer.apply(1, [_row("MSKU1234565")])
    with TableReader(path) as reader:
        # The flow restarts (a fresh run resets the table): the reader follows.
        with TableWriter(path) as writer:
            writer.reset()
            writer.apply(1, [_row("TGHU0000001")])
        assert [key for key, _ in reader.items()] == ["TGHU0000001"]

        # Someone deletes the directory and a new table appears: the old view
        # must not be served as if it were current.
        shutil.rmtree(path)
        with TableWriter(path) as writer:
            writer.apply(1, [_row("NEWU0000001")])
        with pytest.raises(StoreError, match="deleted or replaced"):
            reader.count()


def test_reader_without_table_says_run_the_flow_and_creates_nothing(tmp_path: Path) -> None:
    path = table_path(tmp_path)
    with pytest.raises(StoreError, match=r"no container-state table at .*; run the flow first"):
        TableReader(path)
    assert not (tmp_path / "state").exists()


def test_closed_reader_and_writer_refuse_use(tmp_path: Path) -> None:
    path = table_path(tmp_path)
    writer = TableWriter(path)
    writer.apply(1, [_row("MSKU1234565")])
    writer.close()
    writer.close()
    with pytest.raises(StoreError, match="closed"):
        writer.apply(2, [])
    reader = TableReader(path)
    rows = reader.items()
    reader.close()
    with pytest.raises(StoreError, match="closed"):
        reader.get("MSKU1234565")
    with pytest.raises(StoreError, match="closed"):
        next(rows)
