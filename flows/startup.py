"""What the job checks and prepares before Bytewax starts, each failure one clear line.

The data dir must be a writable directory; a resume must use the analytic settings
its recovery state was made with (results would silently change otherwise); a fresh
run starts every local output and the table empty.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Final

from flows.config import ConfigError, Settings, threshold_var
from flows.contract import FILE_OUTPUTS, OUT_DIR, STATE_DIR
from flows.detect_step import DetectState
from flows.edges.sim import PART as SIM_PART
from flows.recovery import recovery_dir, saved_state
from state.store import TableWriter
from state.table import StoreError, table_path

#: Where Bytewax keeps the detect step's state (`op.stateful` names its inner step).
DETECT_STEP: Final = "coldwake-vessel.detect.stateful_batch"
DETECT_KEY: Final = "vessel"


def check_data_dir(data_dir: Path) -> None:
    """Make sure the data dir, its `out/` and `state/` are directories this run can write."""
    for path in (data_dir, data_dir / OUT_DIR, data_dir / STATE_DIR):
        try:
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=path):
                pass
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ConfigError(
                f"COLDWAKE_DATA_DIR={str(data_dir)!r} is not usable: {path} cannot be written "
                f"({reason}); point COLDWAKE_DATA_DIR at a writable directory"
            ) from None


def resumed_state(argv: Sequence[str]) -> DetectState | None:
    """The detect step's state a `-r DIR` resume would start from, if there is one."""
    path = recovery_dir(argv)
    if path is None or not path.is_dir():
        return None
    blob = saved_state(path, DETECT_STEP, DETECT_KEY)
    if blob is None:
        return None
    state = pickle.loads(blob)
    return state if isinstance(state, DetectState) else None


def check_resume(settings: Settings, state: DetectState) -> None:
    """Refuse a resume whose inputs or analytic settings differ from its recovery state's."""
    parts = _input_parts(settings)
    if parts is not None and state.merge.parts and state.merge.parts != parts:
        raise ConfigError(
            f"COLDWAKE_INPUT reads {', '.join(parts)} but the recovery state was made reading "
            f"{', '.join(state.merge.parts)}; resume with the same inputs, or start afresh "
            "without -r (or with an empty recovery directory)"
        )
    saved = state.detector.th
    for f in fields(saved):
        before, now = getattr(saved, f.name), getattr(settings.thresholds, f.name)
        if before != now:
            name = threshold_var(f.name)
            raise ConfigError(
                f"{name}={now:g} differs from {before:g}, the value the recovery state was made "
                f"with; set {name}={before:g} to resume, or start afresh without -r "
                "(or with an empty recovery directory) to use the new value"
            )


def _input_parts(settings: Settings) -> tuple[str, ...] | None:
    """The input partitions a file or simulator run reads (Kafka's are found at start)."""
    if settings.input.kind == "file":
        return tuple(str(p) for p in settings.input.paths)
    if settings.input.kind == "sim":
        return (SIM_PART,)
    return None


def start_fresh(settings: Settings) -> None:
    """A run without recovery state: every local output file empty, the table empty."""
    out = settings.data_dir / OUT_DIR
    for o in FILE_OUTPUTS:
        (out / str(o.file)).write_bytes(b"")
    try:
        with TableWriter(table_path(settings.data_dir)) as table:
            table.reset()
    except StoreError as exc:
        raise ConfigError(f"COLDWAKE_DATA_DIR: {exc}") from None


def process_id(argv: Sequence[str]) -> int:
    """This process's `-i/--process-id` (or Bytewax's `BYTEWAX_PROCESS_ID`); 0 if alone."""
    given = os.environ.get("BYTEWAX_PROCESS_ID", "0")
    for i, arg in enumerate(argv):
        if arg in ("-i", "--process-id") and i + 1 < len(argv):
            given = argv[i + 1]
            break
    try:
        return int(given)
    except ValueError:
        return 0  # Bytewax refuses it at its own start, with its own message


def first_process(argv: Sequence[str]) -> bool:
    """Whether this is process 0 of a (possibly multi-process) run: it prepares the data dir."""
    return process_id(argv) == 0
