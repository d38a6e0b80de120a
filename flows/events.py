"""Input parsing, pure: typed records from raw bytes, validated against the event contract.

`parse` never raises: every input record becomes a `Telemetry`, a `Position` or a
`DeadLetter` carrying the reason and the original bytes. The common, valid record
takes one pass of msgspec's typed decoder (a tagged union on `type`, with the
ranges as `Meta` bounds) and a few cached checks (ids, `ts`); anything the
decoder refuses is read again, slowly and exactly, by `flows.rejects`, which names
the first rule the record breaks. Timestamps live in `flows.timestamps` and the
per-field rules in `flows.fields`; their public names are re-exported here.
No Bytewax, config or edge import.
"""

from __future__ import annotations

import base64
import codecs
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Final

import msgspec

from flows.contract import DEAD_LETTER_TYPE, POSITION, TELEMETRY
from flows.fields import (
    VALID_CONTAINER_IDS,
    VALID_VESSEL_IDS,
    container_id_error,
    event_time,
    iso6346_check_digit,
    vessel_id_error,
    with_check_digit,
)
from flows.rejects import MAX_DEPTH, MAX_RECORD_BYTES, explain, shape_error
from flows.timestamps import US_PER_S, format_ts, parse_ts

__all__ = [
    "MAX_DEPTH",
    "MAX_RECORD_BYTES",
    "POSITION",
    "RAW_SHOWN_BYTES",
    "TELEMETRY",
    "US_PER_S",
    "DeadLetter",
    "Position",
    "Record",
    "Telemetry",
    "format_ts",
    "iso6346_check_digit",
    "parse",
    "parse_ts",
    "with_check_digit",
]

#: A dead letter's `raw` holds at most this many bytes of the record.
RAW_SHOWN_BYTES: Final = 64 * 1024

# The decoder reads a record straight into the classes below, so a few fields are
# declared for it as what the JSON holds, and `parse` then turns them into what the
# records carry (which is what type checkers see): `ts` arrives as its RFC 3339
# text; a flag may arrive as null (absent); `raw`, `label` and `number` are not
# read from the record at all (msgspec.Raw takes any value an input may have under
# those names, unread) but set by `parse` and its caller.
if TYPE_CHECKING:
    _Time = int
    _Flag = bool
    _Bytes = bytes
    _Text = str
    _Count = int | str
else:
    _Time = str
    _Flag = bool | None
    _Bytes = _Text = _Count = msgspec.Raw

_Latitude = Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)]
_Longitude = Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)]
_Speed = Annotated[float, msgspec.Meta(ge=0.0)]


# Mutable, like the slotted dataclasses they replace: `parse` fills in a few fields
# after decoding. Treat them as values all the same. gc=False: they hold no containers.
class _Input(msgspec.Struct, tag_field="type", gc=False):
    """What every input record is: tagged by its `type` field."""


class Telemetry(_Input, tag=TELEMETRY):
    """One reading of one refrigerated container (`reefer.telemetry`).

    Attributes:
        ts: Event time, microseconds since the Unix epoch (UTC).
        raw: The original record, for the late output.
        label: Where the record came from, as `parse` was told: a whole source
            (`path:12`) or, when the caller keeps the number apart, its prefix
            (`path:`, `topic[2]@`).
        number: The record's number after `label` (line or offset), set by a caller
            that keeps it apart; empty otherwise. `label` then `number` name the
            record like a dead letter's `source`.
    """

    container_id: str
    vessel_id: str
    ts: _Time
    setpoint_c: float
    temp_c: float
    power_kw: float
    return_c: float | None = None
    ambient_c: float | None = None
    humidity_pct: float | None = None
    co2_pct: float | None = None
    o2_pct: float | None = None
    door_open: _Flag = False
    defrost: _Flag = False
    co2_setpoint_pct: float | None = None
    o2_setpoint_pct: float | None = None
    raw: _Bytes = b""
    label: _Text = ""
    number: _Count = ""


class Position(_Input, tag=POSITION):
    """One position fix of a vessel (`vessel.position`); attributes as `Telemetry`'s."""

    vessel_id: str
    ts: _Time
    lat: _Latitude
    lon: _Longitude
    sog_kn: _Speed
    cog_deg: float | None = None
    raw: _Bytes = b""
    label: _Text = ""
    number: _Count = ""


