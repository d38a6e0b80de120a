"""Raw input as sources hand it over, and the parse step that turns it into records.

A source partition only reads: each read becomes one `Lines` (raw records with the
numbers that name them: line numbers of a file, offsets of a Kafka partition).
`parse_lines` turns it into the `Batch` the watermark merge takes. Pure: no Bytewax.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flows.events import DeadLetter, Record, parse
from flows.watermark import Batch, PartState


@dataclass(slots=True)
class Lines:
    """One read of one input partition, not parsed yet.

    Attributes:
        part: Index of the partition in `parts`.
        parts: Every partition of the input, in tie-break order.
        label: What a dead letter's source starts with (`path:`, `topic[2]@`, `sim:`).
        numbers: The number naming each raw record (line number, or offset).
        raws: The raw records.
        state: The partition's state after this read.
        text: Lines of a text file: a trailing CR is dropped and blank lines carry no
            record. A Kafka message is a record whatever it holds, even empty.
    """

    part: int
    parts: tuple[str, ...]
    label: str
    numbers: Sequence[int]
    raws: list[bytes]
    state: PartState = PartState.ACTIVE
    text: bool = True


def parse_lines(lines: Lines) -> Batch:
    """Parse one read into records; anything off-contract becomes a `DeadLetter`.

    A dead letter's source (label + number) is only spelled out for dead letters:
    formatting it for every record would cost more than the check.
    """
    records: list[Record] = []
    append = records.append
    label, text = lines.label, lines.text
    for n, raw in zip(lines.numbers, lines.raws, strict=True):
        if text:
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if not raw or raw.isspace():
                continue
        record = parse(raw, label)
        if isinstance(record, DeadLetter):
            record.source = f"{label}{n}"
        else:  # kept apart: only a held record that is dead-lettered spells it out
            record.number = n
        append(record)
    return Batch(lines.part, lines.parts, records, lines.state)
