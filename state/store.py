"""The container-state KTable: a RocksDB table of JSON rows on rocksdict.

One process writes (`TableWriter`, the flow's sink); any number of processes read
while it runs (`TableReader`, a RocksDB secondary instance). Keys are strings,
values are JSON documents that arrive already encoded: the store moves bytes and
never re-encodes them. Rows live in the `data` column family; the input position
they reflect lives in `meta`, and both change in one WriteBatch, so a reader or
a restarted writer always sees rows and position that belong together.

No Bytewax import here (the sink is `state.sink`).
"""

from __future__ import annotations

import shutil
import tempfile
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self, cast

import orjson
from rocksdict import (
    AccessType,
    BlockBasedOptions,
    Cache,
    ColumnFamily,
    DBCompressionType,
    Options,
    Rdict,
    ReadOptions,
    WriteBatch,
)

__all__ = [
    "DATA_CF",
    "META_CF",
    "META_POSITION",
    "TABLE_DIR",
    "TABLE_NAME",
    "StoreError",
    "TableReader",
    "TableUpdate",
    "TableWriter",
    "table_path",
]

TABLE_DIR: Final = "state"
TABLE_NAME: Final = "container-state"

DATA_CF: Final = "data"
META_CF: Final = "meta"
META_POSITION: Final = b"position"

# UTF-8 never produces the byte 0xFF, so PREFIX + 0xFF is above every key that
# starts with PREFIX and below every other key that sorts after them.
_KEY_END: Final = b"\xff"

_MIB: Final = 1024 * 1024
_CATCH_UP_ATTEMPTS: Final = 5


def table_path(data_dir: Path) -> Path:
    """Return where the container-state table lives inside a data dir."""
    return data_dir / TABLE_DIR / TABLE_NAME


@dataclass(frozen=True, slots=True)
class TableUpdate:
    """Rows to write to the table and the input position they reflect.

    Attributes:
        position: Monotone input position (count of input records processed).
        rows: `(key, JSON bytes)` pairs; a `None` value deletes the key.
    """

    position: int
    rows: tuple[tuple[str, bytes | None], ...]


class StoreError(Exception):
    """The table cannot be opened, read or written; the message says what to do."""


def _encode_position(position: int) -> bytes:
    return position.to_bytes(8, "big", signed=False)


def _decode_position(raw: object, path: Path) -> int | None:
    if raw is None:
        return None
    if not isinstance(raw, bytes) or len(raw) != 8:
        raise StoreError(
            f"the container-state table at {path} has a malformed position {raw!r}; "
            "delete the table and run the flow without recovery to rebuild it"
        )
    return int.from_bytes(raw, "big", signed=False)


def _cf_options(cache: Cache) -> Options:
    # A vessel's table holds one row per container (thousands, not millions) on
    # a 2-core box: small memtables, lz4 (cheap on CPU) and a bloom filter for
    # the point lookups the crew's queries make.
    opts = Options(raw_mode=True)
    opts.set_write_buffer_size(8 * _MIB)
    opts.set_max_write_buffer_number(2)
    opts.set_target_file_size_base(16 * _MIB)
    opts.set_compression_type(DBCompressionType.lz4())
    table = BlockBasedOptions()
    table.set_block_cache(cache)
    table.set_bloom_filter(10, False)
    opts.set_block_based_table_factory(table)
    return opts


def _db_options(cache: Cache, *, writer: bool) -> Options:
    opts = _cf_options(cache)
    opts.set_max_background_jobs(2)
    # RocksDB's info LOG otherwise grows without bound on a box nobody logs into.
    opts.set_keep_log_file_num(2)
    opts.set_max_log_file_size(_MIB)
    if writer:
        opts.create_if_missing(True)
        opts.create_missing_column_families(True)
        # `meta` gets one tiny write per batch and would never fill a memtable:
        # flushing it with `data` keeps it from pinning old WAL files forever.
        opts.set_atomic_flush(True)
        opts.set_max_total_wal_size(32 * _MIB)
        opts.set_bytes_per_sync(_MIB)
    else:
        # A secondary must keep every SST it has seen open: the primary deletes
        # files after compactions and the secondary only learns at catch-up.
        opts.set_max_open_files(-1)
        # Each catch-up reloads table handlers with this many fresh threads per
        # column family: the default 16 costs ~2 ms per refresh, 1 costs ~25 µs.
        opts.set_max_file_opening_threads(1)
    return opts


