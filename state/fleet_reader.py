"""Read-only view of the fleet tables over all shards, usable while the fleet flow runs."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from operator import itemgetter
from pathlib import Path
from typing import Final, cast

from rocksdict import Rdict, ReadOptions

from flows.fleet_core.names import SHARDS, TABLE_NAMES, shard_of
from state.fleet_layout import SHARD_NAMES, data_key, decode_shard_position, fleet_dir, table_prefix
from state.reader import Secondary, database_identity, lookup
from state.table import (
    DATA_CF,
    KEY_END,
    META_CF,
    META_POSITION,
    Closable,
    StoreError,
    cf_options,
    db_options,
    new_cache,
)

__all__ = ["FleetReader"]

_WHAT: Final = "the fleet store shard"
#: RocksDB's word for a column family the writer has not created yet.
_CREATING: Final = "Column family not found"


class FleetReader(Closable):
    """A read-only view of the fleet tables in every shard under `data_dir`.

    Opens each shard that exists as a RocksDB secondary instance; a shard the
    flow has not created yet reads as empty until a `refresh()` finds it. Reads
    see the shards as of the last `refresh()` (or the opening): call it to see
    newer writes. Each shard moves by whole batches, but shards catch up one
    after the other, so a view may mix epochs across shards.

    Not thread-safe: give each thread its own reader, or serialise calls.

    Args:
        data_dir: The fleet flow's data dir; shards live under `fleet_dir(data_dir)`.

    Raises:
        StoreError: There is no fleet store in `data_dir`, or a shard cannot be opened.
    """

    def __init__(self, data_dir: Path) -> None:
        self._dir = fleet_dir(data_dir)
        if not self._dir.is_dir():
            raise StoreError(f"no fleet tables at {self._dir}; run the fleet flow first")
        # One block cache for all shards: a shard's share of the rows is small.
        self._cache = new_cache()
        self._shards: list[Secondary | None] = [None] * SHARDS
        self._data: list[Rdict | None] = [None] * SHARDS
        self._meta: list[Rdict | None] = [None] * SHARDS
        self._closed = False
        try:
            self._open_new()
        except BaseException:
            self.close()
            raise

    @property
    def path(self) -> Path:
        """The directory holding the shards."""
        return self._dir

    def refresh(self) -> None:
        """Catch up with everything the flow has written so far, in every shard.

        Raises:
            StoreError: A shard was deleted or replaced since this reader opened
                it, or its catch-up keeps failing.
        """
        self._live()
        for shard in self._shards:
            if shard is not None:
                shard.catch_up()
        # A freshly opened secondary is already caught up.
        self._open_new()

    def tables(self) -> dict[str, int]:
        """Return table name -> row count over all shards, every table, in `TABLE_NAMES` order."""
        self._live()
        counts: dict[str, int] = {}
        for table in TABLE_NAMES:
            start = table_prefix(table)
            counts[table] = sum(
                _count(data, start, start + KEY_END) for data in self._data if data is not None
            )
        return counts

    def position(self) -> int:
        """Return the sum of every shard's change counter (0 for a shard not there yet).

        Each shard's counter moves with its rows, in one batch, and never goes back,
        so the sum only grows from one `refresh()` to the next.
        """
        self._live()
        return sum(
            decode_shard_position(lookup(meta, META_POSITION), self._dir / SHARD_NAMES[index])
            for index, meta in enumerate(self._meta)
            if meta is not None
        )

    def get(self, table: str, key: str) -> bytes | None:
        """Return the JSON bytes of one row of `table`, or `None`.

        Raises:
            StoreError: `table` is not a fleet table, or the reader is closed.
        """
        self._live()
        _check_table(table)
        data = self._data[shard_of(key)]
        if data is None:
            return None
        return lookup(data, data_key(table, key))

    def rows(
        self, table: str, prefix: str = "", after: str | None = None, limit: int | None = None
    ) -> Iterator[tuple[str, bytes]]:
        """Yield `(key, JSON bytes)` rows of `table` over all shards, in key order.

        Keys compare as UTF-8 bytes.

        Args:
            table: A name of `TABLE_NAMES`.
            prefix: Only keys starting with this string.
            after: Only keys after this one (for paging: the last key seen).
            limit: At most this many rows (`None`: all).

        Raises:
            StoreError: `table` is not a fleet table, or the reader is closed.
            ValueError: `limit` is negative.
        """
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        self._live()
        _check_table(table)
        base = table_prefix(table)
        start = base + prefix.encode()
        end = start + KEY_END
        if after is not None:
            # The least key above `after` is `after` + 0x00.
            start = max(start, base + after.encode() + b"\x00")
        cut = len(base)
        shards = [
            self._shard_rows(data, start, end, cut) for data in self._data if data is not None
        ]
        # Each key lives in exactly one shard, so the merge has no duplicates.
        merged = heapq.merge(*shards, key=itemgetter(0))
        rows = ((key.decode(), value) for key, value in merged)
        return rows if limit is None else itertools.islice(rows, limit)

    def close(self) -> None:
        """Release every shard and remove their scratch directories. Idempotent."""
        self._closed = True
        # Column family handles keep RocksDB open: drop them before closing.
        self._data = [None] * SHARDS
        self._meta = [None] * SHARDS
        shards, self._shards = self._shards, [None] * SHARDS
        for shard in shards:
            if shard is not None:
                shard.close()

    def _shard_rows(
        self, data: Rdict, start: bytes, end: bytes, cut: int
    ) -> Iterator[tuple[bytes, bytes]]:
        for key, value in _scan(data, start, end):
            # Iterating a closed RocksDB would crash the process, not raise.
            if self._closed:
                raise StoreError(f"the fleet table reader for {self._dir} is closed")
            yield key[cut:], value

    def _open_new(self) -> None:
        for index, name in enumerate(SHARD_NAMES):
            if self._shards[index] is not None:
                continue
            path = self._dir / name
            identity = database_identity(path)
            if identity is None:
                continue
            try:
                shard = Secondary(
                    path,
                    identity,
                    db_options(self._cache, writer=False),
                    # Not `undo`: readers need no undo log, and a secondary replays
                    # the WAL of every family it opens (`meta`'s is a few bytes a batch).
                    {DATA_CF: cf_options(self._cache), META_CF: cf_options(self._cache)},
                    what=_WHAT,
                    hint="check that the path is the fleet flow's store (DATA_DIR/state/fleet)",
                )
            except StoreError as exc:
                # A writer creating the shard writes CURRENT before its column
                # families: not there yet, like a shard without CURRENT.
                if _CREATING in str(exc.__cause__):
                    continue
                raise
            self._shards[index] = shard
            self._data[index] = shard.live().get_column_family(DATA_CF)
            self._meta[index] = shard.live().get_column_family(META_CF)

    def _live(self) -> None:
        if self._closed:
            raise StoreError(f"the fleet table reader for {self._dir} is closed")


def _check_table(table: str) -> None:
    if table not in TABLE_NAMES:
        raise StoreError(f"no fleet table {table!r}; the fleet tables are {', '.join(TABLE_NAMES)}")


def _bounded(end: bytes) -> ReadOptions:
    # The lower bound comes from `from_key`: rocksdict's items() seeks to the
    # first key and does not honour iterate_lower_bound on its own.
    read_opt = ReadOptions()
    read_opt.set_iterate_upper_bound(end)
    return read_opt


def _scan(data: Rdict, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
    # A generator, so that `read_opt` lives as long as the iterator using its bound.
    read_opt = _bounded(end)
    for key, value in data.items(from_key=start, read_opt=read_opt):
        yield cast(bytes, key), cast(bytes, value)


def _count(data: Rdict, start: bytes, end: bytes) -> int:
    read_opt = _bounded(end)
    # keys() skips reading values.
    return sum(1 for _ in data.keys(from_key=start, read_opt=read_opt))
