"""The fleet's JSONL replay: each file is one partition and stands in for one topic.

A file named `IMO9778791.reefer.alerts.jsonl` is read as the records of the topic
`IMO9778791.reefer.alerts` (`flows.fleet_config.topic_of`). The snapshot is the byte
offset of the next line, so a resumed run rereads nothing and skips nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from flows.fleet_config import topic_of
from flows.fleet_core.names import FleetBatch


class _FleetFilePartition(StatefulSourcePartition[FleetBatch, int]):
    def __init__(self, path: Path, batch_bytes: int, resume: int | None) -> None:
        self._topic = topic_of(path)
        self._file: BinaryIO = path.open("rb")
        self._offset = resume or 0
        self._file.seek(self._offset)
        self._batch_bytes = batch_bytes

    def next_batch(self) -> list[FleetBatch]:
        chunk = self._file.read(self._batch_bytes)
        if not chunk:
            raise StopIteration
        end = chunk.rfind(b"\n") + 1
        if end == 0 and len(chunk) == self._batch_bytes:
            # A line longer than a batch: read on to its end.
            chunk += self._file.readline()
            end = len(chunk)
        elif end == 0 or len(chunk) < self._batch_bytes:
            end = len(chunk)  # the file's last line may lack its newline
        self._file.seek(self._offset + end)
        self._offset += end
        topic = self._topic
        return [[(topic, line) for line in chunk[:end].split(b"\n") if line.strip()]]

    def snapshot(self) -> int:
        return self._offset

    def close(self) -> None:
        self._file.close()


class FleetFileSource(FixedPartitionedSource[FleetBatch, int]):
    """Replay `<topic>.jsonl` files; each is one partition, read in file order."""

    def __init__(self, paths: tuple[Path, ...], batch_bytes: int = 1 << 16) -> None:
        self._paths = {str(p): p for p in paths}
        self._batch_bytes = batch_bytes

    def list_parts(self) -> list[str]:
        return list(self._paths)

    def build_part(
        self, step_id: str, for_part: str, resume_state: int | None
    ) -> _FleetFilePartition:
        return _FleetFilePartition(self._paths[for_part], self._batch_bytes, resume_state)
