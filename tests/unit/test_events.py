"""Contract parsing: valid records become typed values, everything else a dead letter."""

from __future__ import annotations

import base64
import json
import random

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
    with_check_digit,
)
from flows.rejects import explain

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
RANGE = "[2000-01-01T00:00:00Z, 2100-01-01T00:00:00Z)"
MIB = 1024 * 1024
KIB_64 = 64 * 1024


def raw(obj: dict[str, object], **changes: object) -> bytes:
    merged = {**obj, **changes}
    return orjson.dumps({k: v for k, v in merged.items() if v is not _DROP})


def spliced(obj: dict[str, object], field: str, json_text: bytes) -> bytes:
    """`obj` with `field` set to a JSON text orjson cannot write (1e999, huge integers)."""
    return raw(obj, **{field: "@@"}).replace(b'"@@"', json_text)


_DROP = object()


def dead(line: bytes) -> DeadLetter:
    record = parse(line, "test:1")
    assert isinstance(record, DeadLetter), record
    return record


def reading(line: bytes) -> Telemetry:
    record = parse(line, "test:1")
    assert isinstance(record, Telemetry), record
    return record


def test_contract_examples_parse() -> None:
    r = parse(raw(READING), "t:1")
    assert isinstance(r, Telemetry)
    assert (r.container_id, r.temp_c, r.power_kw, r.door_open) == ("MSKU1234565", -18.3, 2.7, False)
    assert r.ts == 1_795_694_400_000_000 and format_ts(r.ts) == "2026-11-26T12:00:00Z"
    assert r.raw == raw(READING) and r.label == "t:1"
    p = parse(raw(FIX), "t:2")
    assert isinstance(p, Position) and (p.lat, p.lon, p.sog_kn) == (51.95, 4.05, 14.2)
    assert p.cog_deg == 231.0 and p.ts == r.ts


def test_raw_is_the_input_object_itself() -> None:
    line = raw(READING)
    assert reading(line).raw is line


def test_optional_fields_default_and_unknown_fields_are_ignored() -> None:
    minimal = {
        k: READING[k]
        for k in ("type", "container_id", "vessel_id", "ts", "setpoint_c", "temp_c", "power_kw")
    }
    r = reading(raw(minimal, firmware="2.1", extra={"x": 1}))
    assert r.door_open is False and r.defrost is False and r.humidity_pct is None
    assert r.co2_setpoint_pct is None and r.o2_setpoint_pct is None


def test_null_optional_fields_count_as_absent() -> None:
    nulls = dict.fromkeys(("return_c", "co2_pct", "co2_setpoint_pct", "door_open", "defrost"))
    r = reading(raw(READING, **nulls))
    assert (r.return_c, r.co2_pct, r.co2_setpoint_pct) == (None, None, None)
    assert r.door_open is False and r.defrost is False
    p = parse(raw(FIX, cog_deg=None), "t:1")
    assert isinstance(p, Position) and p.cog_deg is None


def test_controlled_atmosphere_setpoints_are_read() -> None:
    r = reading(raw(READING, co2_setpoint_pct=5, o2_setpoint_pct=3.5))
    assert (r.co2_setpoint_pct, r.o2_setpoint_pct) == (5.0, 3.5)
    assert dead(raw(READING, o2_setpoint_pct="3")).error == (
        "o2_setpoint_pct: expected a number, got string '3'"
    )


def test_fields_named_like_record_attributes_are_ignored_too() -> None:
    line = raw(READING, raw=[1, 2], label={"a": 1}, number="x")
    r = reading(line)
    assert (r.raw, r.label, r.number) == (line, "test:1", "")


def test_offsets_are_converted_to_utc() -> None:
    assert parse_ts("2026-11-26T13:00:00+01:00") == parse_ts("2026-11-26T12:00:00Z")
    assert format_ts(parse_ts("2026-11-26T12:00:00.250-00:30")) == "2026-11-26T12:30:00.250000Z"
    assert parse_ts("2026-11-26T23:59:00+23:59") == parse_ts("2026-11-26T00:00:00Z")


