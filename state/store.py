"""The container-state table's single writer (the flow's sink uses it; no Bytewax here)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rocksdict import ColumnFamily, Rdict, WriteBatch

from state.table import (
    DATA_CF,
    KEY_END,
    META_CF,
    META_POSITION,
    Closable,
    StoreError,
    column_families,
    decode_position,
    encode_position,
    open_writer,
)


class TableWriter(Closable):
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
        db = open_writer(
            path,
            column_families,
            what="the container-state table",
            directory="container-state table",
            flow="flow",
            if_damaged="if it is damaged, move it away and rerun the flow without recovery "
            "to rebuild it",
        )
        self._db: Rdict | None = db
        self._data: ColumnFamily | None = db.get_column_family_handle(DATA_CF)
        self._meta: ColumnFamily | None = db.get_column_family_handle(META_CF)
        self._position = decode_position(db.get_column_family(META_CF).get(META_POSITION), path)

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
        batch.put(META_POSITION, encode_position(position), self._meta)
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
        batch.delete_range(b"", KEY_END, self._data)
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
