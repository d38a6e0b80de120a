"""Data behind the vessel's clock: silences retracted, windows revised whole, vessel changes."""

from __future__ import annotations

from flows.config import DEFAULT_THRESHOLDS
from flows.contract import LATE
from flows.rules.detector import Detector
from tests.support.builders import BOX, OTHER, at, detect, fix, reading, records

IMO_B = "IMO9999999"


def test_a_reading_dated_before_the_silence_opened_retracts_it() -> None:
    lines = [reading(0), reading(0, container_id=OTHER), reading(40, container_id=OTHER)]
    out, _ = detect([*lines, reading(20)])
    silent = [
        (a["state"], a["started_at"], a["opened_at"], a["closed_at"])
        for a in out["alerts"]
        if a["container_id"] == BOX  # OTHER's own 40-minute gap is a silence too
    ]
    assert silent == [("open", at(0), at(30), None), ("retracted", at(0), at(30), at(20))]
    assert out["late"] == []


def test_a_reading_after_the_silence_opened_closes_it() -> None:
    lines = [reading(0), reading(0, container_id=OTHER), reading(40, container_id=OTHER)]
    out, _ = detect([*lines, reading(35)])
    assert [(a["state"], a["closed_at"]) for a in out["alerts"] if a["container_id"] == BOX] == [
        ("open", None),
        ("closed", at(35)),
    ]


def test_a_window_that_gets_more_readings_after_it_was_emitted_is_revised_whole() -> None:
    lines = [
        reading(0, -18.0),
        reading(5, -17.0),
        reading(50, container_id=OTHER),  # the vessel's time passes 15 + 30: BOX's window out
        reading(10, -16.0),  # BOX's buffered backlog arrives behind the vessel's clock
        reading(55, container_id=OTHER),
        reading(12, -15.0),
        reading(60, container_id=OTHER),
    ]
    out, _ = detect(lines)
    box = [
        (w["revision"], w["count"], w["temp_min"], w["temp_max"], w["temp_mean"])
        for w in out["windows"]
        if w["container_id"] == BOX
    ]
    assert box == [
        (0, 2, -18.0, -17.0, -17.5),
        (1, 3, -18.0, -16.0, -17.0),
        (2, 4, -18.0, -15.0, -16.5),
    ]
    assert {w["window_start"] for w in out["windows"] if w["container_id"] == BOX} == {at(0)}
    assert [w["revision"] for w in out["windows"] if w["container_id"] == OTHER] == [0, 0]


def test_in_order_data_never_revises_a_window() -> None:
    lines = [reading(m, container_id=c) for m in range(0, 120, 5) for c in (BOX, OTHER)]
    out, _ = detect(lines)
    assert len(out["windows"]) == 16
    assert {w["revision"] for w in out["windows"]} == {0}


def test_a_window_spanning_a_vessel_change_takes_vessel_and_position_from_its_last_reading() -> (
    None
):
    lines = [
        fix(0, lat=10.0, lon=20.0),
        fix(0, lat=50.0, lon=60.0, vessel=IMO_B),
        reading(0),
        reading(5, vessel_id=IMO_B),  # transshipped
    ]
    out, _ = detect(lines)
    [w] = out["windows"]
    assert (w["vessel_id"], w["lat"], w["lon"], w["count"]) == (IMO_B, 50.0, 60.0, 2)


def test_the_late_output_keeps_the_records_own_text_even_with_huge_ignored_numbers() -> None:
    late = reading(5)[:-1] + b',"serial":' + b"9" * 400 + b"}"
    d = Detector(DEFAULT_THRESHOLDS)
    d.process(records([reading(10), late]))
    assert d.drain().of(LATE) == [(BOX, late[:-1] + b',"late_by_s":300}')]
