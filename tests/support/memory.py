"""Run the real vessel dataflow on in-memory inputs and collect its outputs in memory.

Each input partition is a list of raw lines; it is cut into reads (`Lines`) that a
single `TestingSource` delivers interleaved, the way several Bytewax partitions
would, and every output lands in a `TestingSink`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import orjson
from bytewax.testing import TestingSink, TestingSource, cluster_main, run_main

from flows.config import Settings, load
from flows.contract import OUTPUTS, OutputBatch
from flows.dataflow import Sinks, build
from flows.lines import Lines
from flows.watermark import PartState
from state.table import TableUpdate


@dataclass(frozen=True, slots=True)
class MemoryRun:
    """What one in-memory run wrote: records by output name, and table updates."""

    records: dict[str, list[bytes]]
    table: list[TableUpdate]

    def json(self, output: str) -> list[dict[str, Any]]:
        """One output's records, decoded."""
        return [orjson.loads(v) for v in self.records[output]]

    def rows(self) -> dict[str, dict[str, Any]]:
        """The table's final rows, by key."""
        rows: dict[str, dict[str, Any]] = {}
        for update in self.table:
            for key, value in update.rows:
                assert value is not None
                rows[key] = orjson.loads(value)
        return rows


def reads(partitions: dict[str, list[bytes]], seed: int | None = None) -> list[Lines]:
    """Cut each partition into reads; with a seed, cut and interleave them at random."""
    names = tuple(partitions)
    rng = random.Random(seed)
    queues: list[list[Lines]] = []
    for index, lines in enumerate(partitions.values()):
        cuts = sorted(rng.sample(range(1, len(lines)), k=min(3, len(lines) - 1))) if seed else []
        queue = []
        for a, b in zip([0, *cuts], [*cuts, len(lines)], strict=True):
            queue.append(Lines(index, names, f"{names[index]}:", range(a + 1, b + 1), lines[a:b]))
        queue[-1].state = PartState.ENDED
        queues.append(queue)
    out: list[Lines] = []
    while any(queues):
        queue = rng.choice([q for q in queues if q]) if seed else next(q for q in queues if q)
        out.append(queue.pop(0))
    return out


def run_in_memory(
    partitions: dict[str, list[bytes]],
    settings: Settings | None = None,
    *,
    seed: int | None = None,
    workers: int = 1,
) -> MemoryRun:
    """Run the vessel dataflow on these partitions; return everything it output."""
    settings = settings or load({"COLDWAKE_PROGRESS_S": "0"})
    batches: list[OutputBatch] = []
    table: list[tuple[str, TableUpdate]] = []
    sinks = Sinks("memory", TestingSink(batches), OUTPUTS, TestingSink(table))
    flow = build(TestingSource(reads(partitions, seed)), sinks, settings)
    if workers == 1:
        run_main(flow)
    else:
        cluster_main(flow, [], 0, worker_count_per_proc=workers)
    records: dict[str, list[bytes]] = {o.name: [] for o in OUTPUTS}
    for name, keyed in batches:
        records[name] += [value for _, value in keyed]
    return MemoryRun(records, [update for _, update in table])
