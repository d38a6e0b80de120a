"""The container-state table written by another process: whole batches, one writer, kill -9."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import orjson
import pytest

from state.reader import TableReader
from state.store import TableWriter
from state.table import StoreError, table_path

ROOT = Path(__file__).resolve().parents[2]


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
