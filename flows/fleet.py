"""The fleet job ashore: `python -m bytewax.run flows.fleet`.

Reads every vessel's mirrored topics on the shore cluster (`COLDWAKE_FLEET_BROKERS`),
or `<topic>.jsonl` files (`COLDWAKE_INPUT=file:`), and keeps the fleet tables
(`flows.fleet_core.names.TABLES`) in `DATA_DIR/state/fleet/` and, from Kafka, in
their compacted `fleet.*` topics. Importing this module does nothing: Bytewax asks
for `flow`, and only then are the settings read and Kafka checked; a bad setting
stops the program with one line naming it, before Bytewax starts.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

from bytewax.dataflow import Dataflow
from bytewax.inputs import Source

from flows.config import ConfigError
from flows.contract import OUT_DIR
from flows.edges.files import JsonlSink
from flows.edges.fleet_files import FleetFileSource
from flows.edges.kafka.changelog import KafkaChangelog, ensure_fleet_topics
from flows.edges.kafka.errors import KafkaUnavailableError
from flows.edges.kafka.fleet_source import FleetKafkaSource
from flows.fleet_config import FleetSettings, load_fleet
from flows.fleet_core.names import DEAD_LETTERS_FILE, DEAD_LETTERS_OUT, TABLES, FleetBatch
from flows.fleet_dataflow import Counter, FleetSinks, build
from flows.metrics import start as start_metrics
from flows.progress import log
from flows.recovery import committed_epoch, prepare_recovery_dir, recovery_dir
from flows.startup import check_data_dir, first_process, process_id
from state.fleet_layout import fleet_dir
from state.fleet_sink import Changelog, FleetTableSink


def edges(settings: FleetSettings) -> tuple[Source[FleetBatch], FleetSinks]:
    """The source and sinks these settings ask for."""
    source: Source[FleetBatch]
    changelog = None
    if settings.input.kind == "file":
        source = FleetFileSource(settings.input.paths)
    else:
        source = FleetKafkaSource(settings.kafka, rescan_s=settings.rescan_s)
        cfg = settings.kafka

        def changelog() -> Changelog:
            return KafkaChangelog(cfg)

    letters = JsonlSink(settings.data_dir / OUT_DIR, {DEAD_LETTERS_OUT: DEAD_LETTERS_FILE})
    return source, FleetSinks(FleetTableSink(settings.data_dir, changelog), letters)


def describe_start(settings: FleetSettings, resuming: bool) -> str:
    """The first line of a run: what it reads, where it writes."""
    if settings.input.kind == "file":
        source = f"{len(settings.input.paths)} file(s)"
        topics = ""
    else:
        source = f"every vessel's topics on {settings.kafka.brokers}"
        topics = f" and the topics {', '.join(t.topic for t in TABLES)}"
    how = "resuming from the recovery state" if resuming else "starting afresh"
    where = fleet_dir(settings.data_dir)
    return f"fleet {how}: reading {source}; writing the fleet tables in {where}{topics}"


def _fail(message: str) -> NoReturn:
    print(f"coldwake: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def main_flow() -> Dataflow:
    """Check settings, data dir and Kafka; build the flow."""
    argv = sys.argv
    recovery = recovery_dir(argv)
    resuming = recovery is not None and recovery.is_dir() and committed_epoch(recovery) is not None
    try:
        settings = load_fleet()
        check_data_dir(settings.data_dir)
        if settings.input.kind == "kafka":
            # A fresh run's tables start empty, and so do their topics (process 0 only).
            fresh = not resuming and first_process(argv)
            ensure_fleet_topics(settings.kafka.brokers, settings.kafka.timeout_s, fresh=fresh)
        start_metrics("fleet", process_id(argv))
    except ConfigError as exc:
        _fail(f"configuration error: {exc}")
    except KafkaUnavailableError as exc:
        _fail(str(exc))
    prepare_recovery_dir(argv)
    log(describe_start(settings, resuming))
    return build(*edges(settings), Counter(settings.progress_s, log))


def __getattr__(name: str) -> Any:
    # `python -m bytewax.run flows.fleet` looks up `flow`: build it only then.
    if name == "flow":
        return main_flow()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
