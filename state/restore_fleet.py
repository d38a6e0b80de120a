"""Rebuild the fleet store's shards from the recovery snapshot (`python -m state.restore`).

Why the snapshot and not the `fleet.*` topics: a resume rolls each shard back to the
snapshot with its undo log, which died with the store. The topics may hold rows
written after the snapshot, and nothing says which, so a shard filled from them
could keep a row the replay never rewrites (an alert opened and closed after the
snapshot nets out to no change on replay: its `open-alerts` row would stay). The
snapshot's stage-2 state (`rows`) holds what every row last emitted, and the sink
(`tables`) writes each epoch's changes before its snapshot, so those values are
exactly what each shard held at the snapshot: the content a rollback gives back.

With brokers, the topics are then compared with the snapshot, and every row that
differs is published again with its snapshot value (a tombstone if it has none),
as the rollback of a resume does: the replay then rewrites what followed.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from flows.edges.kafka.compacted import MissingTopicError, publish, read_compacted
from flows.fleet_core.deltas import split_row_id
from flows.fleet_core.names import TABLES, shard_of
from flows.fleet_core.tables import Change, Row
from flows.fleet_dataflow import FLOW_ID
from flows.recovery import saved_snapshots
from state.fleet_layout import SHARD_NAMES, shard_path
from state.fleet_store import ShardWriter

#: The stage-2 step (keyed by `table:key`, state `Row`) and the sink (state: generation).
ROWS_STEP: Final = f"{FLOW_ID}.rows"
TABLES_STEP: Final = f"{FLOW_ID}.tables"

#: `(topic, key)` -> the row's JSON, as the `fleet.*` topics carry it.
TopicRows = dict[tuple[str, bytes], bytes]


class SnapshotError(Exception):
    """The recovery snapshot cannot give back the fleet store; the message says why."""


@dataclass(slots=True)
class FleetSnapshot:
    """The fleet store as of a recovery snapshot.

    Attributes:
        generations: shard -> the generation its sink partition resumes from.
        rows: shard -> its rows, `(table, key, JSON)`.
    """

    generations: dict[int, int] = field(default_factory=dict)
    rows: dict[int, list[Change]] = field(default_factory=dict)

    def count(self) -> int:
        """Rows over all shards."""
        return sum(len(rows) for rows in self.rows.values())

    def topic_rows(self) -> TopicRows:
        """The rows as their compacted topics should end: `(topic, key)` -> JSON."""
        topics = {t.name: t.topic for t in TABLES}
        return {
            (topics[table], key.encode()): value
            for rows in self.rows.values()
            for table, key, value in rows
            if value is not None
        }


def fleet_snapshot(recovery: Path) -> FleetSnapshot | None:
    """Read the shards' content and generations from `recovery`; None if it has none.

    Raises:
        SnapshotError: A state is not what the fleet flow snapshots, or a shard holds
            rows but its sink partition has no snapshot.
    """
    sink = saved_snapshots(recovery, TABLES_STEP)
    if not sink:
        return None
    snap = FleetSnapshot()
    for part, blob in sink.items():
        generation = None if blob is None else pickle.loads(blob)
        if part not in SHARD_NAMES or not (generation is None or isinstance(generation, int)):
            raise SnapshotError(f"step {TABLES_STEP!r} has an unexpected state for {part!r}")
        if generation is not None:
            snap.generations[SHARD_NAMES.index(part)] = generation
    for row_id, blob in saved_snapshots(recovery, ROWS_STEP).items():
        if blob is None:
            continue  # discarded: the row holds nothing, so it does not exist
        row = pickle.loads(blob)
        if not isinstance(row, Row):
            raise SnapshotError(f"step {ROWS_STEP!r} has an unexpected state for {row_id!r}")
        if row.emitted is not None:
            table, key = split_row_id(row_id)
            snap.rows.setdefault(shard_of(key), []).append((table, key, row.emitted))
    orphans = sorted(SHARD_NAMES[s] for s in set(snap.rows) - set(snap.generations))
    if orphans:
        raise SnapshotError(
            f"rows of {', '.join(orphans)} are in the snapshot but those shards' sink has "
            "no snapshot: the recovery directory is not one fleet run's"
        )
    return snap


def write_shards(data_dir: Path, snap: FleetSnapshot) -> None:
    """Write every snapshotted shard: its rows, and a generation a resume continues from."""
    for shard, generation in sorted(snap.generations.items()):
        with ShardWriter(shard_path(data_dir, shard)) as writer:
            writer.restore(generation, snap.rows.get(shard, []))


def read_topics(brokers: str, timeout_s: float) -> TopicRows | None:
    """Every `fleet.*` topic's rows; None when none of them exists (a file-input run).

    Raises:
        KafkaUnavailableError: No broker answered, or a read stalled.
    """
    rows: TopicRows = {}
    found = 0
    for table in TABLES:
        try:
            compacted = read_compacted(brokers, table.topic, timeout_s)
        except MissingTopicError:
            continue
        found += 1
        rows.update(((table.topic, key), value) for key, value in compacted.rows.items())
    return rows if found else None


@dataclass(frozen=True, slots=True)
class TopicDiff:
    """How the topics differ from the snapshot.

    Attributes:
        ahead: Rows the topics hold with another value than the snapshot's, or that
            the snapshot lacks: written after it.
        behind: Snapshot rows the topics lack.
        fixes: `(topic, key, snapshot JSON or None)` that make the topics match it.
    """

    ahead: int
    behind: int
    fixes: list[tuple[str, bytes, bytes | None]]


def diff_topics(snap: FleetSnapshot, topics: TopicRows) -> TopicDiff:
    """Compare the topics' rows with the snapshot's (pure)."""
    expected = snap.topic_rows()
    fixes: list[tuple[str, bytes, bytes | None]] = [
        (t, k, expected.get((t, k))) for (t, k), v in topics.items() if expected.get((t, k)) != v
    ]
    ahead = len(fixes)
    fixes.extend((t, k, v) for (t, k), v in expected.items() if (t, k) not in topics)
    return TopicDiff(ahead, len(fixes) - ahead, sorted(fixes, key=_by_topic_key))


def _by_topic_key(fix: tuple[str, bytes, bytes | None]) -> tuple[str, bytes]:
    return fix[0], fix[1]


def repair_topics(brokers: str, diff: TopicDiff, timeout_s: float) -> int:
    """Publish the snapshot's value of every row that differs; return how many."""
    return publish(brokers, diff.fixes, timeout_s) if diff.fixes else 0


def describe_topics(brokers: str, diff: TopicDiff | None, say: Callable[[str], None]) -> None:
    """Say in one line what the comparison with the topics found and did."""
    if diff is None:
        say(f"no fleet.* topic on {brokers}: nothing to compare (a file-input fleet has none)")
        return
    if not diff.fixes:
        say(f"the fleet.* topics on {brokers} match the snapshot")
        return
    say(
        f"the fleet.* topics on {brokers} were {diff.ahead:,} rows ahead of the snapshot "
        f"and {diff.behind:,} behind; republished the snapshot's {len(diff.fixes):,} rows, "
        "as a resume's rollback does (the resumed run rewrites what followed)"
    )
