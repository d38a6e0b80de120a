"""Why a record is dead-lettered: the slow, exact reading of what the fast decoder refused.

`shape_error` checks the rules that hold whatever a record contains: its size,
UTF-8 and nesting depth. `explain` reads a record field by field in the
contract's order and gives the reason for the first rule it breaks, or the
record's fields when it breaks none (the typed decoder is stricter than JSON in a
corner or two, such as a repeated key). Reasons are sentences written here, never
an exception's text. Pure: imports only `flows.contract` and `flows.fields`.
"""

from __future__ import annotations

import math
import re
from array import array
from itertools import accumulate
from typing import Any, Final

import msgspec

from flows.contract import POSITION, TELEMETRY
from flows.fields import (
    SHOWN_CHARS,
    container_id_error,
    event_time,
    quote,
    vessel_id_error,
)

MAX_RECORD_BYTES: Final = 1 << 20
MAX_DEPTH: Final = 64

_TELEMETRY_NUMBERS: Final = ("setpoint_c", "temp_c", "power_kw")
_TELEMETRY_OPTIONAL: Final = (
    "return_c",
    "ambient_c",
    "humidity_pct",
    "co2_pct",
    "o2_pct",
    "co2_setpoint_pct",
    "o2_setpoint_pct",
)
_LISTED: Final = (
    "type", "container_id", "vessel_id", "ts", *_TELEMETRY_NUMBERS, *_TELEMETRY_OPTIONAL,
    "door_open", "defrost", "lat", "lon", "sog_kn", "cog_deg",
)  # fmt: skip
# Every field the contract lists, as its raw JSON text (empty when absent); any other
# field is skipped unread, whatever it holds.
_Listed = msgspec.defstruct("_Listed", [(n, msgspec.Raw, msgspec.Raw()) for n in _LISTED])
_LISTED_DECODER: Final = msgspec.json.Decoder(_Listed)
_SYNTAX_DECODER: Final = msgspec.json.Decoder(msgspec.Raw)

_KINDS: Final = {
    ord('"'): "string", ord("t"): "boolean", ord("f"): "boolean", ord("n"): "null",
    ord("["): "array", ord("{"): "object",
}  # fmt: skip
_STRING: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")
_STEPS: Final = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # as signed bytes: +1, -1
_AT_BYTE: Final = re.compile(r"\(byte ([0-9]+)\)")
_HIGH: Final = rb"\\u[dD][89abAB][0-9a-fA-F]{2}"
_LOW: Final = rb"\\u[dD][c-fC-F][0-9a-fA-F]{2}"
_LONE_SURROGATE: Final = re.compile(_HIGH + rb"(?!" + _LOW + rb")|(?<!" + _HIGH + rb")" + _LOW)
_JSON_SYNTAX: Final = (  # the decoder's complaint -> ours
    ("invalid character", "unexpected character"),
    ("invalid number", "malformed number"),
    ("trailing comma", "trailing comma"),
    ("escape", "bad escape sequence in a string"),
)


class _RejectedError(Exception):
    """A record breaks a rule; the message is the reason."""


def shape_error(raw: bytes) -> str | None:
    """The reason a record is refused whatever it holds (size, UTF-8, depth), or None."""
    if len(raw) > MAX_RECORD_BYTES:
        return f"record: larger than 1 MiB ({len(raw)} bytes)"
    if not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return f"not UTF-8 (invalid byte 0x{raw[exc.start]:02x} at offset {exc.start})"
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _too_deep(raw):
        return f"record: nested deeper than {MAX_DEPTH} levels"
    return None


def _too_deep(raw: bytes) -> bool:
    """Whether the record nests more than `MAX_DEPTH` levels, its own object being one."""
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    if len(brackets) <= MAX_DEPTH:
        return False
    return max(accumulate(array("b", brackets.translate(_STEPS)))) > MAX_DEPTH


def explain(raw: bytes) -> str | tuple[str, dict[str, Any]]:
    """The reason `raw` is dead-lettered, or its type and fields when it is valid."""
    error = shape_error(raw)
    if error is not None:
        return error
    try:
        listed = _LISTED_DECODER.decode(raw)  # refuses only bad JSON and non-objects
    except (msgspec.MsgspecError, ValueError, RecursionError):
        return _not_an_object(raw)
    try:
        record_type = _string(listed, "type")
        if record_type == TELEMETRY:
            return TELEMETRY, _telemetry(listed)
        if record_type == POSITION:
            return POSITION, _position(listed)
        raise _RejectedError(
            f"type: unknown record type {quote(record_type)} "
            f"(expected {TELEMETRY!r} or {POSITION!r})"
        )
    except _RejectedError as exc:
        return str(exc)
    except (msgspec.MsgspecError, ValueError, RecursionError):  # never raise: the flow goes on
        return "not valid JSON (unreadable object)"


