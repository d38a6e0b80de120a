"""JSONL replay: lines split across reads, CRLF, blank lines, resume from a snapshot."""

from __future__ import annotations

from pathlib import Path

from flows.edges.files import FileSource
from flows.events import DeadLetter, Telemetry
from flows.lines import parse_lines
from flows.watermark import Batch, PartState
from tests.support.builders import reading


def _drain(
    source: FileSource, resume: tuple[int, int] | None = None, stop_after: int = 10**9
) -> tuple[list[Batch], tuple[int, int]]:
    part = source.build_part("read", source.list_parts()[0], resume)
    batches: list[Batch] = []
    try:
        while len(batches) < stop_after:
            batches += [parse_lines(lines) for lines in part.next_batch()]
    except StopIteration:
        pass
    return batches, part.snapshot()


def test_lines_straddling_reads_crlf_blanks_and_no_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(reading(0) + b"\r\n\n   \n" + b"oops\n" + reading(10) + b"\n" + reading(20))
    batches, _ = _drain(FileSource((path,), batch_bytes=7))
    records = [r for b in batches for r in b.records]
    assert [type(r) for r in records] == [Telemetry, DeadLetter, Telemetry, Telemetry]
    assert isinstance(records[1], DeadLetter) and records[1].source == f"{path}:4"
    assert batches[-1].state is PartState.ENDED


def test_resuming_from_a_snapshot_reads_each_line_once(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"".join(reading(m) + b"\n" for m in range(50)) + b"bad\n")
    source = FileSource((path,), batch_bytes=100)
    first, position = _drain(source, stop_after=7)
    rest, _ = _drain(source, resume=position)
    records = [r for b in first + rest for r in b.records]
    assert len(records) == 51
    assert [r.ts for r in records if isinstance(r, Telemetry)] == sorted(
        {r.ts for r in records if isinstance(r, Telemetry)}
    )
    assert isinstance(records[-1], DeadLetter) and records[-1].source == f"{path}:51"