def test_timestamp_forms_and_fraction_truncation() -> None:
    expected = 1_795_694_400_000_000  # 2026-11-26T12:00:00Z
    for text in ("2026-11-26t12:00:00z", "2026-11-26 12:00:00Z", "2026-11-26T12:00:00.000Z"):
        assert parse_ts(text) == expected
    assert parse_ts("2026-11-26T12:00:00.123456789Z") == expected + 123_456  # truncated
    assert parse_ts("2026-11-26T12:00:00.9999999Z") == expected + 999_999
    assert parse_ts("2028-02-29T00:00:00Z") == 1_835_395_200_000_000  # a leap day
    # The minute cache gives what a full parse gives, second after second.
    assert parse_ts("2026-11-26T12:00:59Z") - parse_ts("2026-11-26T12:00:01Z") == 58_000_000


@pytest.mark.parametrize(
    ("ts", "micros"),
    [
        ("2000-01-01T00:00:00Z", 946_684_800_000_000),
        ("2099-12-31T23:59:59Z", 4_102_444_799_000_000),
        ("2099-12-31T23:59:59.999999999Z", 4_102_444_799_999_999),
        ("1999-12-31T23:30:00-01:00", 946_686_600_000_000),  # 2000-01-01T00:30:00Z
    ],
)
def test_ts_at_the_edges_of_the_range_is_valid(ts: str, micros: int) -> None:
    assert reading(raw(READING, ts=ts)).ts == micros


@pytest.mark.parametrize(
    "ts",
    [
        "1999-12-31T23:59:59Z",
        "2100-01-01T00:00:00Z",
        "2000-01-01T00:30:00+01:00",  # 1999-12-31T23:30:00Z
        "1970-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "0000-01-01T00:00:00Z",
    ],
)
def test_ts_outside_the_range_is_dead(ts: str) -> None:
    assert dead(raw(READING, ts=ts)).error == f"ts: {ts!r} is outside {RANGE}"
    assert dead(raw(FIX, ts=ts)).error == f"ts: {ts!r} is outside {RANGE}"


def test_format_ts_covers_the_whole_range() -> None:
    assert format_ts(946_684_800_000_000) == "2000-01-01T00:00:00Z"
    assert format_ts(4_102_444_799_999_999) == "2099-12-31T23:59:59.999999Z"


def test_iso6346_check_digit_of_known_numbers() -> None:
    # Published examples: CSQU3054383 and MSKU1234565 (contract).
    assert iso6346_check_digit("CSQU305438") == 3
    assert iso6346_check_digit("MSKU123456") == 5
    assert with_check_digit("CSQU305438") == "CSQU3054383"


