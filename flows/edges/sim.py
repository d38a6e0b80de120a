"""The built-in simulator as a source: one partition, resumable by line count."""

from __future__ import annotations

from itertools import islice

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from flows.lines import Lines
from flows.sim import SimConfig, generate
from flows.watermark import PartState

PART = "sim"


class _SimPartition(StatefulSourcePartition[Lines, int]):
    def __init__(self, cfg: SimConfig, batch_size: int, resume: int | None) -> None:
        self._emitted = resume or 0
        self._lines = islice(generate(cfg), self._emitted, None)
        self._batch_size = batch_size
        self._ended = False

    def next_batch(self) -> list[Lines]:
        if self._ended:
            raise StopIteration
        raws = list(islice(self._lines, self._batch_size))
        numbers = range(self._emitted + 1, self._emitted + 1 + len(raws))
        self._emitted += len(raws)
        self._ended = not raws
        state = PartState.ENDED if self._ended else PartState.ACTIVE
        return [Lines(0, (PART,), "sim:", numbers, raws, state)]

    def snapshot(self) -> int:
        return self._emitted


class SimSource(FixedPartitionedSource[Lines, int]):
    """The built-in simulator, in-process: one partition, resumable by line count."""

    def __init__(self, cfg: SimConfig, batch_size: int) -> None:
        self._cfg, self._batch_size = cfg, batch_size

    def list_parts(self) -> list[str]:
        return [PART]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _SimPartition:
        return _SimPartition(self._cfg, self._batch_size, resume_state)
