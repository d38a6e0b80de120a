"""Hostile input through the real dataflow, in memory: it is dead-lettered, nothing else moves.

Each input that once stopped the flow (a number too large for a float, a year 9999, an
offset of +24:00, a record over 1 MiB, nesting 65 deep, bytes that are not UTF-8) must
give exactly the contract-v2 dead letter, and leave every other output as it is for
the stream without that line. A seeded generator then mixes a few hundred hostile
lines into a simulated voyage: the outputs must not change, and the dead-letter
output must hold exactly those lines.
"""

from __future__ import annotations

import base64
import random
import zlib
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from flows.sim import SimConfig, generate
from tests.support.builders import BOX, OTHER, at, fix, reading, window
from tests.support.memory import MemoryRun, run_in_memory

MIB = 1 << 20
KIB_64 = 64 * 1024


def _with(line: bytes, field: str, json_text: bytes) -> bytes:
    """`line` with `field` set to this literal JSON text (orjson cannot write huge numbers)."""
    obj = orjson.loads(line)
    obj[field] = "@@value@@"
    return orjson.dumps(obj).replace(b'"@@value@@"', json_text)


def _padded(line: bytes, size: int) -> bytes:
    """`line` grown to exactly `size` bytes by an unlisted string field."""
    short = _with(line, "pad", b'""')
    return _with(line, "pad", b'"' + b"x" * (size - len(short)) + b'"')


# A small voyage with an alert, windows and a late reading; the bad line goes in at BAD_AT.
BASE = [
    fix(0, sog=15.0, lat=10.0, lon=20.0),
    reading(0),
    reading(0, container_id=OTHER, power_kw=0.0),
    reading(5, container_id=OTHER, power_kw=0.0),  # second without power: power_loss opens
    reading(5, -10.0),
    reading(3),  # late by 120 s
    reading(20),
    reading(20, container_id=OTHER),  # power back: power_loss closes
]
BAD_AT = 5


BASE_WINDOWS = [
    window(BOX, 0, 2, -18.0, -10.0, -14.0, 1),  # closed by BOX's reading at 20
    window(
        OTHER, 0, 2, -18.0, -18.0, -18.0, 0, power=0.0
    ),  # closed by OTHER's reading at 20 (no power)
    window(OTHER, 15, 1, -18.0, -18.0, -18.0, 0),  # the end of input, in container order
    window(BOX, 15, 1, -18.0, -18.0, -18.0, 0),
]
BASE_LATE = [reading(3)[:-1] + b',"late_by_s":120}']


def _run(bad: list[bytes]) -> MemoryRun:
    return run_in_memory({"t": BASE[:BAD_AT] + bad + BASE[BAD_AT:]})


def _kept(run: MemoryRun) -> dict[str, list[bytes]]:
    return {name: run.records[name] for name in ("alerts", "windows", "late")}


def test_the_stream_without_a_bad_line_gives_what_the_contract_says() -> None:
    run = _run([])
    alerts = [
        (a["kind"], a["state"], a["container_id"], a["opened_at"]) for a in run.json("alerts")
    ]
    assert alerts == [("power_loss", "open", OTHER, at(5)), ("power_loss", "closed", OTHER, at(5))]
    assert run.json("alerts")[1]["closed_at"] == at(20)
    assert run.json("windows") == BASE_WINDOWS
    assert run.records["late"] == BASE_LATE
    assert run.records["dlq"] == []


NINES_309 = b"9" * 309  # about 1e309: past the largest 64-bit float
CRASHES: dict[str, tuple[bytes, str]] = {
    # name: (the line, what its error starts with)
    "temp_c of 309 digits": (_with(reading(6), "temp_c", NINES_309), "temp_c"),
    "temp_c of -400 digits": (_with(reading(6), "temp_c", b"-" + b"9" * 400), "temp_c"),
    "sog_kn of 309 digits": (_with(fix(6), "sog_kn", NINES_309), "sog_kn"),
    "humidity_pct of 309 digits": (_with(reading(6), "humidity_pct", NINES_309), "humidity_pct"),
    "ts in 9999": (reading(6, ts="9999-12-31T23:59:59Z"), "ts"),
    "ts offset +24:00": (reading(6, ts="2026-11-26T12:06:00+24:00"), "ts"),
    "ts offset -24:00": (fix(6, ts="2026-11-26T12:06:00-24:00"), "ts"),
    "ts in 2100 by its offset": (reading(6, ts="2099-12-31T23:30:00-01:00"), "ts"),
}


