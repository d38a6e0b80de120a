"""Bytewax recovery directories: made on first use of `-r DIR`, read to check a resume."""

from __future__ import annotations

import os
import pickle
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from contextlib import closing
from pathlib import Path

from bytewax.recovery import init_db_dir


def recovery_dir(argv: Sequence[str]) -> Path | None:
    """The `-r/--recovery-directory` that `python -m bytewax.run` was given, if any."""
    for i, arg in enumerate(argv):
        if arg in ("-r", "--recovery-directory") and i + 1 < len(argv):
            return Path(argv[i + 1])
        if arg.startswith("--recovery-directory="):
            return Path(arg.split("=", 1)[1])
    from_env = os.environ.get("BYTEWAX_RECOVERY_DIRECTORY")  # Bytewax's own fallback
    return Path(from_env) if from_env else None


def prepare_recovery_dir(argv: Sequence[str]) -> None:
    """Create one recovery partition in an empty or missing recovery directory.

    An existing directory with partitions is left alone: that is how a run resumes.
    """
    path = recovery_dir(argv)
    # Several processes (-i/-a) would race to create it: they need it made beforehand.
    multi_process = any(a in ("-i", "--process-id") for a in argv)
    if not argv or not argv[0].endswith("run.py"):
        return  # only when started by `python -m bytewax.run`
    if path is None or multi_process or any(path.glob("part-*.sqlite3")):
        return
    path.mkdir(parents=True, exist_ok=True)
    init_db_dir(path, 1)
    print(f"coldwake: initialised recovery directory {path}", file=sys.stderr)


def committed_epoch(path: Path) -> int | None:
    """The epoch up to which every partition of `path` has committed (Bytewax 0.21's
    recovery partitions are SQLite: table `commits`); None when nothing was committed
    yet (a resume is then a fresh start)."""
    commits: list[int] = []
    for part in _partitions(path):
        with part as db:
            commits += [epoch for (epoch,) in db.execute("SELECT commit_epoch FROM commits")]
    return min(commits) if commits else None


def resume_epoch(path: Path) -> int | None:
    """The epoch a resume of `path` starts at, worked out as Bytewax 0.21 does; None
    before any execution.

    Each worker of the latest execution is at the greater of its recorded frontier and
    that execution's own resume epoch; the run resumes at the least of them and hands
    every step the latest snapshot from *before* that epoch (which may be newer than
    `committed_epoch`: Bytewax garbage-collects, but does not resume from, commits).
    """
    executions: list[tuple[int, int, int]] = []
    fronts: list[tuple[int, int, int]] = []
    for part in _partitions(path):
        with part as db:
            executions += db.execute("SELECT ex_num, worker_count, resume_epoch FROM exs")
            fronts += db.execute("SELECT ex_num, worker_index, worker_frontier FROM fronts")
    if not executions:
        return None
    last = max(ex for ex, _, _ in executions)
    frontier: dict[int, int] = {}
    for ex, count, epoch in executions:
        if ex == last:
            for worker in range(count):
                frontier[worker] = max(frontier.get(worker, epoch), epoch)
    for ex, worker, epoch in fronts:
        if ex == last:
            frontier[worker] = max(frontier.get(worker, epoch), epoch)
    return min(frontier.values())


def saved_snapshots(path: Path, step_id: str, key: str | None = None) -> dict[str, bytes | None]:
    """The snapshots a resume of `path` would hand to step `step_id`: state key -> pickle.

    Read from Bytewax 0.21's recovery partitions (SQLite table `snaps`, spread over
    every partition): each key's latest snapshot before `resume_epoch`. A `None` value
    is a discarded state (the key holds nothing); only `key` when it is given. Empty
    before any execution.
    """
    epoch = resume_epoch(path)
    if epoch is None:
        return {}
    query = (
        "SELECT state_key, snap_epoch, ser_change FROM snaps WHERE step_id = ? AND snap_epoch < ?"
    )
    args: tuple[str | int, ...] = (step_id, epoch)
    if key is not None:
        query += " AND state_key = ?"
        args += (key,)
    latest: dict[str, tuple[int, bytes | None]] = {}
    for part in _partitions(path):
        with part as db:
            for state_key, snap_epoch, blob in db.execute(query, args):
                if state_key not in latest or snap_epoch > latest[state_key][0]:
                    latest[state_key] = (snap_epoch, blob)
    return {state_key: blob for state_key, (_, blob) in latest.items()}


def saved_state(path: Path, step_id: str, key: str) -> bytes | None:
    """The snapshot a resume of `path` would hand to step `step_id` for `key`, if it is
    bytes (the detect step pickles its own state), so that `flows.vessel` can check a
    resume before Bytewax starts."""
    blob = saved_snapshots(path, step_id, key).get(key)
    if blob is None:  # never snapshotted, or discarded
        return None
    state = pickle.loads(blob)
    return state if isinstance(state, bytes) else None


def _partitions(path: Path) -> Iterator[closing[sqlite3.Connection]]:
    """Each recovery partition of `path`, opened read-only (the flow may be writing it)."""
    for part in sorted(path.glob("part-*.sqlite3")):
        yield closing(sqlite3.connect(f"file:{part}?mode=ro", uri=True))
