"""What the fleet shards' writer and readers share: where shards live, key layout, options.

See `state.fleet_store` for what each column family holds and why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from rocksdict import Cache, Options

from flows.contract import STATE_DIR
from flows.fleet_core.names import SHARDS
from state.table import DATA_CF, META_CF, MIB, StoreError, cf_options

FLEET_DIR: Final = "fleet"
#: The sink's partition names, one per shard; sorted, so Bytewax's wrapped
#: indexing of `shard_of(key)` into them picks shard `shard_of(key)`.
SHARD_NAMES: Final = tuple(f"shard-{shard:02d}" for shard in range(SHARDS))

UNDO_CF: Final = "undo"
META_GENERATION: Final = b"generation"
META_PRUNED: Final = b"pruned"

#: Generations of undo log kept behind the one last snapshotted: how many epochs
#: Bytewax's committed snapshot may lag the last snapshot and still resume.
KEEP: Final = 16

SEP: Final = b"\x00"
ABSENT: Final = b"\x00"
PRESENT: Final = b"\x01"
GEN_BYTES: Final = 8
# Above every undo key: the generation's 8 bytes, then a data key, whose first
# byte (of a UTF-8 table name) is never 0xFF.
UNDO_END: Final = b"\xff" * (GEN_BYTES + 1)

WHAT: Final = "the fleet store shard"


def fleet_dir(data_dir: Path) -> Path:
    """Return where the fleet tables' shards live inside a data dir."""
    return data_dir / STATE_DIR / FLEET_DIR


def shard_path(data_dir: Path, shard: int) -> Path:
    """Return the directory of shard `shard` (0 .. SHARDS-1) inside a data dir."""
    if not 0 <= shard < SHARDS:
        raise ValueError(f"shard must be in 0..{SHARDS - 1}, got {shard}")
    return fleet_dir(data_dir) / SHARD_NAMES[shard]


def table_prefix(table: str) -> bytes:
    """Return the prefix of every data key of `table`."""
    return table.encode() + SEP


def data_key(table: str, key: str) -> bytes:
    """Return the `data` column family's key of one row."""
    return table.encode() + SEP + key.encode()


def split_data_key(raw: bytes) -> tuple[str, str]:
    """Return `(table, row key)` of a `data` column family key."""
    table, _, key = raw.partition(SEP)
    return table.decode(), key.decode()


def fleet_column_families(cache: Cache) -> dict[str, Options]:
    """Return the column families of a shard (readers may open a subset)."""
    # Eight shards of three families each: the vessel table's 2 x 8 MiB memtables
    # per family would add up to 384 MiB; 2 x 2 MiB keeps a fleet process small.
    families = {name: cf_options(cache) for name in (DATA_CF, META_CF, UNDO_CF)}
    for opts in families.values():
        opts.set_write_buffer_size(2 * MIB)
    return families


def decode_shard_position(raw: object, path: Path) -> int:
    """Return a shard's stored `position` (0 if none); StoreError if malformed."""
    return decode_meta(raw, "position", path) or 0


def encode_generation(generation: int) -> bytes:
    return generation.to_bytes(GEN_BYTES, "big", signed=False)


def decode_meta(raw: object, name: str, path: Path) -> int | None:
    if raw is None:
        return None
    if not isinstance(raw, bytes) or len(raw) != GEN_BYTES:
        raise StoreError(
            f"{WHAT} at {path} has a malformed {name} {raw!r}; delete the fleet store "
            "and the recovery directory and run the fleet flow again to rebuild it"
        )
    return int.from_bytes(raw, "big", signed=False)