@pytest.mark.parametrize("name", list(CRASHES))
def test_a_line_that_once_stopped_the_flow_is_dead_lettered_and_nothing_else_changes(
    name: str,
) -> None:
    line, field = CRASHES[name]
    run = _run([line])
    [dead] = run.json("dlq")
    assert dead == {
        "type": "dead_letter",
        "error": dead["error"],
        "source": f"t:{BAD_AT + 1}",
        "raw": line.decode(),
        "raw_encoding": "utf-8",
    }
    error = dead["error"]
    assert error.startswith(f"{field}: "), error
    if field == "ts":  # the value, as sent
        assert orjson.loads(line)["ts"] in error, error
    for internal in ("Error", "Traceback", "timedelta", "int too large", "overflow", "errno"):
        assert internal not in error, error
    assert _kept(run) == _kept(_run([]))


def test_a_huge_number_in_a_field_the_contract_does_not_list_is_ignored() -> None:
    huge = b"1" * 400
    counted = _with(reading(10, -12.0), "firmware_build", huge)
    late = _with(reading(4), "firmware_build", huge)  # after 10: late by 360 s
    run = _run([counted, late])
    assert run.records["dlq"] == []
    # The reading at 10 counts in BOX's first window: (-18 - 10 - 12) / 3.
    assert run.json("windows")[0] == window(BOX, 0, 3, -18.0, -10.0, -13.333, 2)
    assert run.json("windows")[1:] == BASE_WINDOWS[1:]
    # A late record is the input's own text plus late_by_s: the 400 digits stay as sent.
    assert run.records["late"] == [
        late[:-1] + b',"late_by_s":360}',
        reading(3)[:-1] + b',"late_by_s":420}',
    ]


def test_a_record_over_1_mib_is_dead_lettered_with_the_first_64_kib_of_it() -> None:
    exactly = _padded(reading(10), MIB)
    over = _padded(reading(11), MIB + 1)
    assert (len(exactly), len(over)) == (MIB, MIB + 1)
    run = _run([exactly, over])
    [dead] = run.json("dlq")
    assert dead == {
        "type": "dead_letter",
        "error": dead["error"],
        "source": f"t:{BAD_AT + 2}",
        "raw": over[:KIB_64].decode(),
        "raw_encoding": "utf-8",
        "raw_truncated": True,
        "raw_bytes": MIB + 1,
    }
    assert "1 MiB" in dead["error"]
    # The record of exactly 1 MiB is valid: it counts in BOX's first window.
    assert [w["count"] for w in run.json("windows")] == [3, 2, 1, 1]
    assert run.records["late"] == [reading(3)[:-1] + b',"late_by_s":420}']
    assert _kept(_run([over])) == _kept(_run([]))


def test_a_record_nested_65_deep_is_dead_lettered_and_64_deep_is_not() -> None:
    # The record's own object is the first level.
    deep_64 = _with(reading(10), "extra", b"[" * 63 + b"]" * 63)
    deep_65 = _with(reading(11), "extra", b"[" * 32 + b'{"a":' * 32 + b"}" * 32 + b"]" * 32)
    run = _run([deep_64, deep_65])
    [dead] = run.json("dlq")
    assert (dead["source"], dead["raw"]) == (f"t:{BAD_AT + 2}", deep_65.decode())
    assert "64" in dead["error"] and "nested" in dead["error"]
    assert [w["count"] for w in run.json("windows")] == [3, 2, 1, 1]
    assert _kept(_run([deep_65])) == _kept(_run([]))


def test_bytes_that_are_not_utf8_are_dead_lettered_as_base64() -> None:
    line = reading(6)[:-1] + b',"note":"caf\xe9"}'  # Latin-1, in a field nobody reads
    run = _run([line])
    [dead] = run.json("dlq")
    assert dead == {
        "type": "dead_letter",
        "error": dead["error"],
        "source": f"t:{BAD_AT + 1}",
        "raw": base64.b64encode(line).decode(),
        "raw_encoding": "base64",
    }
    assert "UTF-8" in dead["error"]
    assert _kept(run) == _kept(_run([]))


# -- many hostile lines at random places in a simulated voyage -------------------------

