"""The fleet's inputs, pure: one vessel record (topic, bytes) to a typed value.

`decode` never raises. Its topic says what a record is (`flows.fleet_core.names.input_kind`);
msgspec reads it into the contract's shape for that kind, and a record that does not
fit becomes an `Undecodable` carrying the reason and the bytes. What is checked:

* alerts (`reefer.alert`), windows (`reefer.window`) and container-state rows: the
  fields the fleet uses, with their JSON types, timestamps that parse, valid
  container and vessel ids, `state` one of open/closed/retracted, window counts
  with 0 <= out_of_range <= count, and temperatures within ±1e9 (so that
  thousandths of a degree stay exact integers). Other fields are ignored.
* late records and position fixes: the input contract in full (`flows.events.parse`:
  a late record is an input record with `late_by_s` spliced in, which it ignores).
* dead letters: the contract's `dead_letter` shape.

Every value names the vessel it counts under: the record's own `vessel_id`, except
for a dead letter, which has none: it counts under its topic's mirror alias (the
vessel id without dots) or, on an unprefixed stand-in topic, `UNKNOWN_VESSEL`.
Values are not changed after decoding. Imports only `flows.contract`, `flows.events`,
`flows.fields`, `flows.timestamps` and `flows.fleet_core.names`.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Final, Literal

import msgspec

from flows.contract import ALERT_TYPE, DEAD_LETTER_TYPE, POSITION, WINDOW_TYPE
from flows.events import DeadLetter, Position, Telemetry, parse
from flows.fields import container_id_error, vessel_id_error
from flows.fleet_core.names import (
    ALERTS_IN,
    DLQ_IN,
    LATE_IN,
    POSITION_IN,
    STATE_IN,
    UNKNOWN_VESSEL,
    WINDOWS_IN,
    input_kind,
)
from flows.timestamps import parse_ts

_Latitude = Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)]
_Longitude = Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)]
_Celsius = Annotated[float, msgspec.Meta(ge=-1e9, le=1e9)]
_Count = Annotated[int, msgspec.Meta(ge=0)]
AlertState = Literal["open", "closed", "retracted"]


class AlertRecord(msgspec.Struct, tag_field="type", tag=ALERT_TYPE):
    """An alert record (`reefer.alert`), the fields the fleet uses; times as written."""

    alert_id: str
    state: AlertState
    kind: str
    container_id: str
    vessel_id: str
    started_at: str
    opened_at: str
    closed_at: str | None = None
    lat: _Latitude | None = None
    lon: _Longitude | None = None
    detail: dict[str, Any] = {}


class WindowRecord(msgspec.Struct, tag_field="type", tag=WINDOW_TYPE, gc=False):
    """A window record (`reefer.window`), the fields the fleet uses; times as written."""

    container_id: str
    vessel_id: str
    window_start: str
    window_end: str
    count: _Count
    temp_mean: _Celsius
    setpoint_c: _Celsius
    out_of_range: _Count
    temp_min: _Celsius | None = None
    temp_max: _Celsius | None = None
    lat: _Latitude | None = None
    lon: _Longitude | None = None
    revision: _Count = 0


class StateRow(msgspec.Struct, gc=False):
    """A container-state row: the fields the fleet orders it by; the row is kept whole."""

    container_id: str
    vessel_id: str
    ts: str


class DeadLetterRecord(msgspec.Struct, tag_field="type", tag=DEAD_LETTER_TYPE, gc=False):
    """A dead letter (`dead_letter`): only its shape is checked, nothing is used."""

    error: str
    source: str
    raw: str
    raw_encoding: Literal["utf-8", "base64"]


Value = AlertRecord | WindowRecord | StateRow | Telemetry | Position | DeadLetterRecord


class Record(msgspec.Struct, frozen=True):
    """One decoded vessel record.

    Attributes:
        kind: Its input kind (`flows.fleet_core.names`: alerts, windows, …, position).
        origin: The mirror alias of its topic: the cluster (vessel flow) that wrote
            it, "" on an unprefixed stand-in topic.
        vessel_id: The vessel it counts under (see the module docstring).
        digest: BLAKE2b-128 of its bytes: its identity, and the last tie-break of
            every order (identical records are one record).
        raw: Its bytes, as read.
        value: What it holds: an `AlertRecord` (alerts), `WindowRecord` (windows),
            `StateRow` (container-state), `Telemetry` or `Position` (late),
            `Position` (position) or `DeadLetterRecord` (dlq).
    """

    kind: str
    origin: str
    vessel_id: str
    digest: bytes
    raw: bytes
    value: Value


class Undecodable(msgspec.Struct, frozen=True):
    """A record the fleet cannot read, with the reason (a sentence) and its bytes."""

    topic: str
    error: str
    raw: bytes


_ALERT: Final = msgspec.json.Decoder(AlertRecord)
_WINDOW: Final = msgspec.json.Decoder(WindowRecord)
_STATE: Final = msgspec.json.Decoder(StateRow)
_DEAD_LETTER: Final = msgspec.json.Decoder(DeadLetterRecord)
_FAULT: Final = "unreadable (a fault in the fleet's decoder; please report it with this record)"


def digest(raw: bytes) -> bytes:
    """A record's identity: BLAKE2b with a 16-byte digest of its bytes."""
    return hashlib.blake2b(raw, digest_size=16).digest()


