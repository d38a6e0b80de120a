"""Bytewax recovery directories: made on first use of `-r DIR`, read to check a resume."""

from __future__ import annotations

import os
import pickle
import sqlite3
import sys
from collections.abc import Sequence
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
    """The epoch a resume of `path` starts from: up to which every partition has
    committed (Bytewax 0.21's recovery partitions are SQLite: table `commits`); None
    when nothing was committed yet (a resume is then a fresh start)."""
    commits: list[int] = []
    for part in sorted(path.glob("part-*.sqlite3")):
        with closing(sqlite3.connect(f"file:{part}?mode=ro", uri=True)) as db:
            commits += [epoch for (epoch,) in db.execute("SELECT commit_epoch FROM commits")]
    return min(commits) if commits else None


def saved_state(path: Path, step_id: str, key: str) -> bytes | None:
    """The snapshot a resume of `path` would hand to step `step_id` for `key`, if any.

    Read from Bytewax 0.21's recovery partitions (SQLite: `commits` says up to which
    epoch every partition is committed; `snaps` holds each step's pickled snapshots),
    so that `flows.vessel` can check a resume before Bytewax starts.
    """
    resume_epoch = committed_epoch(path)
    if resume_epoch is None:
        return None
    snaps: list[tuple[int, bytes | None]] = []
    for part in sorted(path.glob("part-*.sqlite3")):
        with closing(sqlite3.connect(f"file:{part}?mode=ro", uri=True)) as db:
            snaps += db.execute(
                "SELECT snap_epoch, ser_change FROM snaps WHERE step_id = ? AND state_key = ?",
                (step_id, key),
            ).fetchall()
    usable = [(epoch, blob) for epoch, blob in snaps if epoch <= resume_epoch]
    if not usable:
        return None
    found = max(usable, key=lambda snap: snap[0])
    if found[1] is None:  # the state was discarded
        return None
    state = pickle.loads(found[1])
    return state if isinstance(state, bytes) else None
