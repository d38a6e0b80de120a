"""Wiring of the vessel dataflow (run as `python -m bytewax.run flows.vessel`).

read (sim | files | kafka, parsed per partition) -> detect (watermark merge + rules,
one stateful step) -> outputs (JSONL files or Kafka topics, and the container-state
table). Step ids are public: renaming a stateful step orphans its recovery state.
"""

from __future__ import annotations

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source

from flows.config import Settings
from flows.detect import Outputs
from flows.kafka import KafkaInput, KafkaOutput, kafka_items
from flows.logic import VesselLogic
from flows.sinks import JsonlSink
from flows.sources import FileSource, SimSource
from flows.watermark import Batch
from state.sink import TableSink
from state.store import TableUpdate

ROUTE_KEY = "vessel"


def _source(settings: Settings) -> Source[Batch]:
    if settings.input.kind == "file":
        return FileSource(settings.input.paths)
    if settings.input.kind == "kafka":
        return KafkaInput(settings.kafka)
    return SimSource(settings.sim, settings.batch_size)


def _local_items(out: Outputs) -> list[tuple[str, list[bytes]]]:
    items = []
    for name, records in (
        ("alerts", out.alerts),
        ("windows", out.windows),
        ("late", out.late),
        ("dlq", out.dlq),
    ):
        if records:
            items.append((name, [value for _, value in records]))
    return items


def _table_items(out: Outputs) -> list[tuple[str, TableUpdate]]:
    if not out.rows:
        return []
    return [("container-state", TableUpdate(out.position, tuple(out.rows)))]


def build(settings: Settings) -> Dataflow:
    """Wire the vessel dataflow for these settings."""
    flow = Dataflow("coldwake-vessel")
    batches = op.input("read", flow, _source(settings))
    keyed = op.key_on("route", batches, lambda _: ROUTE_KEY)
    results = op.stateful("detect", keyed, lambda resume: VesselLogic(settings, resume))
    outputs = op.map("outputs", results, lambda kv: kv[1])
    table = op.flat_map("table-rows", outputs, _table_items)
    op.output("table", table, TableSink(settings.data_dir))
    if settings.output == "kafka":
        op.output(
            "kafka-out",
            op.flat_map("kafka-records", outputs, kafka_items),
            KafkaOutput(settings.kafka),
        )
    else:
        local = op.flat_map("local-records", outputs, _local_items)
        op.output("local-out", local, JsonlSink(settings.out_dir))
    return flow
