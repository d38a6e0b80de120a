"""Input parsing, pure: typed records from raw bytes, validated against the event contract.

Parsing never raises: every input line becomes a `Telemetry`, a `Position` or a
`DeadLetter` carrying the reason and the original bytes. No Bytewax import here.
"""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Final

import orjson

from flows.contract import DEAD_LETTER_TYPE, POSITION, TELEMETRY

US_PER_S: Final = 1_000_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

# RFC 3339 date-time with a mandatory offset; `datetime.fromisoformat` alone also
# accepts dates without a time, basic formats and naive times, which the contract forbids.
_RFC3339: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})\Z"
)
_VESSEL_ID: Final = re.compile(r"[A-Za-z0-9._-]{1,64}\Z")
_CONTAINER_ID: Final = re.compile(r"[A-Z]{3}[UJZ]\d{7}\Z")

# ISO 6346 letter values: A=10 upwards, skipping multiples of 11.
_LETTER_VALUES: Final[dict[str, int]] = {}
_value = 10
for _letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
    if _value % 11 == 0:
        _value += 1
    _LETTER_VALUES[_letter] = _value
    _value += 1


class InvalidRecordError(ValueError):
    """A record breaks the contract; the message is the dead-letter reason."""


# Records are slotted but not frozen: a frozen dataclass's __init__ costs about five
# times as much, and readings are built hundreds of thousands of times a second.
# Treat them as values all the same.
@dataclass(slots=True)
class Telemetry:
    """One reading of one refrigerated container (`reefer.telemetry`)."""

    container_id: str
    vessel_id: str
    ts: int  # event time, microseconds since the Unix epoch (UTC)
    setpoint_c: float
    temp_c: float
    power_kw: float
    return_c: float | None
    ambient_c: float | None
    humidity_pct: float | None
    co2_pct: float | None
    o2_pct: float | None
    door_open: bool
    defrost: bool
    raw: bytes  # the original JSON text, for the late output


@dataclass(slots=True)
class Position:
    """One position fix of a vessel (`vessel.position`)."""

    vessel_id: str
    ts: int
    lat: float
    lon: float
    sog_kn: float
    cog_deg: float | None
    raw: bytes


@dataclass(slots=True)
class DeadLetter:
    """A malformed input record with the reason it was rejected."""

    error: str
    source: str
    raw: bytes

    def to_json(self) -> dict[str, Any]:
        """The contract's `dead_letter` output record."""
        try:
            text, encoding = self.raw.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(self.raw).decode("ascii"), "base64"
        return {
            "type": DEAD_LETTER_TYPE,
            "error": self.error,
            "source": self.source,
            "raw": text,
            "raw_encoding": encoding,
        }


Record = Telemetry | Position | DeadLetter


def iso6346_check_digit(owner_serial: str) -> int:
    """Check digit of the first ten characters of an ISO 6346 container number."""
    total = 0
    for i, ch in enumerate(owner_serial):
        value = _LETTER_VALUES[ch] if ch.isalpha() else int(ch)
        total += value << i
    return total % 11 % 10


# Valid ids repeat on every reading; caching the verdict keeps parsing fast.
_valid_containers: set[str] = set()


def _check_container_id(value: str) -> None:
    if value in _valid_containers:
        return
    if not _CONTAINER_ID.match(value):
        raise InvalidRecordError(
            "container_id: not an ISO 6346 number (3 letters, U/J/Z, 6 digits, check digit)"
        )
    if iso6346_check_digit(value[:10]) != int(value[10]):
        raise InvalidRecordError("container_id: bad check digit")
    if len(_valid_containers) < 1_000_000:
        _valid_containers.add(value)


# Readings of one minute share "YYYY-MM-DDTHH:MM": remembering each minute's epoch value
# turns the common `…:SSZ` form into two dictionary look-ups instead of a full parse.
_minutes: dict[str, int] = {}
_SECONDS: Final = {f"{s:02d}": s * US_PER_S for s in range(60)}