SHAPE = (
    "not RFC 3339 with an offset "
    "(YYYY-MM-DDTHH:MM:SS, up to 9 fractional digits, then Z or +HH:MM or -HH:MM)"
)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"not json at all", "not valid JSON (unexpected character 'o' at byte 1)"),
        (b"", "not valid JSON (empty record)"),
        (b'{"type": "reefer.telemetry"', "not valid JSON (the text ends inside the JSON value)"),
        (b'{"a": 1} x', "not valid JSON (more text after the JSON value)"),
        (b'{"a": 01}', "not valid JSON (malformed number at byte 7)"),
        (b'{"a": "\\q"}', "not valid JSON (bad escape sequence in a string at byte 8)"),
        (
            b'{"type": "\\ud800"}',
            "not valid JSON (a \\u escape holds half a UTF-16 surrogate pair)",
        ),
        (b"[1, 2, 3]", "not a JSON object but array"),
        (b"42", "not a JSON object but number"),
        (raw(READING, type="reefer.telemetry.v2"), "type: unknown record type"),
        (raw(READING, type=_DROP), "type: required field missing"),
        (raw(READING, type=7), "type: expected a string, got number 7"),
        (raw(READING, temp_c=_DROP), "temp_c: required field missing"),
        (raw(READING, temp_c=True), "temp_c: expected a number, got boolean true"),
        (raw(READING, temp_c="-18.0"), "temp_c: expected a number, got string '-18.0'"),
        (raw(READING, temp_c=None), "temp_c: expected a number, got null"),
        (
            spliced(READING, "temp_c", b"1e999"),
            "temp_c: non-finite number: 1e999 does not fit a 64-bit float",
        ),
        (
            spliced(READING, "return_c", b"-1e999"),
            "return_c: non-finite number: -1e999 does not fit a 64-bit float",
        ),
        (raw(READING, ts="2026-11-26T12:00:00"), f"ts: '2026-11-26T12:00:00' is {SHAPE}"),
        (raw(READING, ts="2026-11-26"), f"ts: '2026-11-26' is {SHAPE}"),
        (
            raw(READING, ts="2026-13-26T12:00:00Z"),
            "ts: '2026-13-26T12:00:00Z' is not a valid date: month 13 is not in 1..12",
        ),
        (
            raw(READING, ts="2026-02-29T12:00:00Z"),
            "ts: '2026-02-29T12:00:00Z' is not a valid date: 2026-02 has no day 29",
        ),
        (
            raw(READING, ts="2026-11-26T24:00:00Z"),
            "ts: '2026-11-26T24:00:00Z' is not a valid time of day: 24:00:00 "
            "(hours 00-23, minutes and seconds 00-59)",
        ),
        (
            raw(READING, ts="2026-11-26T12:00:00+24:00"),
            "ts: '2026-11-26T12:00:00+24:00' is not an RFC 3339 time with an offset "
            "between -23:59 and +23:59",
        ),
        (
            raw(READING, ts="2026-11-26T12:00:00.1234567890Z"),
            f"ts: '2026-11-26T12:00:00.1234567890Z' is {SHAPE}",
        ),
        (raw(READING, ts=1764158400), "ts: expected a string, got number 1764158400"),
        (
            raw(READING, container_id="MSKU1234566"),
            "container_id: bad check digit: 'MSKU1234566' should end in 5",
        ),
        (
            raw(READING, container_id="MSKX1234565"),
            "container_id: 'MSKX1234565' is not an ISO 6346 number "
            "(3 letters, category U, J or Z, 6 digits, check digit)",
        ),
        (
            raw(READING, vessel_id="IMO 9778791"),
            "vessel_id: 'IMO 9778791' is not 1-64 of A-Z a-z 0-9 . _ -",
        ),
        (raw(READING, vessel_id=""), "vessel_id: '' is not 1-64 of A-Z a-z 0-9 . _ -"),
        (raw(READING, door_open="yes"), "door_open: expected a boolean, got string 'yes'"),
        (raw(READING, defrost=0), "defrost: expected a boolean, got number 0"),
        (raw(READING, humidity_pct=[1]), "humidity_pct: expected a number, got array [1]"),
        (raw(FIX, lat=95.0), "lat: 95.0 out of range [-90, 90]"),
        (raw(FIX, lat=-90.5), "lat: -90.5 out of range [-90, 90]"),
        (raw(FIX, lon=-180.5), "lon: -180.5 out of range [-180, 180]"),
        (raw(FIX, sog_kn=-0.1), "sog_kn: -0.1 is negative"),
        (raw(FIX, sog_kn=_DROP), "sog_kn: required field missing"),
        (raw(FIX, cog_deg=False), "cog_deg: expected a number, got boolean false"),
    ],
)
def test_malformed_records_become_dead_letters_with_reason(line: bytes, reason: str) -> None:
    letter = dead(line)
    assert letter.error.startswith(reason)
    out = letter.to_json()
    assert out["raw"] == line.decode() and out["raw_encoding"] == "utf-8"
    assert out["source"] == "test:1" and out["type"] == "dead_letter"
    assert "raw_truncated" not in out


def test_the_first_broken_rule_in_contract_order_is_named() -> None:
    line = raw(READING, container_id="MSKU1234566", temp_c=True, ts="bad")
    assert dead(line).error.startswith("container_id: bad check digit")
    line = raw(READING, temp_c=True, ts="bad")
    assert dead(line).error.startswith("ts: 'bad' is not RFC 3339")


def test_long_values_are_cut_short_in_reasons() -> None:
    error = dead(raw(READING, vessel_id="V" * 10_000)).error
    assert error == f"vessel_id: '{'V' * 64}…' is not 1-64 of A-Z a-z 0-9 . _ -"
    assert len(dead(raw(READING, temp_c="x" * 10_000)).error) < 120


