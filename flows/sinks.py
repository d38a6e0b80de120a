"""Local JSONL outputs that are exactly-once across crashes.

Each output file is one sink partition. Its snapshot is the file's length after a
flush and fsync; a resumed run truncates the file back to that length before the
replayed epoch writes the same lines again, so no line is missing or doubled. A
fresh run (no recovery state) starts every file empty.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Final

from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

#: Output name -> file name under the data dir's `out/`.
LOCAL_FILES: Final = {
    "alerts": "alerts.jsonl",
    "windows": "windows.jsonl",
    "late": "late.jsonl",
    "dlq": "dlq.jsonl",
}


class _JsonlPartition(StatefulSinkPartition[list[bytes], int]):
    def __init__(self, path: Path, resume_length: int | None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = path.open("ab")
        self._file.truncate(resume_length or 0)
        self._file.seek(0, os.SEEK_END)

    def write_batch(self, values: list[list[bytes]]) -> None:
        write = self._file.write
        for lines in values:
            write(b"\n".join(lines) + b"\n")

    def snapshot(self) -> int:
        self._file.flush()
        os.fsync(self._file.fileno())
        return self._file.tell()

    def close(self) -> None:
        self._file.flush()
        self._file.close()


class JsonlSink(FixedPartitionedSink[list[bytes], int]):
    """Writes `(output name, [JSON line, ...])` items to `out_dir/<name>.jsonl`."""

    def __init__(self, out_dir: Path) -> None:
        self._out_dir = out_dir
        self._parts = sorted(LOCAL_FILES)

    def list_parts(self) -> list[str]:
        return self._parts

    def part_fn(self, item_key: str) -> int:
        # Route by name, not by hash: the key *is* the partition.
        return self._parts.index(item_key)

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _JsonlPartition:
        return _JsonlPartition(self._out_dir / LOCAL_FILES[for_part], resume_state)