def parse_ts(value: str) -> int:
    """Parse an RFC 3339 timestamp with an offset into epoch microseconds."""
    if len(value) == 20 and value[19] == "Z" and value[16] == ":":
        seconds = _SECONDS.get(value[17:19])
        if seconds is not None:
            base = _minutes.get(value[:16])
            if base is None:
                base = _parse_ts(value) - seconds
                if len(_minutes) > 100_000:
                    _minutes.clear()
                _minutes[value[:16]] = base
            return base + seconds
    return _parse_ts(value)


def _parse_ts(value: str) -> int:
    if not _RFC3339.match(value):
        raise ValueError("not RFC 3339 with an offset")
    # Python 3.11 reads at most 6 fractional digits; RFC 3339 allows more.
    text = re.sub(r"(\.\d{6})\d+", r"\1", value) if len(value) > 32 else value
    dt = datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * US_PER_S + delta.microseconds


@lru_cache(maxsize=1 << 16)  # window bounds repeat for every container
def format_ts(ts_us: int) -> str:
    """Format epoch microseconds as RFC 3339 UTC with `Z`."""
    dt = _EPOCH + timedelta(microseconds=ts_us)
    if dt.microsecond:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


_MISSING: Final = object()


def _string(obj: dict[str, Any], field: str) -> str:
    value = obj.get(field, _MISSING)
    if value is _MISSING:
        raise InvalidRecordError(f"{field}: required field missing")
    if type(value) is not str:
        raise InvalidRecordError(f"{field}: expected a string, got {_json_type(value)}")
    return value


def _number(obj: dict[str, Any], field: str, *, required: bool) -> float | None:
    value = obj.get(field, _MISSING)
    if value is _MISSING or (value is None and not required):
        if required:
            raise InvalidRecordError(f"{field}: required field missing")
        return None
    # bool is an int subclass in Python; a JSON `true` is not a number.
    if type(value) is not float and type(value) is not int:
        raise InvalidRecordError(f"{field}: expected a number, got {_json_type(value)}")
    if not math.isfinite(value):
        raise InvalidRecordError(f"{field}: non-finite number")
    return float(value)


