"""`state.restore` without Kafka: recovery reading, the fleet snapshot, a shard's restore,
the topic comparison and the command's one-line refusals."""

from __future__ import annotations

import pickle
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from bytewax.recovery import init_db_dir

from flows.fleet_core.names import CARGO, OPEN_ALERTS, VESSELS, shard_of
from flows.fleet_core.tables import Row
from flows.recovery import resume_epoch, saved_snapshots, saved_state
from state import restore_fleet as fleet
from state.fleet_layout import SHARD_NAMES, shard_path
from state.fleet_reader import FleetReader
from state.fleet_store import ShardWriter
from state.restore import TABLE_STEP, main
from state.store import TableWriter
from state.table import StoreError, table_path

Snap = tuple[str, str, int, object]  # step, key, epoch, state (pickled unless None)


def recovery(
    path: Path,
    snaps: list[Snap],
    executions: list[tuple[int, int, int]] | None = None,
    fronts: list[tuple[int, int, int]] | None = None,
    parts: int = 2,
) -> Path:
    """A Bytewax 0.21 recovery directory holding these rows, spread over its partitions
    (by default one execution of one worker, which reached epoch 3)."""
    executions = [(0, 1, 1)] if executions is None else executions
    fronts = [(0, 0, 3)] if fronts is None else fronts
    path.mkdir(parents=True, exist_ok=True)
    init_db_dir(path, parts)
    for i in range(parts):
        with closing(sqlite3.connect(path / f"part-{i}.sqlite3")) as db, db:
            db.executemany(
                "INSERT INTO exs (ex_num, worker_count, resume_epoch) VALUES (?, ?, ?)",
                executions[i::parts],
            )
            db.executemany(
                "INSERT INTO fronts (ex_num, worker_index, worker_frontier) VALUES (?, ?, ?)",
                fronts[i::parts],
            )
            db.executemany(
                "INSERT INTO snaps (step_id, state_key, snap_epoch, ser_change) VALUES (?,?,?,?)",
                [
                    (step, key, epoch, None if state is None else pickle.dumps(state))
                    for step, key, epoch, state in snaps[i::parts]
                ],
            )
    return path


# -- reading a recovery directory ----------------------------------------------------


def test_a_resume_starts_at_the_least_worker_frontier_of_the_last_execution(
    tmp_path: Path,
) -> None:
    path = recovery(
        tmp_path / "rec",
        [],
        executions=[(0, 2, 1), (1, 3, 4)],
        # Execution 1: worker 0 reached 9, worker 1 recorded nothing (it is at 4), worker 2 7.
        fronts=[(0, 0, 20), (1, 0, 9), (1, 2, 7), (0, 1, 20)],
    )
    assert resume_epoch(path) == 4


def test_no_execution_means_no_resume(tmp_path: Path) -> None:
    empty = tmp_path / "rec"
    empty.mkdir()
    init_db_dir(empty, 1)
    assert resume_epoch(empty) is None
    assert resume_epoch(tmp_path / "missing") is None
    assert saved_snapshots(empty, "s") == {}


def test_each_key_gets_its_latest_snapshot_before_the_resume_epoch(tmp_path: Path) -> None:
    path = recovery(
        tmp_path / "rec",
        [
            ("s", "a", 1, 10),
            ("s", "a", 2, 20),
            ("s", "a", 3, 30),  # the resume epoch (3) itself is not handed over
            ("s", "b", 1, 1),
            ("s", "b", 2, None),  # discarded
            ("t", "a", 1, 99),
        ],
    )
    snaps = saved_snapshots(path, "s")
    assert {k: None if v is None else pickle.loads(v) for k, v in snaps.items()} == {
        "a": 20,
        "b": None,
    }
    assert list(saved_snapshots(path, "s", "a")) == ["a"]
    assert saved_state(path, "s", "a") is None  # not bytes: not the detect step's kind


# -- the fleet snapshot ----------------------------------------------------------------


def _row(emitted: bytes | None) -> Row:
    return Row(sums={("n", ""): 1}, emitted=emitted)


def test_the_fleet_snapshot_is_every_emitted_row_in_its_shard(tmp_path: Path) -> None:
    keys = ["IMO9778791", "IMO9531129", "IMO9811000"]
    path = recovery(
        tmp_path / "rec",
        [
            *[(fleet.TABLES_STEP, name, 2, n + 5) for n, name in enumerate(SHARD_NAMES)],
            *[(fleet.ROWS_STEP, f"vessels:{k}", 2, _row(k.encode())) for k in keys],
            (fleet.ROWS_STEP, "cargo:h|frozen", 1, _row(b"{}")),
            (fleet.ROWS_STEP, "cargo:h|frozen", 2, None),  # discarded since: gone
            (fleet.ROWS_STEP, "open-alerts:x", 2, _row(None)),  # never emitted a row
        ],
    )
    snap = fleet.fleet_snapshot(path)
    assert snap is not None
    assert snap.generations == {n: n + 5 for n in range(len(SHARD_NAMES))}
    assert snap.count() == 3
    for k in keys:
        assert ("vessels", k, k.encode()) in snap.rows[shard_of(k)]
    assert snap.topic_rows() == {(VESSELS.topic, k.encode()): k.encode() for k in keys}


