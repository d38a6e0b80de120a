"""Bytewax sink that keeps the fleet tables' local store (`state.fleet_store`) up to date.

One partition per shard. Each partition applies the fleet flow's changes to its
shard and forwards them to a changelog (the tables' compacted topics). On resume
it rolls its shard back to the recovery snapshot and re-publishes the rows it
restored, so that store and changelog both hold what the snapshot saw before
the replay re-emits what followed it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from flows import metrics
from flows.fleet_core.names import shard_of
from flows.fleet_core.tables import Change
from state.fleet_layout import SHARD_NAMES, shard_path
from state.fleet_store import ShardWriter

__all__ = ["Changelog", "FleetTableSink"]


class Changelog(Protocol):
    """Where a partition forwards its changes (the fleet tables' compacted topics)."""

    def publish(self, table: str, key: str, value: bytes | None) -> None:
        """Queue one row change; `None` is a tombstone (the row was deleted)."""

    def flush(self) -> None:
        """Return once every queued change is delivered; raise (or stop the run) if one fails."""

    def close(self) -> None:
        """Release the changelog."""


class _FleetPartition(StatefulSinkPartition[Change, int | None]):
    def __init__(self, writer: ShardWriter, changelog: Changelog | None) -> None:
        self._writer = writer
        self._changelog = changelog
        self._snapshot_timer = metrics.snapshot_timer("tables")

    def write_batch(self, values: list[Change]) -> None:
        self._writer.apply(values)
        _publish(self._changelog, values)
        metrics.table_changes(values)

    def snapshot(self) -> int | None:
        # Both must hold the epoch before Bytewax may commit it: the changelog
        # is flushed here, the shard syncs its WAL in its own snapshot().
        with self._snapshot_timer.time():
            if self._changelog is not None:
                self._changelog.flush()
            return self._writer.snapshot()

    def close(self) -> None:
        try:
            if self._changelog is not None:
                self._changelog.close()
        finally:
            self._writer.close()


class FleetTableSink(FixedPartitionedSink[Change, int | None]):
    """Write `(row key, Change)` items to the fleet store under `data_dir`.

    Every worker lists every shard (a local directory all processes on the machine
    can reach); Bytewax builds each on exactly one worker, its single writer. The
    resume state is the shard's generation at the snapshot. A fresh run (no resume
    state) empties the shard first.

    Args:
        data_dir: The fleet flow's data dir; shards live at `shard_path(data_dir, n)`.
        changelog: Opens one partition's changelog (`None`: keep the store only).
    """

    def __init__(self, data_dir: Path, changelog: Callable[[], Changelog] | None) -> None:
        self._data_dir = data_dir
        self._changelog = changelog

    def list_parts(self) -> list[str]:
        """Return every shard; every worker can reach the local disk."""
        return list(SHARD_NAMES)

    def part_fn(self, item_key: str) -> int:
        """Route a row key to its shard (SHARD_NAMES are sorted, so the index is the shard)."""
        return shard_of(item_key)

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _FleetPartition:
        """Open a shard; empty it on a fresh run, roll it back to the snapshot on a resume.

        Raises:
            StoreError: The shard cannot be opened, or cannot roll back to the
                snapshot (see `ShardWriter.rollback`).
        """
        if for_part not in SHARD_NAMES:
            raise ValueError(f"step {step_id!r}: unknown partition {for_part!r}")
        writer = ShardWriter(shard_path(self._data_dir, SHARD_NAMES.index(for_part)))
        changelog: Changelog | None = None
        try:
            if resume_state is None:
                writer.reset()
                restored: list[Change] = []
            else:
                restored = writer.rollback(resume_state)
                metrics.rolled_back(len(restored))
                # Say it: a person reading the log of a resume wants to know.
                print(
                    f"coldwake: {for_part}: rolled back {len(restored):,} rows written "
                    f"after snapshot {resume_state}",
                    file=sys.stderr,
                    flush=True,
                )
            changelog = self._changelog() if self._changelog is not None else None
            # The changelog got the rolled-back changes too: overwrite them now,
            # before the replay, or rows it never rewrites would stay stale there.
            if changelog is not None and restored:
                _publish(changelog, restored)
                changelog.flush()
        except BaseException:
            try:
                if changelog is not None:
                    changelog.close()
            finally:
                writer.close()
            raise
        return _FleetPartition(writer, changelog)


def _publish(changelog: Changelog | None, changes: list[Change]) -> None:
    if changelog is None:
        return
    for table, key, value in changes:
        changelog.publish(table, key, value)
