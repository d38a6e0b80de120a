"""The container-state table on a real RocksDB: writer, reader, crash, Bytewax sink."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import orjson
import pytest
from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSource, cluster_main, run_main

from state.sink import TableSink
from state.store import StoreError, TableReader, TableUpdate, TableWriter, table_path

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


# A writer in its own process, as in production (the flow writes, the crew's
# query tool reads). It applies batches FIRST..LAST for each "FIRST LAST" line on
# stdin and answers LAST; every batch writes every key with the batch number and
# deletes KEYS[0] when the batch number is a multiple of 3. It never calls flush().
WRITER = """
import sys, orjson
from pathlib import Path
from state.store import TableWriter

writer = TableWriter(Path(sys.argv[1]))
keys = [f"MSKU{i:07d}" for i in range(int(sys.argv[2]))]
for line in sys.stdin:
    first, last = map(int, line.split())
    for batch in range(first, last + 1):
        rows = [(k, orjson.dumps({"container_id": k, "batch": batch})) for k in keys]
        if batch % 3 == 0:
            rows[0] = (keys[0], None)
        assert writer.apply(batch, rows)
    print(last, flush=True)
"""
KEYS = 200
LAST = 1000


class _WriterProcess:
    def __init__(self, path: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(KEYS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            env=env,
        )

    @property
    def stdout(self) -> IO[bytes]:
        assert self.proc.stdout is not None
        return self.proc.stdout

    def send(self, first: int, last: int) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{first} {last}\n".encode())
        self.proc.stdin.flush()

    def wait_for(self, last: int, timeout: float = 30.0) -> None:
        ready, _, _ = select.select([self.stdout], [], [], timeout)
        assert ready, "the writer process did not answer"
        assert self.stdout.readline() == f"{last}\n".encode()


@pytest.fixture
def live_writer(tmp_path: Path) -> Iterator[_WriterProcess]:
    writer = _WriterProcess(table_path(tmp_path))
    try:
        yield writer
    finally:
        writer.proc.kill()
        writer.proc.wait()


def _assert_whole_batch(reader: TableReader) -> int | None:
    """Check that rows and position come from one batch; return the position."""
    reader.refresh()
    position = reader.position(refresh=False)
    rows = {key: orjson.loads(value) for key, value in reader.items(refresh=False)}
    if position is None:
        assert rows == {}
        return None
    assert {row["batch"] for row in rows.values()} == {position}
    expected = KEYS - 1 if position % 3 == 0 else KEYS
    assert len(rows) == expected, f"batch {position} half-applied: {len(rows)} rows"
    return position


def test_reader_sees_whole_batches_while_another_process_writes(
    tmp_path: Path, live_writer: _WriterProcess
) -> None:
    path = table_path(tmp_path)
    live_writer.send(1, 3)
    live_writer.wait_for(3)
    # Nothing has reached an SST file yet: the reader must find the rows in the WAL.
    assert not list(path.glob("*.sst"))
    with TableReader(path) as reader:
        assert _assert_whole_batch(reader) == 3

        live_writer.send(4, LAST)
        seen = set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            finished = bool(select.select([live_writer.stdout], [], [], 0)[0])
            seen.add(_assert_whole_batch(reader))
            if finished:
                break
        live_writer.wait_for(LAST, timeout=0)
        assert _assert_whole_batch(reader) == LAST
        # The reader really overlapped the writer: it saw batches in between.
        assert len(seen - {3, LAST}) >= 1


def test_second_writer_is_refused_while_the_flow_runs(
    tmp_path: Path, live_writer: _WriterProcess
) -> None:
    live_writer.send(1, 1)
    live_writer.wait_for(1)
    with pytest.raises(StoreError, match="open in another process"):
        TableWriter(table_path(tmp_path))


def test_killed_writer_loses_no_applied_batch(tmp_path: Path, live_writer: _WriterProcess) -> None:
    path = table_path(tmp_path)
    live_writer.send(1, 5)
    live_writer.wait_for(5)
    live_writer.proc.send_signal(signal.SIGKILL)
    live_writer.proc.wait()

    with TableReader(path) as reader:
        assert _assert_whole_batch(reader) == 5
    with TableWriter(path) as writer:
        assert writer.position() == 5
        assert not writer.apply(5, [])
        assert writer.apply(6, [("MSKU0000000", None)])


def _run_sink(data_dir: Path, updates: list[TableUpdate], workers: int) -> None:
    flow = Dataflow("table_sink_test")
    stream = op.input("updates", flow, TestingSource([("key", u) for u in updates]))
    op.output("state", stream, TableSink(data_dir))
    if workers == 1:
        run_main(flow)
    else:
        # Every worker lists the partition; Bytewax must build it on one only,
        # or the second writer would hit RocksDB's lock.
        cluster_main(flow, [], 0, worker_count_per_proc=workers)


@pytest.mark.parametrize("workers", [1, 2])
def test_table_sink_in_a_dataflow_keeps_the_latest_rows(tmp_path: Path, workers: int) -> None:
    path = table_path(tmp_path)
    with TableWriter(path) as writer:
        writer.apply(99, [_row("LEFTOVER001")])  # from an earlier run

    _run_sink(
        tmp_path,
        [
            TableUpdate(1, (_row("MSKU1234565", temp_c=-18.0), _row("TGHU0000001"))),
            TableUpdate(2, (_row("MSKU1234565", temp_c=-17.5),)),
            TableUpdate(2, (_row("MSKU1234565", temp_c=99.0),)),  # a replay: skipped
            TableUpdate(3, (("TGHU0000001", None),)),
        ],
        workers,
    )

    with TableReader(path) as reader:
        # A fresh run starts from an empty table: the leftover row is gone.
        assert dict(reader.items()) == {"MSKU1234565": _row("MSKU1234565", temp_c=-17.5)[1]}
        assert reader.position() == 3


def test_table_sink_resume_keeps_rows_and_refuses_a_lost_table(tmp_path: Path) -> None:
    path = table_path(tmp_path)
    with TableWriter(path) as writer:
        writer.apply(7, [_row("MSKU1234565")])

    part = TableSink(tmp_path).build_part("state", "container-state", 5)
    part.write_batch([TableUpdate(6, (("MSKU1234565", None),)), TableUpdate(8, (_row("B"),))])
    assert part.snapshot() == 8
    part.close()
    with TableReader(path) as reader:
        assert [key for key, _ in reader.items()] == ["B", "MSKU1234565"]

    with pytest.raises(StoreError, match="deleted or replaced"):
        TableSink(tmp_path).build_part("state", "container-state", 9)
