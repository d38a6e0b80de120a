"""Output records: their JSON encoding, deterministic alert ids, and the `Outputs` bundle."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from flows.contract import OUTPUTS, Keyed, Output, OutputBatch
from flows.events import US_PER_S, Position, Telemetry, format_ts


def to_json(obj: Any) -> bytes:
    """Compact JSON bytes of `obj`, sized to fit.

    orjson.dumps returns bytes that still hold its whole working buffer (4 KB in
    3.13); outputs wait in batches before a sink takes them, so keep a tight copy.
    """
    return bytes(memoryview(orjson.dumps(obj)))


def alert_id(container_id: str, kind: str, started_at: int) -> str:
    """Deterministic alert id: the same alert gets the same id on every replay."""
    text = f"{container_id}|{kind}|{format_ts(started_at)}"
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def late_record(raw: bytes, late_by_us: int) -> bytes:
    """The late output's record: the input record's own text plus `late_by_s`.

    Spliced into the original bytes instead of decoded and encoded again: a valid
    record may hold anything in fields the contract ignores (a 400-digit integer).
    """
    late_by_s = late_by_us / US_PER_S
    number = orjson.dumps(int(late_by_s) if late_by_s.is_integer() else late_by_s)
    body = raw.rstrip()[:-1].rstrip()  # a valid record is a JSON object: it ends with }
    separator = b"" if body.endswith(b"{") else b","
    return body + separator + b'"late_by_s":' + number + b"}"


def origin(record: Telemetry | Position) -> str:
    """Where a valid record came from, like a dead letter's `source`."""
    return f"{record.label}{record.number}"


def _empty() -> dict[str, list[Keyed]]:
    return {o.name: [] for o in OUTPUTS}


@dataclass(slots=True)
class Outputs:
    """Output records collected since the last drain, by output name.

    Attributes:
        records: Output name (`flows.contract.Output.name`) -> [(key, JSON value)].
        processed: Input records processed so far (the table's input position).
    """

    records: dict[str, list[Keyed]] = field(default_factory=_empty)
    processed: int = 0

    def of(self, output: Output) -> list[Keyed]:
        """The records of one output."""
        return self.records[output.name]

    def items(self, outputs: tuple[Output, ...]) -> list[OutputBatch]:
        """`(output name, records)` of these outputs, leaving out empty ones."""
        return [(o.name, self.records[o.name]) for o in outputs if self.records[o.name]]

    def take(self) -> Outputs:
        """Return what was collected and start anew."""
        taken = Outputs(self.records, self.processed)
        self.records = _empty()
        return taken
