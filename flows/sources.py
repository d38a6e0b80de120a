"""Input sources: the built-in simulator and JSONL replay, as resumable Bytewax partitions.

Each partition parses its own lines (so parsing runs on every worker) and hands the
merge one `Batch` per read, marked ENDED with its last batch.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import BinaryIO

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from flows.events import DeadLetter, Record, parse
from flows.simulator import SimConfig, generate
from flows.watermark import Batch, PartState

FilePosition = tuple[int, int]  # (byte offset, lines read)


def parse_lines(lines: list[bytes], label: str, first: int) -> list[Record]:
    """Parse JSONL lines numbered from `first + 1`; blank lines carry no record.

    A dead letter's source (`label` + line number) is only spelled out for dead
    letters: formatting it for every line would cost more than the check.
    """
    records: list[Record] = []
    append = records.append
    for n, raw in enumerate(lines, first + 1):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if not raw or raw.isspace():
            continue
        record = parse(raw, label)
        if type(record) is DeadLetter:
            record.source = f"{label}{n}"
        append(record)
    return records


class _FilePartition(StatefulSourcePartition[Batch, FilePosition]):
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

    def next_batch(self) -> list[Batch]:
        if self._ended:
            raise StopIteration
        chunk = self._file.read(self._batch_bytes)
        if chunk:
            lines = (self._rest + chunk).split(b"\n")
            self._rest = lines.pop()
        else:  # end of file, perhaps after a last line without a newline
            lines, self._rest, self._ended = [self._rest], b"", True
        records = parse_lines(lines, self._label, self._line)
        self._line += len(lines)
        self._offset = self._file.tell() - len(self._rest)
        state = PartState.ENDED if self._ended else PartState.ACTIVE
        return [Batch(self._index, self._parts, records, state)]

    def snapshot(self) -> FilePosition:
        return (self._offset, self._line)

    def close(self) -> None:
        self._file.close()


class FileSource(FixedPartitionedSource[Batch, FilePosition]):
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


class _SimPartition(StatefulSourcePartition[Batch, int]):
    def __init__(self, cfg: SimConfig, batch_size: int, resume: int | None) -> None:
        self._emitted = resume or 0
        self._lines = islice(generate(cfg), self._emitted, None)
        self._batch_size = batch_size
        self._ended = False

    def next_batch(self) -> list[Batch]:
        if self._ended:
            raise StopIteration
        lines = list(islice(self._lines, self._batch_size))
        records = parse_lines(lines, "sim:", self._emitted)
        self._emitted += len(lines)
        self._ended = not lines
        state = PartState.ENDED if self._ended else PartState.ACTIVE
        return [Batch(0, (SimSource.PART,), records, state)]

    def snapshot(self) -> int:
        return self._emitted


class SimSource(FixedPartitionedSource[Batch, int]):
    """The built-in simulator, in-process: one partition, resumable by line count."""

    PART = "sim"

    def __init__(self, cfg: SimConfig, batch_size: int) -> None:
        self._cfg, self._batch_size = cfg, batch_size

    def list_parts(self) -> list[str]:
        return [self.PART]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _SimPartition:
        return _SimPartition(self._cfg, self._batch_size, resume_state)
