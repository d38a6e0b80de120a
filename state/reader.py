"""Read-only views of the container-state table, usable while the writer's process runs.

`Secondary` (one RocksDB secondary instance) is shared with `state.fleet_reader`.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, cast

import orjson
from rocksdict import AccessType, Options, Rdict, ReadOptions

from state.table import (
    DATA_CF,
    KEY_END,
    META_CF,
    META_POSITION,
    Closable,
    StoreError,
    column_families,
    db_options,
    decode_position,
    new_cache,
)

_CATCH_UP_ATTEMPTS: Final = 5


def database_identity(path: Path) -> bytes | None:
    """Return the RocksDB IDENTITY of the database at `path`, `None` if there is none yet."""
    # Check CURRENT too: rocksdict creates the directory (and a config file in it)
    # before RocksDB discovers there is no database there, and a writer that is
    # still creating one has IDENTITY before CURRENT.
    try:
        identity = (path / "IDENTITY").read_bytes()
    except OSError:
        return None
    return identity if (path / "CURRENT").is_file() else None


def lookup(cf: Rdict, key: bytes) -> bytes | None:
    """Return the value of `key` in a secondary's column family `cf`, `None` if absent.

    Through a bounded iterator, not `Rdict.get`: a secondary can keep a memtable whose
    rows its primary has since overwritten and flushed (seen after a kill -9 and a
    resume of the writer, and at its close), and a Get reads memtables before files,
    so it returns the older value; an iterator merges them by sequence number.
    """
    read_opt = ReadOptions()
    read_opt.set_iterate_upper_bound(key + b"\x00")
    for _, value in cf.items(from_key=key, read_opt=read_opt):
        return cast(bytes, value)
    return None


class Secondary:
    """One RocksDB database opened as a secondary instance of its writer's.

    Owns a private scratch directory, removed on close (or when garbage-collected).
    Messages name the database as `what` ("the container-state table").

    Args:
        path: The writer's database directory.
        identity: `database_identity(path)`, read by the caller before opening.
        options: `db_options(cache, writer=False)`.
        column_families: The ones to open; a subset of the writer's is fine.
        what: How messages name the database.
        hint: What to check when RocksDB refuses to open it.

    Raises:
        StoreError: RocksDB refuses to open it.
    """

    def __init__(
        self,
        path: Path,
        identity: bytes,
        options: Options,
        column_families: dict[str, Options],
        *,
        what: str,
        hint: str,
    ) -> None:
        self._path = path
        self._identity = identity
        self._what = what
        scratch = tempfile.mkdtemp(prefix="coldwake-table-reader-")
        try:
            db = Rdict(
                str(path),
                options,
                column_families=column_families,
                access_type=AccessType.secondary(scratch),
            )
        except Exception as exc:
            shutil.rmtree(scratch, ignore_errors=True)
            raise StoreError(f"cannot open {what} at {path}: {exc}; {hint}") from exc
        self._db: Rdict | None = db
        # Removes the scratch directory even if the caller forgets close().
        self._scratch = weakref.finalize(self, shutil.rmtree, scratch, True)

    def live(self) -> Rdict:
        """Return the open database (take column families from it).

        Raises:
            StoreError: It was closed.
        """
        if self._db is None:
            raise StoreError(f"the reader of {self._what} at {self._path} is closed")
        return self._db

    def catch_up(self) -> None:
        """Catch up with everything the writer has applied so far.

        Raises:
            StoreError: The database was deleted or replaced since it was opened,
                or the catch-up keeps failing.
        """
        db = self.live()
        # A secondary never notices that its directory was swapped for a new
        # database: it keeps serving the old files it holds open. RocksDB gives
        # every database a fresh IDENTITY, so compare that.
        if database_identity(self._path) != self._identity:
            raise StoreError(
                f"{self._what} at {self._path} was deleted or replaced since "
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
            f"cannot catch up with {self._what} at {self._path}: {error}; open a new reader"
        )

    def close(self) -> None:
        """Release the database and remove the scratch directory. Idempotent.

        Drop every column family handle taken from `db` first.
        """
        db = self._db
        if db is None:
            return
        self._db = None
        try:
            db.close()
        finally:
            self._scratch()


class TableReader(Closable):
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
        identity = database_identity(path)
        if identity is None:
            raise StoreError(f"no container-state table at {path}; run the flow first")
        cache = new_cache()
        self._secondary = Secondary(
            path,
            identity,
            db_options(cache, writer=False),
            column_families(cache),
            what="the container-state table",
            hint="check that the path is the flow's table (DATA_DIR/state/container-state)",
        )
        db = self._secondary.live()
        self._db: Rdict | None = db
        self._data: Rdict | None = db.get_column_family(DATA_CF)
        self._meta: Rdict | None = db.get_column_family(META_CF)

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
        self._live()
        self._secondary.catch_up()

    def get(self, key: str, *, refresh: bool = True) -> bytes | None:
        """Return the JSON bytes stored under `key`, or `None`."""
        if refresh:
            self.refresh()
        data = self._data
        if data is None:
            raise StoreError(f"the container-state table reader for {self._path} is closed")
        # Inlined rather than via _data_cf(): point gets are the hot path of a query API.
        return lookup(data, key.encode())

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
        self,
        prefix: str = "",
        limit: int | None = None,
        *,
        after: str | None = None,
        refresh: bool = True,
    ) -> Iterator[tuple[str, bytes]]:
        """Yield `(key, JSON bytes)` rows in key order (keys compare as UTF-8 bytes).

        Args:
            prefix: Only keys starting with this string.
            limit: At most this many rows (`None`: all).
            after: Only keys after this one (for paging: the last key seen).
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
        read_opt.set_iterate_upper_bound(start + KEY_END)
        if after is not None:
            # The least key above `after` is `after` + 0x00.
            start = max(start, after.encode() + b"\x00")
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
        return decode_position(lookup(meta, META_POSITION), self._path)

    def close(self) -> None:
        """Release the table and remove the scratch directory. Idempotent."""
        if self._db is None:
            return
        self._data = None
        self._meta = None
        self._db = None
        self._secondary.close()

    def _live(self) -> Rdict:
        if self._db is None:
            raise StoreError(f"the container-state table reader for {self._path} is closed")
        return self._db

    def _data_cf(self) -> Rdict:
        if self._data is None:
            raise StoreError(f"the container-state table reader for {self._path} is closed")
        return self._data