def test_numbers_too_large_for_a_float_are_dead_only_in_listed_fields() -> None:
    too_big = b"2" + b"0" * 308  # 309 digits, 2e308: beyond the largest float
    assert dead(spliced(READING, "temp_c", too_big)).error == (
        f"temp_c: non-finite number: {'2' + '0' * 63}… does not fit a 64-bit float"
    )
    largest = b"1" + b"0" * 308  # 309 digits, 1e308: fits
    assert reading(spliced(READING, "temp_c", largest)).temp_c == 1e308
    assert reading(spliced(READING, "setpoint_c", b"-18")).setpoint_c == -18.0
    for text in (too_big, b"9" * 400, b"1e999", b"-1e999", b"1" + b"0" * 5000):
        assert reading(spliced(READING, "firmware_build", text)).temp_c == -18.3


def test_nesting_deeper_than_64_levels_is_dead() -> None:
    def nested(levels: int) -> bytes:
        """A valid reading nesting `levels` levels: its own object, then arrays."""
        inner = b"[" * (levels - 1) + b"]" * (levels - 1)
        return raw(READING)[:-1] + b',"extra":' + inner + b"}"

    assert reading(nested(64)).temp_c == -18.3
    assert dead(nested(65)).error == "record: nested deeper than 64 levels"
    assert dead(nested(200_000)).error == "record: nested deeper than 64 levels"
    assert dead(b"[" * 100_000).error == "record: nested deeper than 64 levels"
    # Whatever it holds: the depth rule comes before the listed fields' types.
    assert dead(raw(READING, temp_c=[[[[]]]])).error.startswith("temp_c: expected a number")
    deep_temp = raw(READING, temp_c="@@").replace(b'"@@"', b"[" * 70 + b"]" * 70)
    assert dead(deep_temp).error == "record: nested deeper than 64 levels"
    # Brackets inside strings are text, not nesting.
    assert reading(raw(READING, note="[{" * 1000)).temp_c == -18.3


def test_records_larger_than_1_mib_are_dead() -> None:
    def padded(size: int) -> bytes:
        head = raw(READING)[:-1] + b',"pad":"'
        return head + b"x" * (size - len(head) - 2) + b'"}'

    assert len(padded(MIB)) == MIB and reading(padded(MIB)).temp_c == -18.3
    letter = dead(padded(MIB + 1))
    assert letter.error == "record: larger than 1 MiB (1048577 bytes)"
    assert len(letter.raw) == MIB + 1  # the record itself is kept whole


def test_non_utf8_is_dead_lettered_as_base64() -> None:
    line = b'{"type": "reefer.telemetry", "x": "\xff\xfe"}'
    letter = dead(line)
    assert letter.error == "not UTF-8 (invalid byte 0xff at offset 35)"
    out = letter.to_json()
    assert out["raw_encoding"] == "base64" and base64.b64decode(out["raw"]) == line


def test_non_utf8_in_an_unknown_field_of_a_valid_reading_is_dead() -> None:
    head = raw(READING)[:-1] + b',"note":"'
    line = head + b'\xc3("}'  # c3 starts a 2-byte character, "(" cannot continue it
    assert dead(line).error == f"not UTF-8 (invalid byte 0xc3 at offset {len(head)})"
    assert reading(raw(READING, note="caf\u00e9 \u2603")).temp_c == -18.3


def test_dead_letter_raw_of_64_kib_is_whole() -> None:
    out = dead(b"x" * KIB_64).to_json()
    assert out["raw"] == "x" * KIB_64 and out["raw_encoding"] == "utf-8"
    assert "raw_truncated" not in out and "raw_bytes" not in out


def test_dead_letter_raw_longer_than_64_kib_is_cut() -> None:
    out = dead(b"x" * (KIB_64 + 1)).to_json()
    assert out["raw"] == "x" * KIB_64 and out["raw_encoding"] == "utf-8"
    assert out["raw_truncated"] is True and out["raw_bytes"] == KIB_64 + 1