def _column_families(cache: Cache) -> dict[str, Options]:
    # Named explicitly: without this rocksdict opens a new path with the default
    # column family only, and a secondary could not address `data`/`meta`.
    return {DATA_CF: _cf_options(cache), META_CF: _cf_options(cache)}


def _new_cache() -> Cache:
    return Cache(16 * _MIB)


class _Closable:
    """`with` support for the table's handles: leaving the block closes them."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class TableWriter(_Closable):
    """The single writer of the table (the flow's sink).

    Opens the table at `path`, creating it and its parent directories if needed.
    Not thread-safe; RocksDB's lock keeps a second writer process out.

    Args:
        path: The table directory, normally `table_path(data_dir)`.

    Raises:
        StoreError: The directory cannot be created, the table is open in
            another process, or RocksDB refuses to open it.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the container-state table directory {path}: {exc}; "
                "check that the data dir is writable"
            ) from exc
        cache = _new_cache()
        try:
            db = Rdict(
                str(path),
                _db_options(cache, writer=True),
                column_families=_column_families(cache),
                access_type=AccessType.read_write(),
            )
        except Exception as exc:
            raise _open_error(path, exc) from exc
        self._db: Rdict | None = db
        self._data: ColumnFamily | None = db.get_column_family_handle(DATA_CF)
        self._meta: ColumnFamily | None = db.get_column_family_handle(META_CF)
        self._position = _decode_position(db.get_column_family(META_CF).get(META_POSITION), path)

    @property
    def path(self) -> Path:
        """The table directory."""
        return self._path

    def position(self) -> int | None:
        """Return the input position of the last applied batch, `None` if never written."""
        self._live()
        return self._position

    def apply(self, position: int, rows: Sequence[tuple[str, bytes | None]]) -> bool:
        """Apply rows and record `position`, atomically.

        Args:
            position: The input position the rows reflect; must grow with every call.
            rows: `(key, JSON bytes)` pairs in order; a `None` value deletes the key.

        Returns:
            False, writing nothing, if `position` is not beyond the stored position:
            a replay after a crash must never move the table back in time.

        Raises:
            ValueError: `position` is negative.
            StoreError: The writer is closed or RocksDB refused the write.
        """
        db = self._live()
        if position < 0:
            raise ValueError(f"table position must be >= 0, got {position}")
        if self._position is not None and position <= self._position:
            return False
        batch = WriteBatch(raw_mode=True)
        data = self._data
        for key, value in rows:
            if value is None:
                batch.delete(key.encode(), data)
            else:
                batch.put(key.encode(), value, data)
        batch.put(META_POSITION, _encode_position(position), self._meta)
        try:
            db.write(batch)
        except Exception as exc:
            raise StoreError(
                f"cannot write to the container-state table at {self._path}: {exc}; "
                "check free disk space, then restart the flow (it resumes from its last snapshot)"
            ) from exc
        self._position = position
        return True

    def reset(self) -> None:
        """Delete every row and the position, atomically (a fresh run starts empty)."""
        db = self._live()
        batch = WriteBatch(raw_mode=True)
        # One range tombstone instead of a delete per key: readers see the old
        # table or the empty one, never a half-cleared table.
        batch.delete_range(b"", _KEY_END, self._data)
        batch.delete(META_POSITION, self._meta)
        try:
            db.write(batch)
            # Give the disk back now rather than at some later compaction.
            db.get_column_family(DATA_CF).compact_range(None, None)
        except Exception as exc:
            raise StoreError(
                f"cannot reset the container-state table at {self._path}: {exc}; "
                "stop the flow and delete that directory by hand"
            ) from exc
        self._position = None

    def flush(self) -> None:
        """Make everything applied so far durable, even across a power cut.

        Syncs the write-ahead log. Memtables stay in memory: the WAL already
        holds their contents and RocksDB flushes them to SST files by size.
        """
        db = self._live()
        try:
            db.flush_wal(True)
        except Exception as exc:
            raise StoreError(
                f"cannot sync the container-state table at {self._path}: {exc}; "
                "check the disk, then restart the flow"
            ) from exc

    def close(self) -> None:
        """Flush memtables and the WAL and release the table. Idempotent."""
        db = self._db
        if db is None:
            return
        try:
            db.flush_wal(True)
            # Rdict.flush()/close() flush the default column family only.
            for name in (DATA_CF, META_CF):
                db.get_column_family(name).flush()
        finally:
            # A live ColumnFamily handle keeps RocksDB (and its LOCK) open after
            # close(), so a reopen in this process would fail: drop them first.
            self._data = None
            self._meta = None
            self._db = None
            db.close()

    def _live(self) -> Rdict:
        if self._db is None:
            raise StoreError(f"the container-state table writer for {self._path} is closed")
        return self._db


