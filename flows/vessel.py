"""The vessel job: `python -m bytewax.run flows.vessel`.

Importing this module does nothing: Bytewax asks for `flow`, and only then are the
`COLDWAKE_*` settings read, Kafka checked and the edges chosen. A bad setting stops
the program there with one line naming it, before Bytewax starts.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

from bytewax.dataflow import Dataflow
from bytewax.inputs import Source

from flows.config import ConfigError, Settings, load
from flows.contract import FILE_OUTPUTS, OUTPUTS
from flows.dataflow import Sinks, build
from flows.edges.files import FileSource, JsonlSink
from flows.edges.kafka.admin import preflight
from flows.edges.kafka.errors import KafkaUnavailableError
from flows.edges.kafka.sink import KafkaSink
from flows.edges.kafka.source import KafkaSource
from flows.edges.sim import SimSource
from flows.lines import Lines
from flows.metrics import start as start_metrics
from flows.progress import describe_start, log
from flows.recovery import prepare_recovery_dir
from flows.startup import (
    check_data_dir,
    check_resume,
    first_process,
    process_id,
    resumed_state,
    start_fresh,
)
from state.sink import TableSink


def edges(settings: Settings) -> tuple[Source[Lines], Sinks]:
    """The source and sinks these settings ask for."""
    source: Source[Lines]
    if settings.input.kind == "file":
        source = FileSource(settings.input.paths)
    elif settings.input.kind == "kafka":
        source = KafkaSource(settings.kafka)
    else:
        source = SimSource(settings.sim, settings.batch_size)
    table = TableSink(settings.data_dir)
    if settings.output == "kafka":
        return source, Sinks("kafka", KafkaSink(settings.kafka), OUTPUTS, table)
    return source, Sinks("local", JsonlSink(settings.out_dir), FILE_OUTPUTS, table)


def _fail(message: str) -> NoReturn:
    print(f"coldwake: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def main_flow() -> Dataflow:
    """Check settings, data dir, recovery state and Kafka; prepare; build the flow."""
    argv = sys.argv
    try:
        settings = load()
        check_data_dir(settings.data_dir)
        resuming = resumed_state(argv)
        if resuming is not None:
            check_resume(settings, resuming)
        elif first_process(argv):
            start_fresh(settings)
        preflight(settings)
        start_metrics("vessel", process_id(argv))
    except ConfigError as exc:
        _fail(f"configuration error: {exc}")
    except KafkaUnavailableError as exc:
        _fail(str(exc))
    prepare_recovery_dir(argv)
    log(describe_start(settings, resuming is not None))
    return build(*edges(settings), settings)


def __getattr__(name: str) -> Any:
    # `python -m bytewax.run flows.vessel` looks up `flow`: build it only then.
    if name == "flow":
        return main_flow()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
