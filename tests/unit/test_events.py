"""Contract parsing: valid records become typed values, everything else a dead letter."""

from __future__ import annotations

import base64

import orjson
import pytest

from flows.events import (
    DeadLetter,
    Position,
    Telemetry,
    format_ts,
    iso6346_check_digit,
    parse,
    parse_ts,
)

READING = {
    "type": "reefer.telemetry",
    "container_id": "MSKU1234565",
    "vessel_id": "IMO9778791",
    "ts": "2026-11-26T12:00:00Z",
    "setpoint_c": -18.0,
    "temp_c": -18.3,
    "power_kw": 2.7,
    "return_c": -16.9,
    "ambient_c": 24.5,
    "humidity_pct": 82.0,
    "co2_pct": 0.04,
    "o2_pct": 20.9,
    "door_open": False,
    "defrost": False,
}
FIX = {
    "type": "vessel.position",
    "vessel_id": "IMO9778791",
    "ts": "2026-11-26T12:00:00Z",
    "lat": 51.95,
    "lon": 4.05,
    "sog_kn": 14.2,
    "cog_deg": 231.0,
}


def raw(obj: dict[str, object], **changes: object) -> bytes:
    merged = {**obj, **changes}
    return orjson.dumps({k: v for k, v in merged.items() if v is not _DROP})


_DROP = object()


def dead(line: bytes) -> DeadLetter:
    record = parse(line, "test:1")
    assert isinstance(record, DeadLetter), record
    return record


def test_contract_examples_parse() -> None:
    r = parse(raw(READING), "t:1")
    assert isinstance(r, Telemetry)
    assert (r.container_id, r.temp_c, r.power_kw, r.door_open) == ("MSKU1234565", -18.3, 2.7, False)
    assert format_ts(r.ts) == "2026-11-26T12:00:00Z"
    p = parse(raw(FIX), "t:2")
    assert isinstance(p, Position) and (p.lat, p.lon, p.sog_kn) == (51.95, 4.05, 14.2)


def test_optional_fields_default_and_unknown_fields_are_ignored() -> None:
    minimal = {
        k: READING[k]
        for k in ("type", "container_id", "vessel_id", "ts", "setpoint_c", "temp_c", "power_kw")
    }
    r = parse(raw(minimal, firmware="2.1", extra={"x": 1}), "t:1")
    assert isinstance(r, Telemetry)
    assert r.door_open is False and r.defrost is False and r.humidity_pct is None


def test_offsets_are_converted_to_utc() -> None:
    assert parse_ts("2026-11-26T13:00:00+01:00") == parse_ts("2026-11-26T12:00:00Z")
    assert format_ts(parse_ts("2026-11-26T12:00:00.250-00:30")) == "2026-11-26T12:30:00.250000Z"


def test_iso6346_check_digit_of_known_numbers() -> None:
    # Published examples: CSQU3054383 and MSKU1234565 (contract).
    assert iso6346_check_digit("CSQU305438") == 3
    assert iso6346_check_digit("MSKU123456") == 5


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"not json at all", "not valid JSON"),
        (b"[1, 2, 3]", "not a JSON object"),
        (raw(READING, type="reefer.telemetry.v2"), "type: unknown"),
        (raw(READING, type=_DROP), "type: required field missing"),
        (raw(READING, temp_c=_DROP), "temp_c: required field missing"),
        (raw(READING, temp_c=True), "temp_c: expected a number, got boolean"),
        (raw(READING, temp_c="-18.0"), "temp_c: expected a number, got string"),
        (raw(READING, temp_c=None), "temp_c: expected a number, got null"),
        (raw(READING).replace(b"-18.3", b"1e999"), "temp_c: non-finite number"),
        (raw(READING, ts="2026-11-26T12:00:00"), "ts: not RFC 3339 with an offset"),
        (raw(READING, ts="2026-11-26"), "ts: not RFC 3339"),
        (raw(READING, ts="2026-13-26T12:00:00Z"), "ts: month must be in 1..12"),
        (raw(READING, ts=1764158400), "ts: expected a string, got number"),
        (raw(READING, container_id="MSKU1234566"), "container_id: bad check digit"),
        (raw(READING, container_id="MSKX1234565"), "container_id: not an ISO 6346"),
        (raw(READING, vessel_id="IMO 9778791"), "vessel_id: must be 1-64"),
        (raw(READING, vessel_id="I" * 65), "vessel_id: must be 1-64"),
        (raw(READING, door_open="yes"), "door_open: expected a boolean, got string"),
        (raw(READING, humidity_pct=[1]), "humidity_pct: expected a number, got array"),
        (raw(FIX, lat=95.0), "lat: 95.0 out of range"),
        (raw(FIX, lon=-180.5), "lon: -180.5 out of range"),
        (raw(FIX, sog_kn=-0.1), "sog_kn: -0.1 is negative"),
        (raw(FIX, sog_kn=_DROP), "sog_kn: required field missing"),
    ],
)
def test_malformed_records_become_dead_letters_with_reason(line: bytes, reason: str) -> None:
    letter = dead(line)
    assert reason in letter.error
    out = letter.to_json()
    assert out["raw"] == line.decode() and out["raw_encoding"] == "utf-8"
    assert out["source"] == "test:1" and out["type"] == "dead_letter"


def test_non_utf8_is_dead_lettered_as_base64() -> None:
    line = b'{"type": "reefer.telemetry", "x": "\xff\xfe"}'
    letter = dead(line)
    assert letter.error == "not UTF-8"
    out = letter.to_json()
    assert out["raw_encoding"] == "base64" and base64.b64decode(out["raw"]) == line


def test_boundary_values_are_valid() -> None:
    assert isinstance(parse(raw(FIX, lat=-90, lon=180, sog_kn=0), "t:1"), Position)
    assert isinstance(parse(raw(READING, vessel_id="a.b_c-9" * 9 + "x"), "t:1"), Telemetry)