def decode(topic: str, raw: bytes) -> Record | Undecodable:
    """Decode one record of a shore topic; never raises.

    Args:
        topic: The topic it was read from (its suffix says what it is).
        raw: The record (the Kafka message value, or a JSONL line).
    """
    found = input_kind(topic)
    if found is None:
        return Undecodable(topic, f"{topic!r} is not a topic the fleet reads", raw)
    kind, alias = found
    if not raw:
        return Undecodable(topic, f"{kind}: empty record", raw)
    try:
        value, vessel_id = _decode(kind, alias, raw)
    except (msgspec.DecodeError, ValueError) as exc:
        return Undecodable(topic, f"{kind}: {exc}", raw)
    except RecursionError:
        return Undecodable(topic, f"{kind}: nested too deeply", raw)
    except Exception:  # a fault of ours must not stop the flow
        return Undecodable(topic, f"{kind}: {_FAULT}", raw)
    return Record(kind, alias, vessel_id, digest(raw), raw, value)


def _decode(kind: str, alias: str, raw: bytes) -> tuple[Value, str]:
    """`(value, vessel id)` of a record of `kind`; raises ValueError or DecodeError."""
    if kind == ALERTS_IN:
        alert = _ALERT.decode(raw)
        _ids(alert.container_id, alert.vessel_id)
        for text in (alert.started_at, alert.opened_at, alert.closed_at):
            if text is not None:
                parse_ts(text)
        return alert, alert.vessel_id
    if kind == WINDOWS_IN:
        window = _WINDOW.decode(raw)
        _ids(window.container_id, window.vessel_id)
        if parse_ts(window.window_end) <= parse_ts(window.window_start):
            raise ValueError("window_end is not after window_start")
        if window.out_of_range > window.count:
            raise ValueError("out_of_range is more than count")
        return window, window.vessel_id
    if kind == STATE_IN:
        row = _STATE.decode(raw)
        _ids(row.container_id, row.vessel_id)
        parse_ts(row.ts)
        return row, row.vessel_id
    if kind == DLQ_IN:
        return _DEAD_LETTER.decode(raw), alias or UNKNOWN_VESSEL
    if kind not in (LATE_IN, POSITION_IN):
        raise ValueError(f"no decoder for kind {kind!r}")
    record = parse(raw, "")
    if isinstance(record, DeadLetter):
        raise ValueError(record.error)
    if kind == POSITION_IN and not isinstance(record, Position):
        raise ValueError(f"not a {POSITION} record")
    return record, record.vessel_id


def _ids(container_id: str, vessel_id: str) -> None:
    error = container_id_error(container_id) or vessel_id_error(vessel_id)
    if error is not None:
        raise ValueError(error)
