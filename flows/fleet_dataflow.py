"""The fleet dataflow's wiring, edges passed in: read -> decode -> entities -> rows -> sinks.

    read (`FleetBatch`) -> decode (each record to the entities it is a version of;
    records that do not decode to the dead letters) -> entities (stage 1, keyed by
    entity: its latest version, as deltas) -> rows (stage 2, keyed by row: the sum of
    its deltas, as changes) -> tables (the sharded store and its changelog topics)

The pure logic is `flows.fleet_core`; this module only puts it into Bytewax steps.
Step ids are public: renaming a stateful step orphans its recovery state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import chain
from typing import Any, Final, cast

import bytewax.operators as op
import orjson
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from bytewax.operators import KeyedStream, StatefulBatchLogic
from bytewax.outputs import Sink

from flows import metrics
from flows.contract import Keyed
from flows.events import DeadLetter
from flows.fleet_core.deltas import Delta, by_row, net, split_row_id
from flows.fleet_core.entities import Entity, routes, step
from flows.fleet_core.inputs import Record, Undecodable, decode
from flows.fleet_core.names import DEAD_LETTERS_OUT, FleetBatch
from flows.fleet_core.tables import Change, Row, fold

FLOW_ID: Final = "coldwake-fleet"
Routed = tuple[str, Record]  # (entity key, record)
RowDeltas = tuple[str, list[Delta]]  # (stage-2 key, deltas)


@dataclass(frozen=True, slots=True)
class FleetSinks:
    """Where the fleet's results go.

    Attributes:
        tables: Takes `(row key, change)` items: the sharded store (and changelog).
        dead_letters: Takes `(output name, [(key, dead letter JSON)])` items.
    """

    tables: Sink[tuple[str, Change]]
    dead_letters: Sink[tuple[str, list[Keyed]]]


class Counter:
    """Records read and undecodable, per process, for progress lines on stderr."""

    def __init__(self, every_s: float, log: Callable[[str], None]) -> None:
        self.read = self.undecodable = 0
        self._every, self._log = every_s, log
        self._last = self._started = time.monotonic()
        self._last_read = 0
        self._lock = threading.Lock()

    def count(self, read: int, undecodable: int) -> None:
        """Add a batch's counts; say how far the run is, at most every `every_s` seconds."""
        with self._lock:  # the workers of a process are threads sharing this counter
            self._count(read, undecodable)

    def _count(self, read: int, undecodable: int) -> None:
        self.read += read
        self.undecodable += undecodable
        now = time.monotonic()
        if self._every and now - self._last >= self._every:
            rate = (self.read - self._last_read) / (now - self._last)
            self._log(
                f"progress: {self.read:,} vessel records ({rate:,.0f}/s), "
                f"{self.undecodable:,} dead letters"
            )
            self._last, self._last_read = now, self.read


def _decoder(counter: Counter | None) -> Callable[[FleetBatch], list[tuple[str, Any]]]:
    def decode_batch(batch: FleetBatch) -> list[tuple[str, Any]]:
        """`(entity key, Record)` per entity a record is a version of; an undecodable
        record as `("", dead letter JSON)`."""
        out: list[tuple[str, Any]] = []
        bad = 0
        for topic, raw in batch:
            record = decode(topic, raw)
            if isinstance(record, Undecodable):
                bad += 1
                letter = DeadLetter(record.error, record.topic, record.raw)
                out.append(("", orjson.dumps(letter.to_json())))
                continue
            out.extend((key, (key, record)) for key in routes(record))
        metrics.fleet_decoded(len(batch), bad)
        if counter is not None:
            counter.count(len(batch), bad)
        return out

    return decode_batch


class EntityLogic(StatefulBatchLogic[Routed, list[Delta], Entity]):
    """Stage 1 for one entity: its latest version; emits the deltas of a change (the
    combiner that follows groups them by row)."""

    def __init__(self, resume: Entity | None) -> None:
        self._entity = resume

    def on_batch(self, values: list[Routed]) -> tuple[Iterable[list[Delta]], bool]:
        out: list[Delta] = []
        entity = self._entity
        for key, record in values:
            entity, deltas = step(key, entity, record)
            out.extend(deltas)
        self._entity = entity
        return ([out] if out else []), False

    def snapshot(self) -> Entity:
        assert self._entity is not None  # a logic exists once it was offered a record
        return self._entity


class RowLogic(StatefulBatchLogic[RowDeltas, tuple[str, Change], Row]):
    """Stage 2 for one row: the sum of its deltas; emits the row when its JSON changes."""

    def __init__(self, resume: Row | None) -> None:
        self._row = resume

    def on_batch(self, values: list[RowDeltas]) -> tuple[Iterable[tuple[str, Change]], bool]:
        table, key = split_row_id(values[0][0])
        self._row, change = fold(table, key, self._row, chain.from_iterable(d for _, d in values))
        return ([(key, change)] if change is not None else []), self._row is None

    def snapshot(self) -> Row:
        assert self._row is not None  # discarded once it holds nothing
        return self._row


def _combine(items: list[tuple[str, list[Delta]]]) -> list[RowDeltas]:
    """A worker's batch of stage-1 output, netted and grouped per row (a combiner): a
    vessel's row touched by a thousand containers in one batch gets one message, not a
    thousand, and never half of one change (`deltas.by_row`)."""
    if len(items) == 1:
        return by_row(items[0][1])
    return by_row(net(d for _, deltas in items for d in deltas))


def _value(kv: tuple[str, tuple[str, Change]]) -> tuple[str, Change]:
    return kv[1]


def build(source: Source[FleetBatch], sinks: FleetSinks, progress: Counter | None) -> Dataflow:
    """Wire the fleet dataflow between these edges."""
    flow = Dataflow(FLOW_ID)
    batches = op.input("read", flow, source)
    decoded = op.flat_map("decode", batches, _decoder(progress))
    split = op.branch("undecodable", decoded, lambda kv: kv[0] == "")
    letters = op.map("dead-letters", split.trues, lambda kv: (DEAD_LETTERS_OUT, [("", kv[1])]))
    op.output("dead-letters-out", letters, sinks.dead_letters)
    entities = cast(KeyedStream[Routed], split.falses)
    changed = op.stateful_batch("entities", entities, EntityLogic)
    # One message per row per batch, whatever the number of entities that touched it.
    row_deltas = cast(KeyedStream[list[Delta]], op.flat_map_batch("deltas", changed, _combine))
    # Each item is already `(stage-2 key, deltas)`; the logic reads the key back.
    rows_in = cast(KeyedStream[RowDeltas], op.map("with-key", row_deltas, lambda kv: (kv[0], kv)))
    changes = op.stateful_batch("rows", rows_in, RowLogic)
    keyed_changes: Stream[tuple[str, Change]] = op.map("change", changes, _value)
    op.output("tables", keyed_changes, sinks.tables)
    return flow
