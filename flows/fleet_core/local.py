"""Both fleet stages in memory, split over any number of instances, as workers split them.

For tests, replays and benchmarks of the pure core. Entity keys go to stage-1
instances, and row keys to stage-2 instances, by a stable hash (`part_of`), as a
keyed step spreads its keys over workers; each instance sees only its keys. The
tables are the union of the stage-2 instances' rows; `compacted` reads a change
stream the way a compacted topic's consumer does, so the two can be compared.
Imports only `flows.fleet_core`.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from flows.fleet_core.deltas import Delta, by_row
from flows.fleet_core.entities import EntityStage, routes
from flows.fleet_core.inputs import Record, Undecodable, decode
from flows.fleet_core.tables import Change, TableStage

#: Table name -> row key -> encoded row.
Tables = dict[str, dict[str, bytes]]


def part_of(key: str, parts: int) -> int:
    """The instance (0 .. parts-1) a key goes to: CRC-32 of its UTF-8, modulo `parts`."""
    return zlib.crc32(key.encode()) % parts


@dataclass(slots=True)
class LocalFleet:
    """Stage-1 and stage-2 instances, and what came out of them.

    Attributes:
        stage1: The stage-1 instances (entity keys are split over them).
        stage2: The stage-2 instances (row keys are split over them).
        undecodable: The records that did not decode, in arrival order.
        changes: Every change the stage-2 instances emitted, in order.
    """

    stage1: list[EntityStage]
    stage2: list[TableStage]
    undecodable: list[Undecodable] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    @classmethod
    def of(cls, entity_parts: int = 1, row_parts: int = 1) -> LocalFleet:
        """A fleet with this many stage-1 and stage-2 instances."""
        return cls(
            [EntityStage() for _ in range(entity_parts)],
            [TableStage() for _ in range(row_parts)],
        )

    def entities(self, topic: str, raw: bytes) -> list[tuple[str, list[Delta]]]:
        """Stage 1 only: decode a record, route it; `(row id, deltas)` for stage 2."""
        record = decode(topic, raw)
        if isinstance(record, Undecodable):
            self.undecodable.append(record)
            return []
        out: list[tuple[str, list[Delta]]] = []
        for key in routes(record):
            stage = self.stage1[part_of(key, len(self.stage1))]
            out.extend(by_row(stage.apply(key, record)))
        return out

    def rows(self, rid: str, deltas: list[Delta]) -> None:
        """Stage 2 only: fold a row's deltas into it, keeping the change if any."""
        change = self.stage2[part_of(rid, len(self.stage2))].apply(rid, deltas)
        if change is not None:
            self.changes.append(change)

    def push(self, topic: str, raw: bytes) -> None:
        """One record through both stages."""
        for rid, deltas in self.entities(topic, raw):
            self.rows(rid, deltas)

    def push_batch(self, records: Iterable[tuple[str, bytes]]) -> None:
        """Records through both stages a batch at a time, as a worker's batch goes:
        each stage-1 instance nets its batch's deltas, each stage-2 instance encodes
        a touched row once."""
        batches: list[list[tuple[str, Record]]] = [[] for _ in self.stage1]
        for topic, raw in records:
            record = decode(topic, raw)
            if isinstance(record, Undecodable):
                self.undecodable.append(record)
                continue
            for key in routes(record):
                batches[part_of(key, len(self.stage1))].append((key, record))
        messages: list[list[tuple[str, list[Delta]]]] = [[] for _ in self.stage2]
        for stage1, batch in zip(self.stage1, batches, strict=True):
            for rid, deltas in by_row(stage1.apply_batch(batch)):
                messages[part_of(rid, len(self.stage2))].append((rid, deltas))
        for stage2, batch2 in zip(self.stage2, messages, strict=True):
            self.changes.extend(stage2.apply_batch(batch2))

    def resync(self, rids: Iterable[str]) -> None:
        """Re-emit these rows as they are now (see `TableStage.resync`)."""
        for rid in rids:
            self.changes.append(self.stage2[part_of(rid, len(self.stage2))].resync(rid))

    def resized(self, entity_parts: int, row_parts: int) -> LocalFleet:
        """The same keyed state split over other numbers of instances (a resume with
        another worker count); its record of changes and undecodable records is empty."""
        fleet = LocalFleet.of(entity_parts, row_parts)
        for stage1 in self.stage1:
            for key, entity in stage1.entities.items():
                fleet.stage1[part_of(key, entity_parts)].entities[key] = entity
        for stage2 in self.stage2:
            for rid, row in stage2.rows.items():
                fleet.stage2[part_of(rid, row_parts)].rows[rid] = row
        return fleet

    def tables(self) -> Tables:
        """Every row that exists now, all stage-2 instances merged."""
        out: Tables = {}
        for stage in self.stage2:
            for table, rows in stage.tables().items():
                out.setdefault(table, {}).update(rows)
        return out


def compacted(changes: Iterable[Change]) -> Tables:
    """What a compacted changelog holds after `changes`: each key's last value, no tombstones."""
    out: Tables = {}
    for table, key, value in changes:
        rows = out.setdefault(table, {})
        if value is None:
            rows.pop(key, None)
        else:
            rows[key] = value
    return {table: rows for table, rows in out.items() if rows}


def run(records: Iterable[tuple[str, bytes]], entity_parts: int = 1, row_parts: int = 1) -> Tables:
    """The tables of `(topic, bytes)` records, pushed in order."""
    fleet = LocalFleet.of(entity_parts, row_parts)
    for topic, raw in records:
        fleet.push(topic, raw)
    return fleet.tables()
