"""Rebuild a lost table consistently with the recovery snapshot, so that `-r` resumes.

    python -m state.restore DATA_DIR --recovery DIR [--brokers B] [--timeout S] [--force]

Which store it rebuilds follows from the recovery directory:

* a vessel run's: the container-state table, from the compacted
  `reefer.container-state` topic (brokers: `--brokers`, else `COLDWAKE_BROKERS`).
  Every partition is read to its end, last value per key, and written in one batch
  at the input position the snapshot's table sink holds. The topic may be ahead of
  the snapshot: the resumed run replays everything after it and rewrites every row
  that changed since (deterministically, with the same content), and the table
  accepts those writes because their positions are above the snapshot's. Rows of
  containers the snapshot's detector never saw are left out: they were written
  after the snapshot (the replay writes them again) or by an earlier run.
* a fleet run's: every shard of `state/fleet`, from the snapshot itself, not from
  the `fleet.*` topics; see `state.restore_fleet` for why. With brokers (`--brokers`,
  else `COLDWAKE_FLEET_BROKERS`) the topics are compared and brought back to it.

One line on stderr says what was done; an error is one line and exit code 2.
"""

from __future__ import annotations

import argparse
import fcntl
import gc
import os
import pickle
import shutil
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final, NoReturn

from flows.config import ConfigError, value
from flows.contract import CONTAINER_STATE
from flows.detect_step import DetectState
from flows.edges.kafka.compacted import MissingTopicError, read_compacted
from flows.edges.kafka.errors import KafkaUnavailableError
from flows.recovery import resume_epoch, saved_snapshots, saved_state
from flows.startup import DETECT_KEY, DETECT_STEP
from state import restore_fleet as fleet
from state.fleet_layout import fleet_dir
from state.store import TableWriter
from state.table import TABLE_NAME, StoreError, table_path

__all__ = ["main"]

EXIT_OK: Final = 0
EXIT_ERROR: Final = 2

#: The vessel's table sink (`op.output("table", ...)`, one partition) and its Kafka output.
TABLE_STEP: Final = "coldwake-vessel.table"
KAFKA_OUT_STEP: Final = "coldwake-vessel.kafka-out"
LOCAL_OUT_STEP: Final = "coldwake-vessel.local-out"

_FRESH: Final = "run without -r (or with an empty recovery directory) to rebuild from the input"


class RestoreError(Exception):
    """Nothing was restored; the message says why and what to do."""


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m state.restore",
        description=(
            "Rebuild a lost or damaged table so that `python -m bytewax.run ... -r DIR` "
            "resumes as if nothing had been lost. A vessel data dir: the container-state "
            "table from the compacted reefer.container-state topic, at the position the "
            "recovery snapshot's table holds (the resumed run rewrites every row that "
            "changed after it). A fleet data dir: every shard from the recovery snapshot "
            "itself, because the fleet.* topics may hold rows written after the snapshot "
            "that only the lost undo log could take back; with brokers, the topics are "
            "then brought back to the snapshot too. Stop the flow first."
        ),
        epilog="Exit codes: 0 restored, 2 error (one line on stderr).",
    )
    parser.add_argument("data_dir", type=Path, metavar="DATA_DIR", help="the flow's data dir")
    parser.add_argument(
        "--recovery", type=Path, required=True, metavar="DIR", help="the run's -r directory"
    )
    parser.add_argument(
        "--brokers",
        metavar="B",
        help="bootstrap servers (default: COLDWAKE_BROKERS for a vessel, "
        "COLDWAKE_FLEET_BROKERS for the fleet)",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        metavar="S",
        help="how long Kafka may not answer (default: COLDWAKE_KAFKA_TIMEOUT_S, 30)",
    )
    parser.add_argument("--force", action="store_true", help="replace a table that still exists")
    return parser


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not 0 < seconds <= 3600:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 3600, got {text}")
    return seconds


def _say(message: str) -> None:
    print(f"coldwake: {message}", file=sys.stderr, flush=True)


def _restore(args: argparse.Namespace) -> None:
    started = time.monotonic()
    recovery: Path = args.recovery
    if not recovery.is_dir():
        raise RestoreError(f"nothing to restore to: no recovery directory {recovery}; {_FRESH}")
    if resume_epoch(recovery) is None:
        raise RestoreError(f"nothing to restore to: {recovery} holds no snapshot yet; {_FRESH}")
    timeout = args.timeout or value(os.environ, "COLDWAKE_KAFKA_TIMEOUT_S")
    table = saved_snapshots(recovery, TABLE_STEP, CONTAINER_STATE.name)
    if table:
        brokers = args.brokers or value(os.environ, "COLDWAKE_BROKERS")
        _restore_vessel(args.data_dir, recovery, table, brokers, timeout, args.force, started)
        return
    try:
        snap = fleet.fleet_snapshot(recovery)
    except fleet.SnapshotError as exc:
        raise RestoreError(f"{exc}; {_FRESH}") from None
    if snap is None:
        raise RestoreError(
            f"nothing to restore to: {recovery} holds no snapshot of a vessel's table or "
            f"the fleet's shards yet; {_FRESH}"
        )
    brokers = args.brokers or value(os.environ, "COLDWAKE_FLEET_BROKERS")
    _restore_fleet(args.data_dir, snap, brokers, timeout, args.force, started)