def _open_error(path: Path, exc: Exception) -> StoreError:
    message = str(exc)
    # RocksDB names its LOCK file when another instance holds it ("While lock
    # file: .../LOCK: Resource temporarily unavailable"); a bare "lock" would
    # also match "block checksum mismatch".
    if "/LOCK:" in message:
        return StoreError(
            f"the container-state table at {path} is open in another process "
            "(is the flow already running?); stop it or use another data dir"
        )
    return StoreError(
        f"cannot open the container-state table at {path}: {message}; "
        "if it is damaged, move it away and rerun the flow without recovery to rebuild it"
    )


def _identity(path: Path) -> bytes | None:
    try:
        return (path / "IDENTITY").read_bytes()
    except OSError:
        return None


class TableReader(_Closable):
    """A read-only view of the table, usable while the writer's process runs.

    Opens the table as a RocksDB secondary instance (with a private scratch
    directory, removed on close) and catches up with the writer before each read
    unless told not to. Between two catch-ups the view does not move, so reads
    made with `refresh=False` after one `refresh()` are mutually consistent:
    rows and position always come from whole batches.

    Not thread-safe: give each thread its own reader, or serialise calls.

    Args:
        path: The table directory, normally `table_path(data_dir)`.

    Raises:
        StoreError: There is no table at `path`, or it cannot be opened.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        # Check first: rocksdict creates the directory (and a config file in it)
        # before RocksDB discovers there is no database there.
        identity = _identity(path)
        if identity is None or not (path / "CURRENT").is_file():
            raise StoreError(f"no container-state table at {path}; run the flow first")
        self._identity = identity
        scratch = tempfile.mkdtemp(prefix="coldwake-table-reader-")
        cache = _new_cache()
        try:
            db = Rdict(
                str(path),
                _db_options(cache, writer=False),
                column_families=_column_families(cache),
                access_type=AccessType.secondary(scratch),
            )
        except Exception as exc:
            shutil.rmtree(scratch, ignore_errors=True)
            raise StoreError(
                f"cannot open the container-state table at {path}: {exc}; "
                "check that the path is the flow's table (DATA_DIR/state/container-state)"
            ) from exc
        self._db: Rdict | None = db
        self._data: Rdict | None = db.get_column_family(DATA_CF)
        self._meta: Rdict | None = db.get_column_family(META_CF)
        # Removes the scratch directory even if the caller forgets close().
        self._scratch = weakref.finalize(self, shutil.rmtree, scratch, True)

    @property
    def path(self) -> Path:
        """The table directory."""
        return self._path

    def refresh(self) -> None:
        """Catch up with everything the writer has applied so far.

        Raises:
            StoreError: The table was deleted or replaced since this reader opened
                it, or the catch-up keeps failing.
        """
        db = self._live()
        # A secondary never notices that its directory was swapped for a new
        # database: it keeps serving the old files it holds open. RocksDB gives
        # every database a fresh IDENTITY, so compare that.
        if _identity(self._path) != self._identity:
            raise StoreError(
                f"the container-state table at {self._path} was deleted or replaced since "
                "this reader opened it; open a new reader"
            )
        error: Exception | None = None
        for attempt in range(_CATCH_UP_ATTEMPTS):
            try:
                db.try_catch_up_with_primary()
                return
            except Exception as exc:
                # RocksDB documents that a catch-up racing the primary's writes
                # may fail; the next attempt picks up from where this one stopped.
                error = exc
                time.sleep(0.005 * (attempt + 1))
        raise StoreError(
            f"cannot catch up with the container-state table at {self._path}: {error}; "
            "open a new reader"
        )

    def get(self, key: str, *, refresh: bool = True) -> bytes | None:
        """Return the JSON bytes stored under `key`, or `None`."""
        if refresh:
            self.refresh()
        data = self._data
        if data is None:
            raise StoreError(f"the container-state table reader for {self._path} is closed")
        # Inlined rather than via _data_cf(): point gets are the hot path of a query API.
        value: bytes | None = data.get(key.encode())
        return value

    def get_json(self, key: str, *, refresh: bool = True) -> Any:
        """Return the decoded JSON value stored under `key`, or `None`.

        Raises:
            StoreError: The stored bytes are not JSON.
        """
        raw = self.get(key, refresh=refresh)
        if raw is None:
            return None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise StoreError(
                f"the value of {key!r} in the container-state table at {self._path} "
                f"is not JSON ({exc}); the writer stored something outside the contract"
            ) from exc

    def items(
        self, prefix: str = "", limit: int | None = None, *, refresh: bool = True
    ) -> Iterator[tuple[str, bytes]]:
        """Yield `(key, JSON bytes)` rows in key order.

        Args:
            prefix: Only keys starting with this string.
            limit: At most this many rows (`None`: all).
            refresh: Catch up with the writer first.

        Raises:
            ValueError: `limit` is negative.
        """
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        if refresh:
            self.refresh()
        start = prefix.encode()
        read_opt = ReadOptions()
        read_opt.set_iterate_upper_bound(start + _KEY_END)
        # The lower bound comes from `from_key`: rocksdict's items() seeks to the
        # first key and does not honour iterate_lower_bound on its own.
        rows = self._data_cf().items(from_key=start, read_opt=read_opt)
        return self._rows(rows, read_opt, limit)

    def _rows(
        self, rows: Iterator[Any], read_opt: ReadOptions, limit: int | None
    ) -> Iterator[tuple[str, bytes]]:
        # `read_opt` is passed in only so that it lives as long as the iterator
        # that uses its upper bound.
        if limit == 0:
            return
        for count, (key, value) in enumerate(rows, start=1):
            if self._db is None:
                raise StoreError(f"the container-state table reader for {self._path} is closed")
            yield cast(bytes, key).decode(), cast(bytes, value)
            if limit is not None and count >= limit:
                return

    def count(self, *, refresh: bool = True) -> int:
        """Return the number of rows."""
        if refresh:
            self.refresh()
        # Rdict is not iterable itself; keys() skips decoding values.
        return sum(1 for _ in self._data_cf().keys())  # noqa: SIM118

    def position(self, *, refresh: bool = True) -> int | None:
        """Return the input position the rows reflect, `None` if never written."""
        if refresh:
            self.refresh()
        meta = self._meta
        if meta is None:
            raise StoreError(f"the container-state table reader for {self._path} is closed")
        return _decode_position(meta.get(META_POSITION), self._path)

    def close(self) -> None:
        """Release the table and remove the scratch directory. Idempotent."""
        db = self._db
        if db is None:
            return
        self._data = None
        self._meta = None
        self._db = None
        try:
            db.close()
        finally:
            self._scratch()

    def _live(self) -> Rdict:
        if self._db is None:
            raise StoreError(f"the container-state table reader for {self._path} is closed")
        return self._db

    def _data_cf(self) -> Rdict:
        if self._data is None:
            raise StoreError(f"the container-state table reader for {self._path} is closed")
        return self._data