def test_a_cut_inside_a_character_keeps_the_text_before_it() -> None:
    line = b"x" * (KIB_64 - 1) + "\u00e9".encode() + b"y"  # é is 2 bytes: c3 a9
    out = dead(line).to_json()
    assert out["raw"] == "x" * (KIB_64 - 1) and out["raw_encoding"] == "utf-8"
    assert out["raw_bytes"] == KIB_64 + 2


def test_a_long_non_utf8_record_is_cut_then_base64() -> None:
    out = dead(b"\xff" * 100_000).to_json()
    assert out["raw_encoding"] == "base64"
    assert base64.b64decode(out["raw"]) == b"\xff" * KIB_64
    assert out["raw_truncated"] is True and out["raw_bytes"] == 100_000


def test_boundary_values_are_valid() -> None:
    assert isinstance(parse(raw(FIX, lat=-90, lon=180, sog_kn=0), "t:1"), Position)
    assert isinstance(parse(raw(FIX, lat=90, lon=-180, sog_kn=-0.0), "t:1"), Position)
    assert isinstance(parse(raw(READING, vessel_id="a.b_c-9" * 9 + "x"), "t:1"), Telemetry)
    assert isinstance(parse(b" \t" + raw(READING) + b"\n", "t:1"), Telemetry)


# -- never raises ------------------------------------------------------------------

_HOSTILE_VALUES: list[bytes] = [
    b"null", b"true", b"false", b"0", b"-0", b"1e999", b"-1e999", b"9" * 400, b"1e-999",
    b'""', b'"\\u0000"', b'"\\ud83d\\ude00"', b'"\\ud800"', b"[]", b"{}", b"[" * 70 + b"]" * 70,
    b'{"a":[1,{"b":null}]}', b'"' + b"x" * 200 + b'"', b"\xff", b"NaN", b"Infinity", b"01", b"",
    b'"2026-11-26T12:00:00Z"', b'"MSKU1234565"', b"1.7976931348623159e308", b"123456789" * 40,
]  # fmt: skip
_JSON_ALPHABET = b'{}[]":,0123456789.eE+-truefalsn \\u'
_FIELDS = [*READING, *FIX, "co2_setpoint_pct", "o2_setpoint_pct", "raw", "label", "unknown"]


def _hostile(rng: random.Random) -> bytes:
    roll = rng.random()
    base = raw(READING if rng.random() < 0.7 else FIX)
    if roll < 0.3:  # a listed or unknown field holding something strange
        return spliced(json.loads(base), rng.choice(_FIELDS), rng.choice(_HOSTILE_VALUES))
    if roll < 0.5:  # a few bytes flipped
        data = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if roll < 0.6:  # cut short
        return base[: rng.randrange(len(base))]
    if roll < 0.8:  # random bytes, drawn from JSON's alphabet or from anything
        alphabet = _JSON_ALPHABET if rng.random() < 0.5 else bytes(range(256))
        return bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))
    return json.dumps(_random_json(rng, 0)).encode()  # any JSON value at all


def _random_json(rng: random.Random, depth: int) -> object:
    kind = rng.randrange(8 if depth < 70 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice([0, -1, 10 ** rng.randint(1, 400), rng.uniform(-1e308, 1e308)])
    if kind == 3:
        return "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randint(0, 20)))
    if kind == 4:
        return rng.choice(["reefer.telemetry", "vessel.position", "2026-11-26T12:00:00Z"])
    if kind == 5:
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 2))]
    keys = [*_FIELDS, "type"]
    obj = {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 6))}
    if depth == 0 and rng.random() < 0.5:
        return {**READING, **obj}
    return obj


def test_hostile_input_never_raises_and_both_paths_agree() -> None:
    rng = random.Random(20261126)
    kinds: set[str] = set()
    for _ in range(4000):
        line = _hostile(rng)
        record = parse(line, "fuzz:1")
        kinds.add(type(record).__name__)
        slow = explain(line)
        if isinstance(record, DeadLetter):
            assert slow == record.error, line
            assert orjson.dumps(record.to_json())  # a dead letter always serialises
        else:
            assert not isinstance(slow, str), (line, slow)
            assert slow[1] == {k: getattr(record, k) for k in slow[1]}, line
    assert kinds == {"Telemetry", "Position", "DeadLetter"}
