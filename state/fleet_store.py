"""The fleet tables' local store: SHARDS RocksDB shards, each with an undo log.

Every fleet table row lives in shard `shard_of(key)` (`DATA_DIR/state/fleet/shard-NN`),
and each shard has one writer: one sink partition of the fleet flow. A shard has
three column families:

* `data`: table name + 0x00 + row key (UTF-8) -> the row's JSON bytes, as encoded.
* `meta`: `generation`, the one being written; `pruned`, the last generation
  whose undo entries were dropped; `position`, +1 per batch, rollback and reset
  (in their WriteBatch), never going back: what `FleetReader.position` sums.
* `undo`: generation (8 bytes, big-endian) + data key -> 0x01 + the value the key
  held before that generation's first write to it, or 0x00 if it had none.

Generation g holds the writes between the `snapshot()` calls returning g-1 and g.
Restoring each key's oldest undo entry above g gives back what the shard held
when `snapshot()` returned g: that is `rollback(g)`. Bytewax resumes from the last
*committed* snapshot, which may be older than the last one taken, and its replay
re-emits only the changes relative to it, so rows written after it must go back.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import cast

from rocksdict import ColumnFamily, Rdict, WriteBatch

from flows.fleet_core.tables import Change
from state.fleet_layout import (
    ABSENT,
    GEN_BYTES,
    KEEP,
    META_GENERATION,
    META_PRUNED,
    PRESENT,
    UNDO_CF,
    UNDO_END,
    WHAT,
    data_key,
    decode_meta,
    decode_shard_position,
    encode_generation,
    fleet_column_families,
    split_data_key,
)
from state.table import (
    DATA_CF,
    KEY_END,
    META_CF,
    META_POSITION,
    Closable,
    StoreError,
    encode_position,
    open_writer,
)


class ShardWriter(Closable):
    """The single writer of one shard (one partition of the fleet flow's sink).

    Opens the shard at `path`, creating it and its parent directories if needed.
    Not thread-safe; RocksDB's lock keeps a second writer process out.

    Args:
        path: The shard directory, normally `shard_path(data_dir, shard)`.

    Raises:
        StoreError: The directory cannot be created, the shard is open in another
            process, or RocksDB refuses to open it.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        db = open_writer(
            path,
            fleet_column_families,
            what=WHAT,
            directory="fleet store",
            flow="fleet flow",
            if_damaged="if it is damaged, delete the fleet store and the recovery directory "
            "and run the fleet flow again to rebuild it",
        )
        self._db: Rdict | None = db
        self._data_h: ColumnFamily | None = db.get_column_family_handle(DATA_CF)
        self._meta_h: ColumnFamily | None = db.get_column_family_handle(META_CF)
        self._undo_h: ColumnFamily | None = db.get_column_family_handle(UNDO_CF)
        self._data: Rdict | None = db.get_column_family(DATA_CF)
        self._undo: Rdict | None = db.get_column_family(UNDO_CF)
        meta = db.get_column_family(META_CF)
        self._generation = decode_meta(meta.get(META_GENERATION), "generation", path) or 0
        #: Undo entries of generations <= this are gone (None: none are).
        self._pruned = decode_meta(meta.get(META_PRUNED), "pruned generation", path)
        self._position = decode_shard_position(meta.get(META_POSITION), path)
        #: Data keys with an undo entry in the current generation.
        self._touched: set[bytes] = set()
        # A crashed run may have written undo entries in the current generation
        # that `_touched` does not know of: until the next snapshot, rollback or
        # reset, check the undo log itself before adding one.
        self._undo_known = False

    @property
    def path(self) -> Path:
        """The shard directory."""
        return self._path

    def generation(self) -> int:
        """Return the generation being written (the next `snapshot()` returns it)."""
        self._live()
        return self._generation

    def position(self) -> int:
        """Return the shard's change counter: batches applied, rollbacks and resets, ever."""
        self._live()
        return self._position

    def apply(self, changes: Sequence[Change]) -> None:
        """Write `(table, key, JSON bytes or None)` changes in one atomic batch.

        The last change of a key in `changes` wins; `None` deletes the row.

        Raises:
            StoreError: The writer is closed or RocksDB refused the write.
        """
        db = self._live()
        latest: dict[bytes, bytes | None] = {}
        for table, key, value in changes:
            latest[data_key(table, key)] = value
        if not latest:
            return
        batch = WriteBatch(raw_mode=True)
        new = [k for k in latest if k not in self._touched]
        if new:
            prefix = encode_generation(self._generation)
            if not self._undo_known:
                found = _multi_get(self._cf(self._undo), [prefix + k for k in new])
                new = [k for k, entry in zip(new, found, strict=True) if entry is None]
            # The values before this generation's first write to each key.
            olds = _multi_get(self._cf(self._data), new)
            for raw, old in zip(new, olds, strict=True):
                batch.put(prefix + raw, ABSENT if old is None else PRESENT + old, self._undo_h)
        for raw, row in latest.items():
            if row is None:
                batch.delete(raw, self._data_h)
            else:
                batch.put(raw, row, self._data_h)
        self._write(db, batch, "write to")
        # Only after the write: a failed batch recorded no undo entries.
        self._touched.update(latest)

    def snapshot(self) -> int:
        """Make every write durable, close the current generation and return its number.

        Also drops the undo log of generations `KEEP` and more behind it.

        Raises:
            StoreError: The writer is closed or the disk refused the write or sync.
        """
        db = self._live()
        done = self._generation
        batch = WriteBatch(raw_mode=True)
        batch.put(META_GENERATION, encode_generation(done + 1), self._meta_h)
        prune = done - KEEP
        pruning = prune >= 0 and (self._pruned is None or prune > self._pruned)
        if pruning:
            start = b"" if self._pruned is None else encode_generation(self._pruned + 1)
            # One range tombstone per snapshot rather than a delete per entry.
            batch.delete_range(start, encode_generation(prune + 1), self._undo_h)
            batch.put(META_PRUNED, encode_generation(prune), self._meta_h)
        self._write(db, batch, "snapshot", counts=False)
        # Synced before returning: once Bytewax holds `done`, the shard must be
        # durably past it, rows included, or a later rollback to it could not work.
        self._sync(db)
        self._generation = done + 1
        if pruning:
            self._pruned = prune
        self._new_generation()
        return done

    def rollback(self, generation: int) -> list[Change]:
        """Make the shard hold exactly what it held when `snapshot()` returned `generation`.

        Returns:
            The rows it restored, `(table, key, JSON bytes or None)` in key order
            (`None`: the row did not exist), for re-publishing to the changelog.

        Raises:
            ValueError: `generation` is negative.
            StoreError: The shard never reached that snapshot (it was deleted or
                replaced since), its undo log no longer reaches back to it, or
                RocksDB refused the write.
        """
        db = self._live()
        if generation < 0:
            raise ValueError(f"generation must be >= 0, got {generation}")
        if generation >= self._generation:
            raise StoreError(
                f"{WHAT} at {self._path} is at generation {self._generation} but the "
                f"recovery snapshot is generation {generation}: the shard was deleted or "
                "replaced since that snapshot; restore it, or delete the recovery "
                "directory and run the fleet flow again to rebuild it from the input"
            )
        if self._pruned is not None and generation < self._pruned:
            raise StoreError(
                f"the recovery snapshot (generation {generation}) is older than the undo log "
                f"of {WHAT} at {self._path}, which reaches back to generation {self._pruned}; "
                "start afresh: delete the recovery directory and run the fleet flow again"
            )
        start = encode_generation(generation + 1)
        restored: dict[bytes, bytes | None] = {}
        # Undo keys sort by generation first: a key's first entry is its oldest,
        # the value it held at the snapshot.
        for raw_key, entry in self._cf(self._undo).items(from_key=start):
            key = cast(bytes, raw_key)[GEN_BYTES:]
            if key not in restored:
                restored[key] = _decode_undo(cast(bytes, entry), self._path)
        batch = WriteBatch(raw_mode=True)
        for key, old in restored.items():
            if old is None:
                batch.delete(key, self._data_h)
            else:
                batch.put(key, old, self._data_h)
        batch.delete_range(start, UNDO_END, self._undo_h)
        batch.put(META_GENERATION, encode_generation(generation + 1), self._meta_h)
        self._write(db, batch, "roll back")
        self._sync(db)
        self._generation = generation + 1
        self._new_generation()
        return [(*split_data_key(key), restored[key]) for key in sorted(restored)]

    def restore(self, generation: int, rows: Sequence[Change]) -> None:
        """Hold exactly `rows` as of snapshot `generation`, with no undo log: a shard
        rebuilt from elsewhere (`state.restore`), so that `rollback(generation)` is a no-op.

        Raises:
            ValueError: `generation` is negative.
            StoreError: The writer is closed or RocksDB refused the write.
        """
        db = self._live()
        if generation < 0:
            raise ValueError(f"generation must be >= 0, got {generation}")
        batch = WriteBatch(raw_mode=True)
        batch.delete_range(b"", KEY_END, self._data_h)
        batch.delete_range(b"", UNDO_END, self._undo_h)
        for table, key, value in rows:
            if value is not None:
                batch.put(data_key(table, key), value, self._data_h)
        # The generation a resume from `generation` continues with (as after a rollback);
        # no undo entry reaches further back, so a rollback to an older one is refused.
        batch.put(META_GENERATION, encode_generation(generation + 1), self._meta_h)
        batch.put(META_PRUNED, encode_generation(generation), self._meta_h)
        self._write(db, batch, "restore")
        self._sync(db)
        self._generation, self._pruned = generation + 1, generation
        self._new_generation()

    def reset(self) -> None:
        """Delete every row, the undo log and the generation, atomically (a fresh run)."""
        db = self._live()
        batch = WriteBatch(raw_mode=True)
        # Range tombstones: readers see the old shard or the empty one, never half.
        batch.delete_range(b"", KEY_END, self._data_h)
        batch.delete_range(b"", UNDO_END, self._undo_h)
        batch.delete_range(b"", KEY_END, self._meta_h)
        # `_write` puts the position after the range delete: it survives a fresh run.
        self._write(db, batch, "reset")
        self._generation = 0
        self._pruned = None
        self._new_generation()
        try:
            # Give the disk back now rather than at some later compaction.
            for name in (DATA_CF, UNDO_CF):
                db.get_column_family(name).compact_range(None, None)
        except Exception as exc:
            raise StoreError(
                f"cannot reset {WHAT} at {self._path}: {exc}; "
                "stop the flow and delete that directory by hand"
            ) from exc

    def close(self) -> None:
        """Flush memtables and the WAL and release the shard. Idempotent."""
        db = self._db
        if db is None:
            return
        try:
            db.flush_wal(True)
            # Rdict.flush()/close() flush the default column family only.
            for name in (DATA_CF, META_CF, UNDO_CF):
                db.get_column_family(name).flush()
        finally:
            # A live column family handle keeps RocksDB (and its LOCK) open after
            # close(), so a reopen in this process would fail: drop them first.
            self._data_h = self._meta_h = self._undo_h = None
            self._data = self._undo = None
            self._db = None
            db.close()

    def _new_generation(self) -> None:
        self._touched.clear()
        self._undo_known = True

    def _write(self, db: Rdict, batch: WriteBatch, doing: str, *, counts: bool = True) -> None:
        # A batch that changes rows also moves the position, in the same WriteBatch.
        if counts:
            batch.put(META_POSITION, encode_position(self._position + 1), self._meta_h)
        try:
            db.write(batch)
        except Exception as exc:
            raise StoreError(
                f"cannot {doing} {WHAT} at {self._path}: {exc}; check free disk space, "
                "then restart the fleet flow (it resumes from its last snapshot)"
            ) from exc
        if counts:
            self._position += 1

    def _sync(self, db: Rdict) -> None:
        try:
            db.flush_wal(True)
        except Exception as exc:
            raise StoreError(
                f"cannot sync {WHAT} at {self._path}: {exc}; "
                "check the disk, then restart the fleet flow"
            ) from exc

    def _cf(self, cf: Rdict | None) -> Rdict:
        if cf is None:
            raise StoreError(f"the writer of {WHAT} at {self._path} is closed")
        return cf

    def _live(self) -> Rdict:
        if self._db is None:
            raise StoreError(f"the writer of {WHAT} at {self._path} is closed")
        return self._db


def _multi_get(cf: Rdict, keys: list[bytes]) -> list[bytes | None]:
    # One RocksDB MultiGet (rocksdict takes a list) instead of a call per key.
    if not keys:
        return []
    return cast(list[bytes | None], cf.get(cast(list[str | int | float | bytes | bool], keys)))


def _decode_undo(entry: bytes, path: Path) -> bytes | None:
    if entry == ABSENT:
        return None
    if entry[:1] == PRESENT:
        return entry[1:]
    raise StoreError(
        f"{WHAT} at {path} has a malformed undo entry {entry[:16]!r}; delete the fleet "
        "store and the recovery directory and run the fleet flow again to rebuild it"
    )