SIM = SimConfig(
    seed=3,
    containers=30,
    hours=12.0,
    fault_rate=0.5,
    malformed_rate=0.0,
    duplicate_rate=0.01,
    late_rate=0.01,
)
_IDS_AND_TIME = dict.fromkeys(("type", "vessel_id", "ts"), "string")
TELEMETRY_FIELDS = {
    **_IDS_AND_TIME,
    "container_id": "string",
    **dict.fromkeys(("setpoint_c", "temp_c", "power_kw"), "number"),
    **dict.fromkeys(("return_c", "ambient_c", "humidity_pct", "co2_pct"), "optional"),
    **dict.fromkeys(("o2_pct", "co2_setpoint_pct", "o2_setpoint_pct"), "optional"),
    **dict.fromkeys(("door_open", "defrost"), "flag"),
}
POSITION_FIELDS = {
    **_IDS_AND_TIME,
    **dict.fromkeys(("lat", "lon", "sog_kn"), "number"),
    "cog_deg": "optional",
}
# JSON values of each type, and which of them each kind of field must refuse.
VALUES = {
    "string": [b'"x"', b'""', b'"2026-11-20T00:00:00Z"'],
    "number": [b"0", b"-1.5", b"1e3"],
    "boolean": [b"true", b"false"],
    "null": [b"null"],
    "array": [b"[]", b'["x", 1]'],
    "object": [b"{}", b'{"a": 1}'],
}
WRONG = {
    "string": ("number", "boolean", "null", "array", "object"),
    "number": ("string", "boolean", "null", "array", "object"),
    "optional": ("string", "boolean", "array", "object"),  # null counts as absent
    "flag": ("string", "number", "array", "object"),
}
BAD_CONTAINER_IDS = ["MSKU1234566", "msku1234565", "MSKX1234565", "MSKU123456", "", "MSKU12345655"]
BAD_VESSEL_IDS = ["", "IMO 9778791", "I" * 65, "IMO9778791!", "IMOé"]
BAD_OFFSETS = ["+24:00", "-24:00", "+23:60", "", "+0100", " Z"]
OUT_OF_RANGE = {"lat": (90.0, 1000.0), "lon": (180.0, 1000.0)}


def _bad_year(rng: random.Random) -> str:
    """A 4-digit year outside [2000, 2100) (2099 is valid data: held, not refused)."""
    pick = rng.random()
    if pick < 0.3:
        return rng.choice(["1970", "1999", "2100", "9999", "0000"])
    if pick < 0.6:
        return f"{rng.randrange(0, 2000):04d}"
    return f"{rng.randrange(2100, 10000):04d}"


def _hostile_from(rng: random.Random, line: bytes) -> bytes:
    """One line that breaks the contract, made from a valid record."""
    obj: dict[str, Any] = orjson.loads(line)
    is_reading = obj["type"] == "reefer.telemetry"
    fields = TELEMETRY_FIELDS if is_reading else POSITION_FIELDS
    way = rng.randrange(12) if rng.random() > 0.01 else 12
    if way == 12:  # over 1 MiB, whatever it holds
        return _padded(line, MIB + rng.randrange(1, 1000))
    if way == 0:  # a number too large for a 64-bit float, in a field the contract lists
        field = rng.choice([f for f, kind in fields.items() if kind in ("number", "optional")])
        huge = rng.choice(
            [b"9" * rng.randrange(309, 2000), b"1e" + str(rng.randrange(309, 99999)).encode()]
        )
        return _with(line, field, rng.choice([b"", b"-"]) + huge)
    if way == 1:  # nested deeper than 64 levels
        depth = rng.randrange(64, 300)
        opens = [rng.choice([b"[", b'{"k":']) for _ in range(depth)]
        closes = [b"]" if o == b"[" else b"}" for o in reversed(opens)]
        return _with(line, rng.choice(["extra", "temp_c", "ts"]), b"".join(opens + closes))
    if way == 2:  # not UTF-8
        cut = rng.randrange(1, len(line))
        bad = bytes([rng.choice([0x80, 0xBF, 0xC0, 0xC3, 0xE9, 0xF8, 0xFE, 0xFF])])
        return line[:cut] + bad + line[cut:]
    if way == 3:  # a year outside [2000, 2100)
        return orjson.dumps({**obj, "ts": _bad_year(rng) + obj["ts"][4:]})
    if way == 4:  # a wrong JSON type for a field of this record
        field, kind = rng.choice(list(fields.items()))
        wrong = rng.choice(WRONG["string" if field == "type" else kind])
        return _with(line, field, rng.choice(VALUES[wrong]))
    if way == 5:  # a required field missing
        gone = rng.choice([f for f, kind in fields.items() if kind in ("string", "number")])
        return orjson.dumps({k: v for k, v in obj.items() if k != gone})
    if way == 6:  # cut off
        return line[: rng.randrange(1, len(line))]
    if way == 7:  # a bad id
        if is_reading and rng.random() < 0.6:
            return orjson.dumps({**obj, "container_id": rng.choice(BAD_CONTAINER_IDS)})
        return orjson.dumps({**obj, "vessel_id": rng.choice(BAD_VESSEL_IDS)})
    if way == 8:  # a position out of range or a speed below 0; an unknown record type
        if is_reading:
            return orjson.dumps({**obj, "type": rng.choice(["reefer.telemetry2", "", "Reefer"])})
        field = rng.choice(["lat", "lon", "sog_kn"])
        if field == "sog_kn":
            return orjson.dumps({**obj, "sog_kn": -rng.uniform(0.001, 50.0)})
        low, high = OUT_OF_RANGE[field]
        return orjson.dumps({**obj, field: rng.choice([-1, 1]) * rng.uniform(low + 1e-6, high)})
    if way == 9:  # a bad offset
        return orjson.dumps({**obj, "ts": obj["ts"].rstrip("Z") + rng.choice(BAD_OFFSETS)})
    if way == 10:  # not an object with a type
        return rng.choice([b"{}", b"[]", b"[{}]", b'"reefer"', b"42", b"null", b"true", b"{"])
    noise = [*range(0x09), *range(0x0E, 0x20), *range(0x80, 0x100)]  # no blank line, no newline
    return bytes(rng.choice(noise) for _ in range(rng.randrange(1, 40)))


