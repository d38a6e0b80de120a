"""The stores of one data dir as the query API reads them: readers behind one lock.

A vessel data dir holds the container-state table, a fleet data dir the sharded
fleet tables; a dir may hold both (`state.api.sources`, one `Source` each). Every
read goes through `Stores.read`, which holds the lock (the readers are not
thread-safe and FastAPI calls from a thread pool), catches the readers up when
they last did longer ago than `REFRESH_S` (at once when a request asks for a
position they have not reached), and hands the callback a `View` of that instant.
A store that cannot be read answers 503; the other keeps answering.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from flows.contract import CONTAINER_STATE
from state.api.names import REFRESH_S, RETRY_AFTER_S
from state.api.pages import ApiError, Row, echo
from state.api.sources import FleetSource, Source, StoreKind, TableRef, VesselSource
from state.fleet_layout import fleet_dir
from state.reader import database_identity
from state.table import StoreError, table_path

__all__ = ["Stores", "View"]

T = TypeVar("T")


class View:
    """The stores at one instant, valid only inside the `Stores.read` callback."""

    def __init__(self, sources: dict[StoreKind, Source], position: int) -> None:
        self._sources = sources
        #: The position this view reflects (the sum over its stores).
        self.position = position

    def has(self, store: StoreKind) -> bool:
        """Whether the data dir has this store."""
        return store in self._sources

    def get(self, table: TableRef, key: str) -> bytes | None:
        """The JSON bytes of one row, None when absent."""
        return self._source(table).get(table.name, key)

    def rows(self, table: TableRef, prefix: str = "", after: str | None = None) -> Iterator[Row]:
        """Rows in key order; consume them inside the callback."""
        return self._source(table).rows(table.name, prefix, after)

    def describe(self, table: TableRef) -> dict[str, Any]:
        """`{"name", "topic", "store", "key", "rows", "position"}` of one table."""
        source = self._source(table)
        return {
            "name": table.name,
            "topic": table.topic,
            "store": table.store,
            "key": table.key,
            "rows": source.counts()[table.name],
            "position": source.position,
        }

    def _source(self, table: TableRef) -> Source:
        source = self._sources[table.store]
        source.check()
        return source


class Stores:
    """The stores found in a data dir, opened at start.

    Raises:
        StoreError: The dir holds no store, or one cannot be opened.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        found: list[Source] = []
        if database_identity(table_path(data_dir)) is not None:
            found.append(VesselSource(data_dir))
        if fleet_dir(data_dir).is_dir():
            found.append(FleetSource(data_dir))
        if not found:
            raise StoreError(
                f"no tables in {data_dir}: neither a {CONTAINER_STATE.name} table "
                f"({table_path(data_dir)}) nor fleet tables ({fleet_dir(data_dir)}); "
                "run a flow first or give the flow's data dir"
            )
        self._lock = threading.Lock()
        self._sources: dict[StoreKind, Source] = {s.kind: s for s in found}
        try:
            for source in found:
                source.start()
        except BaseException:
            self.close()
            raise
        #: Every table served, vessel first.
        self.tables: tuple[TableRef, ...] = tuple(t for s in found for t in s.tables)

    @property
    def kinds(self) -> tuple[StoreKind, ...]:
        """The stores found: `vessel`, `fleet` or both."""
        return tuple(self._sources)

    def resolve(self, name: str) -> TableRef:
        """The table a request names, by short name or topic; ApiError 404 or 400 if none."""
        found = [t for t in self.tables if name in (t.name, t.topic)]
        if len(found) == 1:
            return found[0]
        if found:
            raise ApiError(
                400,
                f"table {echo(name)} is in both the vessel and the fleet store here; name it "
                f"by its topic: {' or '.join(t.topic for t in found)}",
            )
        names = ", ".join(dict.fromkeys(t.name for t in self.tables))
        raise ApiError(404, f"no table {echo(name)} here; the tables are {names}")

    def position(self) -> int:
        """The position of the last catch-up (no lock: it only reads ints)."""
        return sum(source.position for source in self._sources.values())

    def read(
        self, fn: Callable[[View], T], need: int | None = None, max_age: float = 0.0
    ) -> tuple[int, T | None, bool]:
        """Call `fn` on a view of the stores, caught up as said above.

        A view below `need` catches up if its last catch-up is older than `max_age`:
        0 on a request's first try, POLL_S on its later ones (one catch-up then
        serves every waiting request).

        Returns:
            `(position, fn's result, True)`, or `(position, None, False)` without
            calling `fn` when the position is below `need`.

        Raises:
            ApiError: From `fn`, or 503 when a store it reads cannot be read; with
                the view's position.
        """
        with self._lock:
            below = need is not None and self.position() < need
            self._refresh(max_age if below else REFRESH_S)
            position = self.position()
            if need is not None and position < need:
                return position, None, False
            try:
                return position, fn(View(self._sources, position)), True
            except ApiError as exc:
                exc.position = position
                raise
            except StoreError as exc:
                raise ApiError(
                    503, str(exc), {"Retry-After": str(RETRY_AFTER_S)}, position
                ) from exc

    def status(self) -> tuple[bool, list[dict[str, Any]]]:
        """Catch every store up now; `(all readable, a line per table)` for `/readyz`."""
        with self._lock:
            self._refresh(0.0)
            now = time.monotonic()
            lines: list[dict[str, Any]] = []
            for table in self.tables:
                source = self._sources[table.store]
                ago = None if source.caught_up is None else round(now - source.caught_up, 3)
                line: dict[str, Any] = {"name": table.name, "topic": table.topic}
                line |= {"store": table.store, "position": source.position}
                lines.append(line | {"caught_up_s_ago": ago, "error": source.error})
            return all(s.error is None for s in self._sources.values()), lines

    def close(self) -> None:
        """Close every reader (and remove their scratch directories)."""
        # Under the lock: closing RocksDB under a thread still iterating it would
        # crash the process (a shutdown does not wait for the thread pool).
        with self._lock:
            for source in self._sources.values():
                source.close()

    def _refresh(self, max_age: float) -> None:
        now = time.monotonic()
        for source in self._sources.values():
            if now - source.tried >= max_age:
                source.refresh(now)
