"""The vessel dataflow's wiring, edges passed in: source -> parse -> merge and rules -> sinks.

    read (Lines) -> parse (Batch, per partition) -> detect (watermark merge + rules, one
    stateful step) -> outputs (records to `sinks.records`, rows to `sinks.table`)

Step ids are public: renaming a stateful step orphans its recovery state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from flows.config import Settings
from flows.contract import CONTAINER_STATE, Output, OutputBatch
from flows.detect_step import DetectLogic
from flows.lines import Lines, parse_lines
from flows.rules.records import Outputs
from state.table import TableUpdate

#: Every record goes to one key: the rules need one canonical order per input.
ROUTE_KEY: Final = "vessel"


@dataclass(frozen=True, slots=True)
class Sinks:
    """Where the flow's outputs go.

    Attributes:
        name: Names the output steps (`<name>-records`, `<name>-out`): `local`, `kafka`.
        records: Takes `(output name, [(key, JSON value), ...])` items.
        outputs: Which outputs `records` takes.
        table: Takes the container-state table's updates.
    """

    name: str
    records: Sink[OutputBatch]
    outputs: tuple[Output, ...]
    table: Sink[tuple[str, TableUpdate]]


def _table_items(out: Outputs) -> list[tuple[str, TableUpdate]]:
    rows = out.of(CONTAINER_STATE)
    if not rows:
        return []
    return [(CONTAINER_STATE.name, TableUpdate(out.processed, tuple(rows)))]


def build(source: Source[Lines], sinks: Sinks, settings: Settings) -> Dataflow:
    """Wire the vessel dataflow between these edges."""
    flow = Dataflow("coldwake-vessel")
    lines = op.input("read", flow, source)
    batches = op.map("parse", lines, parse_lines)
    keyed = op.key_on("route", batches, lambda _: ROUTE_KEY)
    results = op.stateful("detect", keyed, lambda resume: DetectLogic(settings, resume))
    outputs = op.map("outputs", results, lambda kv: kv[1])
    op.output("table", op.flat_map("table-rows", outputs, _table_items), sinks.table)
    records = op.flat_map(f"{sinks.name}-records", outputs, lambda o: o.items(sinks.outputs))
    op.output(f"{sinks.name}-out", records, sinks.records)
    return flow
