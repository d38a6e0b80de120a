"""Bytewax sink that keeps the container-state table (`state.store`) up to date.

Writes are idempotent: each `TableUpdate` carries the input position it reflects
and the table refuses positions it has already passed, so updates re-emitted
after a resume never move the table back in time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from flows import metrics
from state.store import TableWriter
from state.table import TABLE_NAME, StoreError, TableUpdate, table_path

__all__ = ["PARTITION", "TableSink"]

PARTITION: Final = TABLE_NAME


class _TablePartition(StatefulSinkPartition[TableUpdate, int | None]):
    def __init__(self, writer: TableWriter) -> None:
        self._writer = writer
        self._snapshot_timer = metrics.snapshot_timer("table")

    def write_batch(self, values: list[TableUpdate]) -> None:
        for update in values:
            # False means a replay of what the table already holds: skip it.
            self._writer.apply(update.position, update.rows)

    def snapshot(self) -> int | None:
        # The recovery snapshot must not claim more than the disk holds.
        with self._snapshot_timer.time():
            self._writer.flush()
            return self._writer.position()

    def close(self) -> None:
        self._writer.close()


class TableSink(FixedPartitionedSink[TableUpdate, int | None]):
    """Write `(key, TableUpdate)` items to the table under `data_dir`.

    One partition, listed by every worker: the table is a local directory that
    every process on the machine can reach, and Bytewax builds the partition on
    exactly one worker, which makes it the table's single writer. A fresh run
    (no resume state) empties the table first.

    Args:
        data_dir: The flow's data dir; the table lives at `table_path(data_dir)`.
    """

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir

    def list_parts(self) -> list[str]:
        """Return the one partition; every worker can reach the local disk."""
        return [PARTITION]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _TablePartition:
        """Open the table; empty it on a fresh run, check it on a resume.

        Raises:
            StoreError: On resume, the table is behind the recovery snapshot
                (it was deleted or replaced since), so rows would be missing.
        """
        path = table_path(self._data_dir)
        writer = TableWriter(path)
        if resume_state is None:
            writer.reset()
            return _TablePartition(writer)
        stored = writer.position()
        if stored is None or stored < resume_state:
            writer.close()
            raise StoreError(
                f"the container-state table at {path} is at position {stored} but step "
                f"{step_id!r} resumes from position {resume_state}: the table was deleted or "
                "replaced since the last snapshot; restore it, or delete the recovery "
                "directory and run again to rebuild it from the input"
            )
        return _TablePartition(writer)
