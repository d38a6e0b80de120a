"""Fleet inputs and the pieces of the two stages: topics, decoding, keys, deltas, rows."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from flows.fleet_core.deltas import MAX, SET, SUM, Delta, band, by_row, cell, hour_of, milli, net
from flows.fleet_core.entities import step
from flows.fleet_core.inputs import AlertRecord, Record, StateRow, Undecodable, WindowRecord, decode
from flows.fleet_core.names import INPUT_PATTERN, input_kind
from flows.fleet_core.tables import Row, encode
from flows.timestamps import parse_ts

ALERT: dict[str, Any] = {
    "type": "reefer.alert",
    "alert_id": "6f" * 16,
    "state": "open",
    "kind": "temperature_excursion",
    "container_id": "MSKU1234565",
    "vessel_id": "IMO9778791",
    "started_at": "2026-11-26T10:00:00Z",
    "opened_at": "2026-11-26T10:30:00Z",
    "closed_at": None,
    "lat": 12.1,
    "lon": 44.9,
    "detail": {"setpoint_c": -18.0, "peak_deviation_c": 6.2},
}
WINDOW: dict[str, Any] = {
    "type": "reefer.window",
    "container_id": "MSKU1234565",
    "vessel_id": "IMO9778791",
    "window_start": "2026-11-26T12:00:00Z",
    "window_end": "2026-11-26T12:15:00Z",
    "count": 3,
    "temp_min": -18.6,
    "temp_max": -17.9,
    "temp_mean": -18.2,
    "setpoint_c": -18.0,
    "out_of_range": 0,
    "power_kw_mean": 2.6,
    "lat": 12.1,
    "lon": 44.9,
    "revision": 0,
}
STATE: dict[str, Any] = {
    "container_id": "ONEU7060604",
    "vessel_id": "IMO9531129",
    "ts": "2026-11-21T23:57:57Z",
}
FIX: dict[str, Any] = {
    "type": "vessel.position",
    "vessel_id": "IMO9778791",
    "ts": "2026-11-26T12:00:00Z",
}
FIX |= {"lat": 51.95, "lon": 4.05, "sog_kn": 14.2}
READING: dict[str, Any] = {
    "type": "reefer.telemetry",
    "container_id": "MSKU1234565",
    "vessel_id": "V1",
}
READING |= {"ts": "2026-11-26T12:00:00Z", "setpoint_c": -18.0, "temp_c": -18.3, "power_kw": 2.7}
DEAD: dict[str, Any] = {"type": "dead_letter", "error": "x", "source": "reefer.dlq[0]@1", "raw": ""}
DEAD |= {"raw_encoding": "utf-8"}


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("IMO9778791.reefer.alerts", ("alerts", "IMO9778791")),
        ("IMO9778791.reefer.windows", ("windows", "IMO9778791")),
        ("IMO9778791.reefer.container-state", ("container-state", "IMO9778791")),
        ("IMO9778791.reefer.late", ("late", "IMO9778791")),
        ("IMO9778791.reefer.dlq", ("dlq", "IMO9778791")),
        ("IMO9778791.vessel.position", ("position", "IMO9778791")),
        ("reefer.dlq", ("dlq", "")),
        ("vessel.position", ("position", "")),
        ("shore2.IMO9778791.reefer.alerts", ("alerts", "IMO9778791")),
        ("IMO9778791.reefer.telemetry", None),
        ("IMO9778791reefer.alerts", None),
        (".reefer.alerts", None),
        ("fleet.vessels", None),
        ("reefer.alerts.x", None),
    ],
)
def test_the_topic_says_what_a_record_is(topic, expected):
    assert input_kind(topic) == expected
    assert (INPUT_PATTERN.fullmatch(topic) is not None) == (
        expected is not None and not topic.startswith(".")
    )


def test_each_kind_decodes_to_its_value_and_vessel():
    alert = decode("X.reefer.alerts", orjson.dumps(ALERT))
    assert isinstance(alert, Record) and isinstance(alert.value, AlertRecord)
    assert (alert.kind, alert.vessel_id, alert.value.detail) == (
        "alerts",
        "IMO9778791",
        {"setpoint_c": -18.0, "peak_deviation_c": 6.2},
    )
    window = decode("X.reefer.windows", orjson.dumps(WINDOW))
    assert isinstance(window, Record) and isinstance(window.value, WindowRecord)
    state = decode("X.reefer.container-state", orjson.dumps(STATE | {"more": [1]}))
    assert isinstance(state, Record) and isinstance(state.value, StateRow)
    assert state.vessel_id == "IMO9531129"
    fix = decode("X.vessel.position", orjson.dumps(FIX))
    assert isinstance(fix, Record) and fix.vessel_id == "IMO9778791"
    late = decode("X.reefer.late", orjson.dumps(FIX)[:-1] + b',"late_by_s":600}')
    assert isinstance(late, Record) and late.kind == "late"
    assert late.value.ts == parse_ts("2026-11-26T12:00:00Z")  # type: ignore[union-attr]


def test_a_dead_letter_counts_under_its_topic_prefix():
    raw = orjson.dumps(DEAD)
    for topic, vessel in [
        ("IMO9778791.reefer.dlq", "IMO9778791"),
        ("shore.IMO9531129.reefer.dlq", "IMO9531129"),
        ("reefer.dlq", "?"),
    ]:
        record = decode(topic, raw)
        assert isinstance(record, Record) and record.vessel_id == vessel


def _j(obj: object) -> bytes:
    return orjson.dumps(obj)


@pytest.mark.parametrize(
    ("topic", "raw", "reason"),
    [
        ("X.reefer.alerts", b"", "alerts: empty record"),
        ("X.reefer.alerts", b"[1]", "alerts: Expected `object`, got `array`"),
        ("X.reefer.alerts", _j(ALERT | {"state": "gone"}), "Invalid enum value 'gone'"),
        ("X.reefer.alerts", _j(ALERT | {"type": "reefer.window"}), "Invalid value"),
        ("X.reefer.alerts", _j(ALERT | {"opened_at": "noon"}), "not RFC 3339"),
        ("X.reefer.alerts", _j(ALERT | {"lat": 91}), "Expected `float` <= 90.0"),
        ("X.reefer.alerts", _j(ALERT | {"container_id": "MSKU1234566"}), "bad check digit"),
        ("X.reefer.windows", _j(WINDOW | {"out_of_range": 4}), "out_of_range is more"),
        ("X.reefer.windows", _j(WINDOW | {"count": -1}), ">= 0"),
        ("X.reefer.windows", _j(WINDOW | {"window_end": WINDOW["window_start"]}), "not after"),
        ("X.reefer.windows", _j(WINDOW | {"temp_mean": 1e300}), "<= 1000000000.0"),
        ("X.reefer.container-state", _j(STATE | {"vessel_id": "a b"}), "vessel_id: 'a b'"),
        ("X.reefer.container-state", _j({"container_id": "ONEU7060604"}), "missing"),
        ("X.vessel.position", _j(FIX | {"lat": 91}), "lat: 91 out of range"),
        ("X.vessel.position", _j(WINDOW), "unknown record type 'reefer.window'"),
        ("X.vessel.position", _j(READING), "not a vessel.position record"),
        ("X.reefer.late", b"{\xff}", "not UTF-8"),
        ("X.reefer.dlq", _j(DEAD | {"raw_encoding": "hex"}), "Invalid enum value 'hex'"),
        ("X.reefer.telemetry", b"{}", "not a topic the fleet reads"),
    ],
)
def test_a_record_that_does_not_fit_is_reported(topic, raw, reason):
    result = decode(topic, raw)
    assert isinstance(result, Undecodable)
    assert (result.topic, result.raw) == (topic, raw)
    assert reason in result.error


def test_decode_never_raises():
    rng = random.Random(3)
    samples = [orjson.dumps(x) for x in (ALERT, WINDOW, STATE, FIX, DEAD)]
    topics = [f"V.{t}" for t in ("reefer.alerts", "reefer.windows", "reefer.late")]
    topics += ["V.reefer.container-state", "V.reefer.dlq", "V.vessel.position"]
    for _ in range(3000):
        raw = bytearray(rng.choice(samples))
        for _ in range(rng.randint(1, 4)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        decode(rng.choice(topics), bytes(raw))
    decode("V.reefer.alerts", b"[" * 100_000)


def test_keys_bands_cells_and_hours():
    assert [band(s) for s in (-18.0, -10.0, -9.99, 10.0, 10.01, 13.3)] == [
        "frozen",
        "frozen",
        "chilled",
        "chilled",
        "warm",
        "warm",
    ]
    assert cell(0.0, 0.0) == (0, 0)
    assert cell(-0.0, -0.0) == (0, 0)
    assert cell(4.999999999999999, 5.0) == (0, 5)
    assert cell(-0.000001, -5.0) == (-5, -5)
    assert cell(-33.9, 18.4) == (-35, 15)
    assert cell(90.0, 180.0) == (85, 175)
    assert cell(-90.0, -180.0) == (-90, -180)
    assert hour_of(parse_ts("2026-11-26T12:59:59.999999Z")) == "2026-11-26T12:00:00Z"
    assert hour_of(parse_ts("2026-11-26T13:00:00Z")) == "2026-11-26T13:00:00Z"
    assert [milli(x) for x in (13.3, -18.2, 6.1, 0.0005)] == [13300, -18200, 6100, 0]


def test_net_adds_up_cancels_and_keeps_the_greatest_maximum():
    out = net(
        [
            Delta("t", "k", SUM, "n", "", 2),
            Delta("t", "k", SET, "s", "a", 1),
            Delta("t", "k", SUM, "n", "", -2),
            Delta("t", "k", MAX, "m", "002", 1),
            Delta("t", "k", MAX, "m", "010", 1),
            Delta("t", "j", SUM, "n", "x", 1),
        ]
    )
    assert out == [
        Delta("t", "j", SUM, "n", "x", 1),
        Delta("t", "k", MAX, "m", "010", 1),
        Delta("t", "k", SET, "s", "a", 1),
    ]
    assert [rid for rid, _ in by_row(out)] == ["t:j", "t:k"]


def test_rows_sum_in_any_order_and_are_deleted_when_empty():
    row = Row()
    row.apply(Delta("cargo", "k", SET, "containers", "A", -1))  # a retraction first
    row.apply(Delta("cargo", "k", SUM, "windows", "", 1))
    row.apply(Delta("cargo", "k", SET, "containers", "A", 1))
    assert row.distinct("containers") == 0 and not row.sets
    assert encode("cargo", "2026-11-26T12:00:00Z|warm", row) == (
        b'{"hour":"2026-11-26T12:00:00Z","band":"warm","containers":0,"windows":1,'
        b'"readings":0,"windows_in_range":0,"in_range_share":0.0,"excursion_min":0}'
    )
    row.apply(Delta("cargo", "k", SUM, "windows", "", -1))
    assert row.holds_nothing()
    assert encode("cargo", "2026-11-26T12:00:00Z|warm", row) is None


def test_open_alerts_by_kind_are_listed_in_the_contracts_order():
    row = Row()
    for kind in ("zz_new_kind", "power_unstable", "power_loss", "temperature_excursion"):
        row.apply(Delta("vessels", "V", SUM, "open_alerts", kind, 1))
    assert list(row.by_kind("open_alerts")) == [
        "temperature_excursion",
        "power_loss",
        "power_unstable",
        "zz_new_kind",
    ]


def _rec(topic: str, obj: dict[str, Any]) -> Record:
    record = decode(topic, orjson.dumps(obj))
    assert isinstance(record, Record)
    return record


def test_an_older_version_offers_its_time_but_changes_no_row():
    key = "alert|" + ALERT["alert_id"]
    retracted = ALERT | {"state": "retracted", "closed_at": "2026-11-26T10:20:00Z"}
    entity, first = step(key, None, _rec("V.reefer.alerts", retracted))
    assert [d.op for d in first] == [MAX]
    assert first[0].member == f"{parse_ts('2026-11-26T10:30:00Z'):020d}"  # opened_at
    entity, older = step(key, entity, _rec("V.reefer.alerts", ALERT))
    assert [d.op for d in older] == [MAX]  # the open record: its time, no row
    again, duplicate = step(key, entity, _rec("V.reefer.alerts", retracted))
    assert duplicate == [] and again is entity
