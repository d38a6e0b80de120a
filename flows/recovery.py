"""Make `-r DIR` work on first use: initialise an empty Bytewax recovery directory."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from bytewax.recovery import init_db_dir


def recovery_dir(argv: Sequence[str]) -> Path | None:
    """The `-r/--recovery-directory` that `python -m bytewax.run` was given, if any."""
    for i, arg in enumerate(argv):
        if arg in ("-r", "--recovery-directory") and i + 1 < len(argv):
            return Path(argv[i + 1])
        if arg.startswith("--recovery-directory="):
            return Path(arg.split("=", 1)[1])
    return None


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
