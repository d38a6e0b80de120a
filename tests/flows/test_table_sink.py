"""The table's Bytewax sink in a dataflow: latest rows, replays skipped, resume checked."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSource, cluster_main, run_main

from state.reader import TableReader
from state.sink import TableSink
from state.store import TableWriter
from state.table import StoreError, TableUpdate, table_path


def _row(key: str, **fields: object) -> tuple[str, bytes]:
    return key, orjson.dumps({"container_id": key, **fields})


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
