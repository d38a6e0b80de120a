"""One store of a data dir as the query API reads it: its reader, kept caught up.

`VesselSource` wraps the container-state table's `TableReader`, `FleetSource` the
fleet shards' `FleetReader`. A reader that cannot catch up (its writer's database
was deleted or replaced, or RocksDB refuses) is closed and opened again; while that
fails the store records why, keeps its last position, and answers 503. A writer
killed and restarted needs nothing (the readers' lookups see through what a
secondary keeps of it: `state.reader.lookup`); a shard the fleet flow creates later
is found by the next catch-up. Not thread-safe: `Stores` locks.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from flows.contract import CONTAINER_STATE
from flows.fleet_core.names import TABLES, FleetTable
from state.api.names import RETRY_AFTER_S
from state.api.pages import ApiError, Row
from state.fleet_reader import FleetReader
from state.reader import TableReader
from state.table import StoreError, table_path

__all__ = [
    "FLEET_TABLES",
    "VESSEL_TABLES",
    "FleetSource",
    "Source",
    "StoreKind",
    "TableRef",
    "VesselSource",
    "fleet_table",
]

StoreKind = Literal["vessel", "fleet"]


@dataclass(frozen=True, slots=True)
class TableRef:
    """One table the API serves.

    Attributes:
        name: Its short name (`container-state`, `vessels`, ...).
        topic: Its Kafka topic: unique even where both stores hold a `container-state`.
        store: Which store holds it.
        key: What its row key is.
    """

    name: str
    topic: str
    store: StoreKind
    key: str


VESSEL_TABLES: Final = (
    TableRef(CONTAINER_STATE.name, CONTAINER_STATE.topic, "vessel", "container_id"),
)
FLEET_TABLES: Final = tuple(TableRef(t.name, t.topic, "fleet", t.key) for t in TABLES)


def fleet_table(table: FleetTable) -> TableRef:
    """The API's reference to one fleet table."""
    return next(t for t in FLEET_TABLES if t.name == table.name)


class Source:
    """One store: its reader, when it last caught up, what went wrong last."""

    kind: StoreKind
    tables: tuple[TableRef, ...]

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        #: Last known position; kept while the store cannot be read (it never lied).
        self.position = 0
        #: `time.monotonic()` of the last catch-up (None: never), and of the last try.
        self.caught_up: float | None = None
        self.tried = 0.0
        #: Why the store cannot be read now (None: it can).
        self.error: str | None = None
        self._counts: tuple[int, dict[str, int]] | None = None

    def start(self) -> None:
        """Open the reader at start: StoreError says why it cannot be."""
        self._open()
        self._caught_up(self._read_position())

    def refresh(self, now: float) -> None:
        """Catch up, or reopen the reader if that fails; record an error if both fail."""
        self.tried = now
        try:
            if self._is_open():
                self._catch_up()
            else:
                self._open()  # a fresh secondary starts caught up
            self._caught_up(self._read_position())
            return
        except Exception:  # StoreError, or RocksDB's own: try a new reader once
            self._close()
        try:
            self._open()
            self._caught_up(self._read_position())
        except Exception as exc:
            self._close()
            self.error = str(exc)

    def counts(self) -> dict[str, int]:
        """Row count of each table, counted again only when the position moved."""
        if self._counts is None or self._counts[0] != self.position:
            self._counts = (self.position, self._count())
        return self._counts[1]

    def check(self) -> None:
        """ApiError 503 unless the reader is open."""
        if not self._is_open():
            raise ApiError(
                503,
                f"the {self.kind} store cannot be read now: {self.error}",
                {"Retry-After": str(RETRY_AFTER_S)},
            )

    def close(self) -> None:
        """Close the reader (idempotent)."""
        self._close()

    def _caught_up(self, position: int) -> None:
        if position < self.position:  # a fresh run or a restore: counts of the past
            self._counts = None
        self.position = position
        self.caught_up = time.monotonic()
        self.error = None

    # -- one per kind of store ----------------------------------------------------

    def _is_open(self) -> bool:
        raise NotImplementedError

    def _open(self) -> None:
        raise NotImplementedError

    def _catch_up(self) -> None:
        raise NotImplementedError

    def _read_position(self) -> int:
        raise NotImplementedError

    def _count(self) -> dict[str, int]:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def get(self, table: str, key: str) -> bytes | None:
        raise NotImplementedError

    def rows(self, table: str, prefix: str, after: str | None) -> Iterator[Row]:
        raise NotImplementedError


class VesselSource(Source):
    kind: StoreKind = "vessel"
    tables = VESSEL_TABLES

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self._reader: TableReader | None = None

    def _is_open(self) -> bool:
        return self._reader is not None

    def _open(self) -> None:
        self._reader = TableReader(table_path(self.data_dir))

    def _live(self) -> TableReader:
        if self._reader is None:
            raise StoreError(f"the {self.kind} store is not open")
        return self._reader

    def _catch_up(self) -> None:
        self._live().refresh()

    def _read_position(self) -> int:
        return self._live().position(refresh=False) or 0

    def _count(self) -> dict[str, int]:
        return {CONTAINER_STATE.name: self._live().count(refresh=False)}

    def _close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()

    def get(self, table: str, key: str) -> bytes | None:
        return self._live().get(key, refresh=False)

    def rows(self, table: str, prefix: str, after: str | None) -> Iterator[Row]:
        return self._live().items(prefix, after=after, refresh=False)


class FleetSource(Source):
    kind: StoreKind = "fleet"
    tables = FLEET_TABLES

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self._reader: FleetReader | None = None

    def _is_open(self) -> bool:
        return self._reader is not None

    def _open(self) -> None:
        self._reader = FleetReader(self.data_dir)

    def _live(self) -> FleetReader:
        if self._reader is None:
            raise StoreError(f"the {self.kind} store is not open")
        return self._reader

    def _catch_up(self) -> None:
        self._live().refresh()  # also opens shards created since

    def _read_position(self) -> int:
        return self._live().position()

    def _count(self) -> dict[str, int]:
        return self._live().tables()

    def _close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()

    def get(self, table: str, key: str) -> bytes | None:
        return self._live().get(table, key)

    def rows(self, table: str, prefix: str, after: str | None) -> Iterator[Row]:
        return self._live().rows(table, prefix, after)
