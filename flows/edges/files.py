"""JSONL files: replay in (one partition per file) and exactly-once outputs.

Each output file is one sink partition. Its snapshot is the file's length after a
flush and fsync; a resumed run truncates the file back to that length before the
replayed epoch writes the same lines again, so no line is missing or doubled. A
fresh run (no recovery state) starts every file empty.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from flows.contract import FILE_OUTPUTS, Keyed
from flows.lines import Lines
from flows.watermark import PartState

FilePosition = tuple[int, int]  # (byte offset, lines read)


class _FilePartition(StatefulSourcePartition[Lines, FilePosition]):
    def __init__(
        self,
        path: Path,
        index: int,
        parts: tuple[str, ...],
        batch_bytes: int,
        resume: FilePosition | None,
    ) -> None:
        self._file: BinaryIO = path.open("rb")
        self._offset, self._line = resume or (0, 0)
        self._file.seek(self._offset)
        self._rest = b""  # a line not yet complete at the end of the last read
        self._label = f"{path}:"
        self._index, self._parts, self._batch_bytes = index, parts, batch_bytes
        self._ended = False

    def next_batch(self) -> list[Lines]:
        if self._ended:
            raise StopIteration
        chunk = self._file.read(self._batch_bytes)
        if chunk:
            raws = (self._rest + chunk).split(b"\n")
            self._rest = raws.pop()
        else:  # end of file, perhaps after a last line without a newline
            raws, self._rest, self._ended = [self._rest], b"", True
        numbers = range(self._line + 1, self._line + 1 + len(raws))
        self._line += len(raws)
        self._offset = self._file.tell() - len(self._rest)
        state = PartState.ENDED if self._ended else PartState.ACTIVE
        return [Lines(self._index, self._parts, self._label, numbers, raws, state)]

    def snapshot(self) -> FilePosition:
        return (self._offset, self._line)

    def close(self) -> None:
        self._file.close()


class FileSource(FixedPartitionedSource[Lines, FilePosition]):
    """JSONL replay; each file is one partition, read in file order, resumable."""

    def __init__(self, paths: tuple[Path, ...], batch_bytes: int = 1 << 20) -> None:
        self._paths = paths
        self._parts = tuple(str(p) for p in paths)
        self._batch_bytes = batch_bytes

    def list_parts(self) -> list[str]:
        return list(self._parts)

    def build_part(
        self, step_id: str, for_part: str, resume_state: FilePosition | None
    ) -> _FilePartition:
        index = self._parts.index(for_part)
        return _FilePartition(
            self._paths[index], index, self._parts, self._batch_bytes, resume_state
        )


class _JsonlPartition(StatefulSinkPartition[list[Keyed], int]):
    def __init__(self, path: Path, resume_length: int | None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = path.open("ab")
        self._file.truncate(resume_length or 0)
        self._file.seek(0, os.SEEK_END)

    def write_batch(self, values: list[list[Keyed]]) -> None:
        write = self._file.write
        for records in values:
            write(b"\n".join([value for _, value in records]) + b"\n")

    def snapshot(self) -> int:
        self._file.flush()
        os.fsync(self._file.fileno())
        return self._file.tell()

    def close(self) -> None:
        self._file.flush()
        self._file.close()


class JsonlSink(FixedPartitionedSink[list[Keyed], int]):
    """Writes each file output's records to `out_dir/<file>`.

    Items are `(output name, [(key, JSON value), ...])`; `files` maps output names to
    file names (default: the vessel outputs that have a file, `flows.contract.FILE_OUTPUTS`).
    """

    def __init__(self, out_dir: Path, files: Mapping[str, str] | None = None) -> None:
        self._out_dir = out_dir
        if files is None:
            files = {o.name: o.file for o in FILE_OUTPUTS if o.file is not None}
        self._files = dict(files)
        self._parts = sorted(self._files)

    def list_parts(self) -> list[str]:
        return self._parts

    def part_fn(self, item_key: str) -> int:
        # Route by name, not by hash: the key *is* the partition.
        return self._parts.index(item_key)

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _JsonlPartition:
        return _JsonlPartition(self._out_dir / self._files[for_part], resume_state)