def _restore_vessel(
    data_dir: Path,
    recovery: Path,
    table: dict[str, bytes | None],
    brokers: str,
    timeout: float,
    force: bool,
    started: float,
) -> None:
    blob = table[CONTAINER_STATE.name]
    position = None if blob is None else pickle.loads(blob)
    if position is not None and not isinstance(position, int):
        raise RestoreError(f"step {TABLE_STEP!r} in {recovery} has no table position: {_FRESH}")
    if not saved_snapshots(recovery, KAFKA_OUT_STEP) and saved_snapshots(recovery, LOCAL_OUT_STEP):
        raise RestoreError(
            f"the run behind {recovery} wrote its outputs locally (COLDWAKE_OUTPUT=local), so "
            f"no topic holds its table; {_FRESH}"
        )
    path = table_path(data_dir)
    replace = _check_room(path, [path], force)
    if position is None:
        if replace:
            shutil.rmtree(path)
        _say(
            f"the snapshot in {recovery} holds no container-state row yet: nothing to "
            "restore (the resumed run writes the table from its start)"
        )
        return
    topic = CONTAINER_STATE.topic
    if not brokers:
        raise RestoreError(
            f"no brokers to read {topic} from: pass --brokers or set COLDWAKE_BROKERS"
        )
    where = f"{topic} on {brokers}"
    try:
        compacted = read_compacted(brokers, topic, timeout)
    except MissingTopicError:
        raise RestoreError(f"{where} is missing: no changelog to rebuild from; {_FRESH}") from None
    except KafkaUnavailableError as exc:
        raise RestoreError(f"{exc}; check --brokers and that the cluster is up") from None
    if not compacted.records:
        raise RestoreError(f"{where} is empty: no changelog to rebuild from; {_FRESH}")
    known = known_containers(recovery)
    decoded = ((key.decode(), row) for key, row in compacted.rows.items())
    rows = [(key, row) for key, row in decoded if known is None or key in known]
    if replace:  # only now: a failed read leaves the old table as it was
        shutil.rmtree(path)
    with TableWriter(path) as writer:
        writer.apply(position, rows)
    left_out = len(compacted.rows) - len(rows)
    note = (
        f"; left out {left_out:,} rows of containers the snapshot had not seen (written "
        "after it, or by an earlier run)"
        if left_out
        else ""
    )
    _say(
        f"restored {len(rows):,} rows of {TABLE_NAME} from {topic} (position {position:,}) "
        f"in {time.monotonic() - started:.1f} s{note}"
    )


def known_containers(recovery: Path) -> set[str] | None:
    """The containers the snapshot's detector knows (every one with a table row)."""
    blob = saved_state(recovery, DETECT_STEP, DETECT_KEY)
    if blob is None:
        return None
    # Millions of small objects: the collector would walk them over and over while
    # they are built (it doubles the time), and none of them is garbage.
    gc.disable()
    try:
        state = pickle.loads(blob)
    finally:
        gc.enable()
    return set(state.detector.containers) if isinstance(state, DetectState) else None


def _restore_fleet(
    data_dir: Path,
    snap: fleet.FleetSnapshot,
    brokers: str,
    timeout: float,
    force: bool,
    started: float,
) -> None:
    where = fleet_dir(data_dir)
    replace = _check_room(where, sorted(where.glob("shard-*")), force)
    topics = None
    if brokers:
        # Read before anything is written: a cluster that is down changes nothing.
        try:
            topics = fleet.read_topics(brokers, timeout)
        except KafkaUnavailableError as exc:
            raise RestoreError(f"{exc}; check --brokers and that the cluster is up") from None
    if replace:
        shutil.rmtree(where)
    fleet.write_shards(data_dir, snap)
    _say(
        f"restored {snap.count():,} rows of the fleet tables into {len(snap.generations)} "
        f"shards from the recovery snapshot in {time.monotonic() - started:.1f} s"
    )
    if not brokers:
        _say(
            "fleet.* topics not compared (no --brokers, COLDWAKE_FLEET_BROKERS unset); "
            "a fleet reading Kafka publishes them: rerun with --brokers and --force"
        )
        return
    diff = None if topics is None else fleet.diff_topics(snap, topics)
    if diff is not None:
        try:
            fleet.repair_topics(brokers, diff, timeout)
        except KafkaUnavailableError as exc:
            raise RestoreError(
                f"the shards are restored but the fleet.* topics are not: {exc}; "
                "rerun with --force once the cluster is up"
            ) from None
    fleet.describe_topics(brokers, diff, _say)


def _check_room(where: Path, databases: Sequence[Path], force: bool) -> bool:
    """Whether a store is in the way (it goes only with `force`, and only when unused)."""
    if not where.exists() or not any(where.iterdir()):
        return False
    if not force:
        raise RestoreError(
            f"{where} still exists: restore rebuilds a lost store; pass --force to replace it"
        )
    busy = [db for db in databases if _in_use(db)]
    if busy:
        raise RestoreError(f"{busy[0]} is open in another process: stop the flow first")
    return True


def _in_use(database: Path) -> bool:
    """Whether a process holds the RocksDB LOCK of `database` (a flow writes it)."""
    try:
        fd = os.open(database / "LOCK", os.O_RDWR)
    except OSError:
        return False
    try:
        # RocksDB takes a POSIX record lock (fcntl F_SETLK) on LOCK, as lockf does.
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # also releases the lock, if this process just took it
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    try:
        _restore(args)
    except (RestoreError, StoreError, ConfigError) as exc:
        _say(f"error: {exc}")
        return EXIT_ERROR
    except sqlite3.Error as exc:
        _say(f"error: cannot read the recovery directory {args.recovery}: {exc}")
        return EXIT_ERROR
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