def _boolean(obj: dict[str, Any], field: str) -> bool:
    value = obj.get(field, False)
    if value is None:
        return False
    if type(value) is not bool:
        raise InvalidRecordError(f"{field}: expected a boolean, got {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _timestamp(obj: dict[str, Any]) -> int:
    text = _string(obj, "ts")
    try:
        return parse_ts(text)
    except ValueError as exc:
        raise InvalidRecordError(f"ts: {exc}: {text!r}") from None


_valid_vessels: set[str] = set()


def _vessel_id(obj: dict[str, Any]) -> str:
    value = _string(obj, "vessel_id")
    if value in _valid_vessels:
        return value
    if not _VESSEL_ID.match(value):
        raise InvalidRecordError("vessel_id: must be 1-64 of A-Z a-z 0-9 . _ -")
    if len(_valid_vessels) < 100_000:
        _valid_vessels.add(value)
    return value


def _telemetry_fast(obj: dict[str, Any], raw: bytes) -> Telemetry | None:
    """The common, valid reading in one pass; None hands it to the exact checks.

    Written out long-hand (no loops, no helper calls): it runs for every reading.
    """
    try:
        cid, vid, ts = obj["container_id"], obj["vessel_id"], obj["ts"]
        setpoint, temp, power = obj["setpoint_c"], obj["temp_c"], obj["power_kw"]
    except KeyError:
        return None
    get = obj.get
    if (
        type(cid) is not str
        or cid not in _valid_containers
        or type(vid) is not str
        or vid not in _valid_vessels
        or type(ts) is not str
        or type(setpoint) is not float
        or type(temp) is not float
        or type(power) is not float
    ):
        return None
    ret, amb, hum = get("return_c"), get("ambient_c"), get("humidity_pct")
    co2, o2 = get("co2_pct"), get("o2_pct")
    door, defrost = get("door_open", False), get("defrost", False)
    if not (
        (ret is None or type(ret) is float)
        and (amb is None or type(amb) is float)
        and (hum is None or type(hum) is float)
        and (co2 is None or type(co2) is float)
        and (o2 is None or type(o2) is float)
        and type(door) is bool
        and type(defrost) is bool
    ):
        return None
    try:
        ts_us = parse_ts(ts)
    except ValueError:
        return None
    return Telemetry(
        cid, vid, ts_us, setpoint, temp, power, ret, amb, hum, co2, o2, door, defrost, raw
    )


def _telemetry(obj: dict[str, Any], raw: bytes) -> Telemetry:
    container_id = _string(obj, "container_id")
    _check_container_id(container_id)
    vessel_id = _vessel_id(obj)
    ts = _timestamp(obj)
    setpoint, temp, power = (
        _number(obj, f, required=True) for f in ("setpoint_c", "temp_c", "power_kw")
    )
    assert setpoint is not None and temp is not None and power is not None
    return Telemetry(
        container_id,
        vessel_id,
        ts,
        setpoint,
        temp,
        power,
        return_c=_number(obj, "return_c", required=False),
        ambient_c=_number(obj, "ambient_c", required=False),
        humidity_pct=_number(obj, "humidity_pct", required=False),
        co2_pct=_number(obj, "co2_pct", required=False),
        o2_pct=_number(obj, "o2_pct", required=False),
        door_open=_boolean(obj, "door_open"),
        defrost=_boolean(obj, "defrost"),
        raw=raw,
    )


def _position(obj: dict[str, Any], raw: bytes) -> Position:
    vessel_id = _vessel_id(obj)
    ts = _timestamp(obj)
    lat, lon, sog = (_number(obj, f, required=True) for f in ("lat", "lon", "sog_kn"))
    cog = _number(obj, "cog_deg", required=False)
    assert lat is not None and lon is not None and sog is not None
    if not -90.0 <= lat <= 90.0:
        raise InvalidRecordError(f"lat: {lat} out of range [-90, 90]")
    if not -180.0 <= lon <= 180.0:
        raise InvalidRecordError(f"lon: {lon} out of range [-180, 180]")
    if sog < 0.0:
        raise InvalidRecordError(f"sog_kn: {sog} is negative")
    return Position(vessel_id, ts, lat, lon, sog, cog, raw)


def parse(raw: bytes, source: str) -> Record:
    """Parse one input record; anything off-contract becomes a `DeadLetter`."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "infinity" not in str(exc):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return DeadLetter("not UTF-8", source, raw)
            return DeadLetter(f"not valid JSON: {exc}", source, raw)
        # orjson refuses 1e999 outright; the stdlib reads it as inf so that the
        # reason can name the field.
        return _checked(json.loads(raw), raw, source)
    # orjson never yields inf or NaN, so the fast path need not look for them.
    if type(obj) is dict and obj.get("type") == TELEMETRY:
        reading = _telemetry_fast(obj, raw)
        if reading is not None:
            return reading
    return _checked(obj, raw, source)


def _checked(obj: Any, raw: bytes, source: str) -> Record:
    """Every check, naming the first that fails; the fast path's fallback."""
    try:
        if type(obj) is not dict:
            raise InvalidRecordError(f"not a JSON object but {_json_type(obj)}")
        kind = obj.get("type")
        if kind == TELEMETRY:
            return _telemetry(obj, raw)
        if kind == POSITION:
            return _position(obj, raw)
        if kind is None:
            raise InvalidRecordError("type: required field missing")
        raise InvalidRecordError(f"type: unknown record type {str(kind)[:64]!r}")
    except InvalidRecordError as exc:
        return DeadLetter(str(exc), source, raw)
    except (ValueError, TypeError, RecursionError) as exc:  # belt and braces: never raise
        return DeadLetter(f"unreadable record: {exc}", source, raw)
