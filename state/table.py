"""What the container-state table's writer and readers share: names, layout, options.

The table is a RocksDB database (rocksdict) of JSON rows. Keys are strings, values
are JSON documents that arrive already encoded: the store moves bytes and never
re-encodes them. Rows live in the `data` column family; the input position they
reflect lives in `meta`, and both change in one WriteBatch, so a reader or a
restarted writer always sees rows and position that belong together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from rocksdict import AccessType, BlockBasedOptions, Cache, DBCompressionType, Options, Rdict

from flows.contract import CONTAINER_STATE, STATE_DIR

TABLE_DIR: Final = STATE_DIR
TABLE_NAME: Final = CONTAINER_STATE.name

DATA_CF: Final = "data"
META_CF: Final = "meta"
META_POSITION: Final = b"position"

# UTF-8 never produces the byte 0xFF, so PREFIX + 0xFF is above every key that
# starts with PREFIX and below every other key that sorts after them.
KEY_END: Final = b"\xff"

MIB: Final = 1024 * 1024


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


def encode_position(position: int) -> bytes:
    return position.to_bytes(8, "big", signed=False)


def decode_position(raw: object, path: Path) -> int | None:
    if raw is None:
        return None
    if not isinstance(raw, bytes) or len(raw) != 8:
        raise StoreError(
            f"the container-state table at {path} has a malformed position {raw!r}; "
            "delete the table and run the flow without recovery to rebuild it"
        )
    return int.from_bytes(raw, "big", signed=False)


def cf_options(cache: Cache) -> Options:
    # A vessel's table holds one row per container (thousands, not millions) on
    # a 2-core box: small memtables, lz4 (cheap on CPU) and a bloom filter for
    # the point lookups the crew's queries make.
    opts = Options(raw_mode=True)
    opts.set_write_buffer_size(8 * MIB)
    opts.set_max_write_buffer_number(2)
    opts.set_target_file_size_base(16 * MIB)
    opts.set_compression_type(DBCompressionType.lz4())
    table = BlockBasedOptions()
    table.set_block_cache(cache)
    table.set_bloom_filter(10, False)
    opts.set_block_based_table_factory(table)
    return opts


def db_options(cache: Cache, *, writer: bool) -> Options:
    opts = cf_options(cache)
    opts.set_max_background_jobs(2)
    # RocksDB's info LOG otherwise grows without bound on a box nobody logs into.
    opts.set_keep_log_file_num(2)
    opts.set_max_log_file_size(MIB)
    if writer:
        opts.create_if_missing(True)
        opts.create_missing_column_families(True)
        # `meta` gets one tiny write per batch and would never fill a memtable:
        # flushing it with `data` keeps it from pinning old WAL files forever.
        opts.set_atomic_flush(True)
        opts.set_max_total_wal_size(32 * MIB)
        opts.set_bytes_per_sync(MIB)
    else:
        # A secondary must keep every SST it has seen open: the primary deletes
        # files after compactions and the secondary only learns at catch-up.
        opts.set_max_open_files(-1)
        # Each catch-up reloads table handlers with this many fresh threads per
        # column family: the default 16 costs ~2 ms per refresh, 1 costs ~25 µs.
        opts.set_max_file_opening_threads(1)
    return opts


def column_families(cache: Cache) -> dict[str, Options]:
    # Named explicitly: without this rocksdict opens a new path with the default
    # column family only, and a secondary could not address `data`/`meta`.
    return {DATA_CF: cf_options(cache), META_CF: cf_options(cache)}


def new_cache() -> Cache:
    return Cache(16 * MIB)


def open_writer(
    path: Path,
    families: Callable[[Cache], dict[str, Options]],
    *,
    what: str,
    directory: str,
    flow: str,
    if_damaged: str,
) -> Rdict:
    """Open (creating it and its parents if needed) a RocksDB store as its single writer.

    Args:
        path: The store's directory.
        families: Its column families' options, given the block cache.
        what: The store, as error messages name it ("the container-state table").
        directory: Its directory, as the mkdir error names it.
        flow: The job that writes it, named when another process holds the lock.
        if_damaged: What to do when RocksDB refuses to open it.

    Raises:
        StoreError: The directory cannot be created, the store is open in another
            process, or RocksDB refuses to open it; the message says what to do.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the {directory} directory {path}: {exc}; "
            "check that the data dir is writable"
        ) from exc
    cache = new_cache()
    try:
        return Rdict(
            str(path),
            db_options(cache, writer=True),
            column_families=families(cache),
            access_type=AccessType.read_write(),
        )
    except Exception as exc:
        message = str(exc)
        # RocksDB names its LOCK file when another instance holds it ("While lock
        # file: .../LOCK: Resource temporarily unavailable"); a bare "lock" would
        # also match "block checksum mismatch".
        if "/LOCK:" in message:
            raise StoreError(
                f"{what} at {path} is open in another process "
                f"(is the {flow} already running?); stop it or use another data dir"
            ) from exc
        raise StoreError(f"cannot open {what} at {path}: {message}; {if_damaged}") from exc


class Closable:
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