def _shown(raw: bytes) -> dict[str, Any]:
    """A dead letter's fields that show the record (all but `error` and `source`)."""
    if len(raw) > KIB_64:  # only the padded ones here, which are ASCII
        return {"raw": raw[:KIB_64].decode(), "raw_encoding": "utf-8", "raw_truncated": True,
                "raw_bytes": len(raw)}  # fmt: skip
    try:
        return {"raw": raw.decode("utf-8"), "raw_encoding": "utf-8"}
    except UnicodeDecodeError:
        return {"raw": base64.b64encode(raw).decode(), "raw_encoding": "base64"}


def _partitions(lines: list[bytes]) -> dict[str, list[bytes]]:
    """Positions in one partition, readings spread over two by container (like keyed topics)."""
    parts: dict[str, list[bytes]] = {"positions": [], "telemetry-0": [], "telemetry-1": []}
    for line in lines:
        obj = orjson.loads(line)
        if obj["type"] == "vessel.position":
            parts["positions"].append(line)
        else:
            parts[f"telemetry-{zlib.crc32(obj['container_id'].encode()) % 2}"].append(line)
    parts["scenario"] = BASE  # another vessel's day, with an alert and a late reading
    return parts


def _mixed(
    valid: dict[str, list[bytes]], seed: int, count: int, make: Callable[[random.Random], bytes]
) -> tuple[dict[str, list[bytes]], dict[str, dict[str, Any]]]:
    """Hostile lines at random places, and each one's dead letter (less `error`) by source."""
    rng = random.Random(seed)
    mixed = {name: list(lines) for name, lines in valid.items()}
    inserted: dict[str, list[tuple[int, bytes]]] = {name: [] for name in valid}
    for _ in range(count):
        name = rng.choice(list(mixed))
        at_index = rng.randrange(len(mixed[name]) + 1)
        line = make(rng)
        mixed[name].insert(at_index, line)
        inserted[name] = [(i + (i >= at_index), raw) for i, raw in inserted[name]]
        inserted[name].append((at_index, line))
    expected = {
        f"{name}:{i + 1}": {"type": "dead_letter", "source": f"{name}:{i + 1}", **_shown(raw)}
        for name, lines in inserted.items()
        for i, raw in lines
    }
    return mixed, expected


@pytest.fixture(scope="module")
def voyage() -> list[bytes]:
    return list(generate(SIM))


@pytest.mark.parametrize(
    ("mix_seed", "run_seed", "workers"), [(1, None, 1), (2, 5, 1), (3, 9, 2), (4, 5, 2)]
)
def test_hundreds_of_hostile_lines_change_nothing_but_the_dead_letters(
    voyage: list[bytes], mix_seed: int, run_seed: int | None, workers: int
) -> None:
    valid = _partitions(voyage)

    def make(r: random.Random) -> bytes:
        part = r.choice(["positions", "telemetry-0", "telemetry-1"])
        return _hostile_from(r, r.choice(valid[part]))

    mixed, expected = _mixed(valid, mix_seed, 400, make)
    clean = run_in_memory(valid, seed=run_seed, workers=workers)
    hostile = run_in_memory(mixed, seed=run_seed, workers=workers)

    # The valid stream alone has something to lose: alerts, windows and late records.
    assert clean.records["alerts"] and clean.records["windows"] and clean.records["late"]
    assert clean.records["dlq"] == []
    for name in ("alerts", "windows", "late"):
        assert hostile.records[name] == clean.records[name], name
    dead = hostile.json("dlq")
    errors = [d.pop("error") for d in dead]
    assert {d["source"]: d for d in dead} == expected
    assert len(dead) == 400
    for error in errors:  # a sentence about the record, never a fault of the parser
        assert error and "fault" not in error and "Traceback" not in error, error
    assert hostile.rows() == clean.rows()