@dataclass(slots=True)
class DeadLetter:
    """A malformed input record with the reason it was rejected.

    Attributes:
        error: The reason, a sentence naming the field, the value and the rule.
        source: Where the record came from (`topic[partition]@offset`, `file:line`).
        raw: The original record, whole.
    """

    error: str
    source: str
    raw: bytes

    def to_json(self) -> dict[str, Any]:
        """The contract's `dead_letter` output record, `raw` cut to `RAW_SHOWN_BYTES`."""
        raw = self.raw
        truncated = len(raw) > RAW_SHOWN_BYTES
        shown = raw[:RAW_SHOWN_BYTES] if truncated else raw
        try:
            # A cut may fall inside a character: keep the text before it.
            text = _utf8_prefix(shown) if truncated else shown.decode("utf-8")
            encoding = "utf-8"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(shown).decode("ascii"), "base64"
        out: dict[str, Any] = {
            "type": DEAD_LETTER_TYPE,
            "error": self.error,
            "source": self.source,
            "raw": text,
            "raw_encoding": encoding,
        }
        if truncated:
            out["raw_truncated"] = True
            out["raw_bytes"] = len(raw)
        return out


Record = Telemetry | Position | DeadLetter

_DECODER: Final[msgspec.json.Decoder[Telemetry | Position]] = msgspec.json.Decoder(
    Telemetry | Position
)
_REFUSED: Final = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)
_FAULT: Final = "record: unreadable (a fault in the parser; please report it with this record)"

# Timestamps found valid, remembered: readings of one second share theirs. Time moves
# on, so the table starts afresh when full.
_event_times: dict[str, int] = {}
_TIMES_MAX: Final = 100_000


def parse(raw: bytes, source: str) -> Record:
    """Parse one input record; anything off-contract becomes a `DeadLetter`.

    Written for speed, since it runs for every record: the checks the decoder cannot
    make follow in the order `flows.rejects.explain` makes them, so that both paths
    give a record the same reason.

    Args:
        raw: The record, as read; kept (not copied) as the record's `raw`.
        source: Where it came from; a dead letter's `source` and a record's `label`.
    """
    if len(raw) > MAX_RECORD_BYTES:
        return _explained(raw, source)
    try:
        record = _DECODER.decode(raw)
    except _REFUSED:
        return _explained(raw, source)
    # ASCII is UTF-8, and an object with no other bracket in it nests one level.
    if not raw.isascii() or 0x5B in raw or 0x7B in raw[1:]:
        error = shape_error(raw)
        if error is not None:
            return DeadLetter(error, source, raw)
    if type(record) is Telemetry:
        if record.container_id not in VALID_CONTAINER_IDS:
            error = container_id_error(record.container_id)
            if error is not None:
                return DeadLetter(error, source, raw)
        if record.door_open is None or record.defrost is None:  # null counts as absent
            record.door_open = record.door_open is True
            record.defrost = record.defrost is True
    if record.vessel_id not in VALID_VESSEL_IDS:
        error = vessel_id_error(record.vessel_id)
        if error is not None:
            return DeadLetter(error, source, raw)
    text: Any = record.ts  # the RFC 3339 text until now
    ts = _event_times.get(text)
    if ts is None:
        try:
            ts = event_time(text)
        except ValueError as exc:
            return DeadLetter(str(exc), source, raw)
        if len(_event_times) >= _TIMES_MAX:
            _event_times.clear()
        _event_times[text] = ts
    record.ts = ts
    record.raw = raw
    record.label = source
    record.number = ""
    return record


def _explained(raw: bytes, source: str) -> Record:
    try:
        result = explain(raw)
    except Exception:  # a fault of ours must not stop the flow, nor every resume after it
        return DeadLetter(_FAULT, source, raw)
    if isinstance(result, str):
        return DeadLetter(result, source, raw)
    record_type, fields = result
    if record_type == TELEMETRY:
        return Telemetry(**fields, raw=raw, label=source)
    return Position(**fields, raw=raw, label=source)


def _utf8_prefix(data: bytes) -> str:
    """`data` as text, less a character cut off at its end; raises if it is not UTF-8."""
    return codecs.getincrementaldecoder("utf-8")().decode(data, final=False)