def test_rows_of_a_shard_without_a_sink_snapshot_are_refused(tmp_path: Path) -> None:
    key = "IMO9778791"
    others = [n for n in SHARD_NAMES if n != SHARD_NAMES[shard_of(key)]]
    path = recovery(
        tmp_path / "rec",
        [
            *[(fleet.TABLES_STEP, n, 2, 1) for n in others],
            (fleet.ROWS_STEP, f"vessels:{key}", 2, _row(b"{}")),
        ],
    )
    with pytest.raises(fleet.SnapshotError, match="not one fleet run's"):
        fleet.fleet_snapshot(path)
    assert fleet.fleet_snapshot(recovery(tmp_path / "none", [])) is None


def test_topics_ahead_and_behind_the_snapshot_are_put_back(tmp_path: Path) -> None:
    snap = fleet.FleetSnapshot({0: 1}, {0: [("vessels", "a", b"A"), ("vessels", "b", b"B")]})
    topics = {
        (VESSELS.topic, b"a"): b"A",  # as in the snapshot
        (VESSELS.topic, b"b"): b"B2",  # written after it
        (OPEN_ALERTS.topic, b"x"): b"X",  # created after it
    }
    diff = fleet.diff_topics(snap, topics)
    assert (diff.ahead, diff.behind) == (2, 0)
    assert diff.fixes == [(OPEN_ALERTS.topic, b"x", None), (VESSELS.topic, b"b", b"B")]
    behind = fleet.diff_topics(snap, {(CARGO.topic, b"c"): b"C"})
    assert (behind.ahead, behind.behind) == (1, 2)


# -- a shard's restore -------------------------------------------------------------------


def test_a_restored_shard_resumes_from_its_generation_with_nothing_to_roll_back(
    tmp_path: Path,
) -> None:
    path = shard_path(tmp_path, 0)
    with ShardWriter(path) as writer:  # what was there goes, undo log included
        writer.apply([("vessels", "old", b"1"), ("vessels", "a", b"0")])
        writer.snapshot()
        writer.apply([("vessels", "a", b"9")])
        writer.restore(41, [("vessels", "a", b"A"), ("cargo", "a", b"C"), ("grid", "g", None)])
        assert writer.generation() == 42
    with ShardWriter(path) as writer:
        assert writer.generation() == 42
        assert writer.rollback(41) == []
        assert writer.snapshot() == 42
    with FleetReader(tmp_path) as reader:
        assert dict(reader.rows("vessels")) == {"a": b"A"}
        assert dict(reader.rows("cargo")) == {"a": b"C"}
        assert reader.tables()["grid"] == 0


def test_a_restored_shard_refuses_a_rollback_before_its_snapshot(tmp_path: Path) -> None:
    with ShardWriter(shard_path(tmp_path, 3)) as writer:
        writer.restore(7, [])
        with pytest.raises(StoreError, match="older than the undo log"):
            writer.rollback(6)
        with pytest.raises(ValueError):
            writer.restore(-1, [])


# -- the command's refusals ---------------------------------------------------------------


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = main(list(args))
    return code, capsys.readouterr().err.splitlines()


def test_no_recovery_directory_or_no_snapshot_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = _run(capsys, str(tmp_path), "--recovery", str(tmp_path / "nope"))
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith("coldwake: error: nothing to restore to: no recovery directory")
    assert "run without -r" in lines[0]
    empty = tmp_path / "empty"
    empty.mkdir()
    init_db_dir(empty, 1)
    code, lines = _run(capsys, str(tmp_path), "--recovery", str(empty))
    assert code == 2 and len(lines) == 1 and "holds no snapshot yet" in lines[0]
    other = recovery(tmp_path / "other", [("coldwake-other.x", "k", 1, 1)])
    code, lines = _run(capsys, str(tmp_path), "--recovery", str(other))
    assert code == 2 and len(lines) == 1 and "nothing to restore to" in lines[0]


def test_an_existing_table_is_kept_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = recovery(tmp_path / "rec", [(TABLE_STEP, "container-state", 1, 5)])
    data = tmp_path / "data"
    with TableWriter(table_path(data)) as table:
        table.apply(9, [("MSKU1234565", b"{}")])
    code, lines = _run(capsys, str(data), "--recovery", str(rec), "--brokers", "127.0.0.1:1")
    assert code == 2 and len(lines) == 1
    assert "still exists" in lines[0] and "--force" in lines[0]
    # Forced, but the cluster is down: one line, and the old table is still there.
    code, lines = _run(
        capsys, str(data), "--recovery", str(rec), "--brokers", "127.0.0.1:1", "--timeout", "1",
        "--force",
    )  # fmt: skip
    assert code == 2 and len(lines) == 1 and "no Kafka broker answered" in lines[0]
    with TableWriter(table_path(data)) as table:
        assert table.position() == 9


def test_a_fleet_store_is_restored_from_the_snapshot_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = recovery(
        tmp_path / "rec",
        [
            *[(fleet.TABLES_STEP, name, 1, 3) for name in SHARD_NAMES],
            (fleet.ROWS_STEP, "vessels:IMO9778791", 1, _row(b'{"v":1}')),
        ],
    )
    code, lines = _run(capsys, str(tmp_path / "data"), "--recovery", str(rec))
    assert code == 0, lines
    assert lines[0].startswith("coldwake: restored 1 rows of the fleet tables into 8 shards")
    assert "not compared" in lines[1]
    with FleetReader(tmp_path / "data") as reader:
        assert dict(reader.rows("vessels")) == {"IMO9778791": b'{"v":1}'}
    code, lines = _run(capsys, str(tmp_path / "data"), "--recovery", str(rec))
    assert code == 2 and "still exists" in lines[0]