def _not_an_object(raw: bytes) -> str:
    try:
        whole = bytes(_SYNTAX_DECODER.decode(raw))
    except (msgspec.MsgspecError, ValueError, RecursionError) as exc:
        return _json_error(raw, str(exc))
    kind = _KINDS.get(whole[0], "number")
    return (
        "not valid JSON (unreadable object)"
        if kind == "object"
        else f"not a JSON object but {kind}"
    )


def _json_error(raw: bytes, complaint: str) -> str:
    if not raw.strip():
        return "not valid JSON (empty record)"
    if "truncated" in complaint:
        if _LONE_SURROGATE.search(raw):
            return "not valid JSON (a \\u escape holds half a UTF-16 surrogate pair)"
        return "not valid JSON (the text ends inside the JSON value)"
    if "trailing characters" in complaint:  # no offset: the decoder's is one byte late
        return "not valid JSON (more text after the JSON value)"
    at = _AT_BYTE.search(complaint)
    if at is None:
        return "not valid JSON"
    offset = int(at[1])
    detail = next((ours for theirs, ours in _JSON_SYNTAX if theirs in complaint), "malformed")
    if detail == "unexpected character" and offset < len(raw):
        byte = raw[offset]
        detail += f" {chr(byte)!r}" if 0x20 < byte < 0x7F else f" 0x{byte:02x}"
    return f"not valid JSON ({detail} at byte {offset})"


def _telemetry(listed: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"container_id": _string(listed, "container_id")}
    _raise_if(container_id_error(fields["container_id"]))
    fields.update(_vessel_and_time(listed))
    for name in _TELEMETRY_NUMBERS:
        fields[name] = _number(listed, name, required=True)
    for name in _TELEMETRY_OPTIONAL:
        fields[name] = _number(listed, name, required=False)
    fields["door_open"] = _flag(listed, "door_open")
    fields["defrost"] = _flag(listed, "defrost")
    return fields


def _position(listed: Any) -> dict[str, Any]:
    fields = _vessel_and_time(listed)
    for name, low, high in (("lat", -90.0, 90.0), ("lon", -180.0, 180.0)):
        value = fields[name] = _number(listed, name, required=True)
        if not low <= value <= high:
            shown = _excerpt(_text(listed, name))
            raise _RejectedError(f"{name}: {shown} out of range [{low:.0f}, {high:.0f}]")
    fields["sog_kn"] = _number(listed, "sog_kn", required=True)
    if fields["sog_kn"] < 0.0:
        raise _RejectedError(f"sog_kn: {_excerpt(_text(listed, 'sog_kn'))} is negative")
    fields["cog_deg"] = _number(listed, "cog_deg", required=False)
    return fields


def _vessel_and_time(listed: Any) -> dict[str, Any]:
    vessel_id = _string(listed, "vessel_id")
    _raise_if(vessel_id_error(vessel_id))
    try:
        ts = event_time(_string(listed, "ts"))
    except ValueError as exc:
        raise _RejectedError(str(exc)) from None
    return {"vessel_id": vessel_id, "ts": ts}


def _raise_if(error: str | None) -> None:
    if error is not None:
        raise _RejectedError(error)


def _text(listed: Any, name: str) -> bytes:
    return bytes(getattr(listed, name))


def _string(listed: Any, name: str) -> str:
    text = _text(listed, name)
    if not text:
        raise _RejectedError(f"{name}: required field missing")
    if text[0] != ord('"'):
        raise _RejectedError(f"{name}: expected a string, {_got(text)}")
    return msgspec.json.decode(text, type=str)


def _number(listed: Any, name: str, *, required: bool) -> Any:
    text = _text(listed, name)
    if not text or (text == b"null" and not required):
        if required:
            raise _RejectedError(f"{name}: required field missing")
        return None
    if text[0] in _KINDS:
        raise _RejectedError(f"{name}: expected a number, {_got(text)}")
    value = float(text)  # a JSON number is also a Python float literal
    if not math.isfinite(value):
        raise _RejectedError(
            f"{name}: non-finite number: {_excerpt(text)} does not fit a 64-bit float"
        )
    return value


def _flag(listed: Any, name: str) -> bool:
    text = _text(listed, name)
    if text in (b"", b"null", b"false"):
        return False
    if text == b"true":
        return True
    raise _RejectedError(f"{name}: expected a boolean, {_got(text)}")


def _got(text: bytes) -> str:
    """`got <JSON type> <value>` for a value of the wrong JSON type."""
    kind = _KINDS.get(text[0], "number")
    if kind == "null":
        return "got null"
    if kind == "string":
        return f"got string {quote(msgspec.json.decode(text, type=str))}"
    return f"got {kind} {_excerpt(text)}"


def _excerpt(text: bytes) -> str:
    """A JSON value's own text, cut to `SHOWN_CHARS`."""
    shown = text.decode("utf-8", "replace")
    return shown if len(shown) <= SHOWN_CHARS else shown[:SHOWN_CHARS] + "…"
