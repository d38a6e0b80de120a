"""Each alert rule at its edges, windows, duplicates, late readings and positions."""

from __future__ import annotations

from dataclasses import replace

import orjson

from flows.config import DEFAULT_THRESHOLDS
from flows.events import parse_ts
from flows.rules.detector import Detector
from flows.rules.records import alert_id
from tests.support.builders import BOX, OTHER, VESSEL, at, fix, kinds, reading, records, rows, run

WARM = -15.9  # 2.1 above the -18.0 setpoint


# -- temperature_excursion ----------------------------------------------------------


def test_deviation_of_exactly_the_tolerance_is_in_range() -> None:
    alerts, *_ = run([reading(m, -16.0) for m in range(0, 120, 10)])
    assert alerts == []
    # Decimal 2.0 even when binary floats say 2.0000000000000018.
    alerts, *_ = run([reading(m, 15.3, setpoint_c=13.3) for m in range(0, 120, 10)])
    assert alerts == []


def test_excursion_needs_30_minutes_of_out_of_range_readings() -> None:
    alerts, *_ = run(
        [reading(0), reading(10, WARM), reading(20, WARM), reading(39, WARM), reading(45)]
    )
    assert alerts == []  # 29 minutes out of range


def test_excursion_opens_at_30_minutes_and_closes_on_first_in_range_reading() -> None:
    alerts, *_ = run(
        [
            fix(0, lat=1.0, lon=2.0),
            reading(0),
            reading(10, WARM),
            reading(25, -10.0),
            reading(40, WARM),
            reading(50, WARM),
            reading(60, -18.5),
        ]
    )
    assert kinds(alerts) == [("temperature_excursion", "open"), ("temperature_excursion", "closed")]
    opened, closed = alerts
    assert opened["started_at"] == at(10) and opened["opened_at"] == at(40)
    assert opened["closed_at"] is None and closed["closed_at"] == at(60)
    assert (
        opened["alert_id"]
        == closed["alert_id"]
        == alert_id(BOX, "temperature_excursion", parse_ts(at(10)))
    )
    assert (opened["lat"], opened["lon"]) == (1.0, 2.0)
    assert opened["detail"] == {"setpoint_c": -18.0, "peak_deviation_c": 8.0}
    assert closed["vessel_id"] == VESSEL and closed["container_id"] == BOX


def test_defrost_neither_extends_nor_interrupts_an_excursion() -> None:
    # The in-range defrost reading at 10 does not interrupt; the warm one at 30 does not
    # count, so the alert opens on the next evaluated reading.
    alerts, *_ = run(
        [
            reading(0, WARM),
            reading(10, -18.0, defrost=True),
            reading(20, WARM),
            reading(30, 5.0, defrost=True),
            reading(31, WARM),
        ]
    )
    assert [a["opened_at"] for a in alerts] == [at(31)]


def test_implausible_reading_does_not_interrupt_an_excursion_but_raises_a_fault() -> None:
    alerts, *_ = run([reading(0, WARM), reading(10, 85.0), reading(20, WARM), reading(30, WARM)])
    assert kinds(alerts) == [
        ("sensor_fault", "open"),
        ("sensor_fault", "closed"),
        ("temperature_excursion", "open"),
    ]
    assert alerts[0]["detail"] == {"reason": "temp_c 85.0 outside [-70, 70]"}
    assert alerts[2]["started_at"] == at(0)


def test_cold_excursion_keeps_sign_of_peak() -> None:
    alerts, *_ = run([reading(0, -21.0), reading(30, -24.5), reading(40, -18.0)])
    assert alerts[-1]["detail"]["peak_deviation_c"] == -6.5


# -- sensor_fault -------------------------------------------------------------------


def test_implausible_edges() -> None:
    ok = [reading(0, 70.0, setpoint_c=70.0, co2_pct=30.0, o2_pct=0.0, humidity_pct=100.0)]
    assert run(ok)[0] == []
    for field, value in (("co2_pct", 30.1), ("o2_pct", -0.1), ("humidity_pct", 100.5)):
        alerts, *_ = run([reading(0, **{field: value}), reading(10, -18.0)])
        assert kinds(alerts) == [("sensor_fault", "open"), ("sensor_fault", "closed")], field
        assert alerts[1]["closed_at"] == at(10)


# -- power_loss ---------------------------------------------------------------------


def test_power_loss_needs_two_consecutive_readings_below_0_1_kw() -> None:
    alerts, *_ = run(
        [
            reading(0, power_kw=0.0),
            reading(10, power_kw=0.1),
            reading(20, power_kw=0.09),
            reading(30),
        ]
    )
    assert alerts == []  # 0.1 counts as power
    alerts, *_ = run(
        [
            reading(0),
            reading(10, power_kw=0.0),
            reading(20, power_kw=0.05),
            reading(30, power_kw=0.0),
            reading(40, power_kw=1.0),
        ]
    )
    assert kinds(alerts) == [("power_loss", "open"), ("power_loss", "closed")]
    assert (alerts[0]["started_at"], alerts[0]["opened_at"]) == (at(10), at(20))
    assert alerts[1]["closed_at"] == at(40)


# -- sensor_silent ------------------------------------------------------------------


def _other(minute: float) -> bytes:
    return reading(minute, container_id=OTHER)


def test_silence_is_measured_by_the_vessels_event_time() -> None:
    alerts, *_ = run([reading(0), _other(10), _other(20), _other(30)])
    assert alerts == []  # exactly 30 minutes is not later than last + 30
    alerts, *_ = run(
        [fix(0, lat=3.0, lon=4.0), reading(0), _other(10), _other(30.5), _other(40), reading(50)]
    )
    assert kinds(alerts) == [("sensor_silent", "open"), ("sensor_silent", "closed")]
    opened, closed = alerts
    assert (opened["started_at"], opened["opened_at"]) == (at(0), at(30))
    assert closed["closed_at"] == at(50) and (opened["lat"], opened["lon"]) == (3.0, 4.0)


def test_a_long_gap_in_a_containers_own_readings_is_a_silence() -> None:
    alerts, *_ = run([reading(0), reading(45)])
    assert kinds(alerts) == [("sensor_silent", "open"), ("sensor_silent", "closed")]


def test_silence_on_another_vessel_does_not_count() -> None:
    alerts, *_ = run(
        [
            reading(0),
            reading(10, container_id=OTHER, vessel_id="IMO9999999"),
            reading(50, container_id=OTHER, vessel_id="IMO9999999"),
        ]
    )
    assert [a["container_id"] for a in alerts] == [OTHER, OTHER]  # OTHER's own gap only


# -- door_open_at_sea and positions -------------------------------------------------


def test_door_open_at_sea_needs_known_speed_above_2_knots() -> None:
    assert run([fix(0, sog=2.0), reading(1, door_open=True)])[0] == []  # in port / drifting
    assert run([reading(1, door_open=True)])[0] == []  # speed unknown
    alerts, *_ = run(
        [
            fix(0, sog=2.1),
            reading(1, door_open=True),
            reading(5, door_open=True),
            reading(10, door_open=False),
        ]
    )
    assert kinds(alerts) == [("door_open_at_sea", "open"), ("door_open_at_sea", "closed")]
    assert alerts[0]["detail"] == {"sog_kn": 2.1} and alerts[1]["closed_at"] == at(10)


def test_door_opened_in_port_alerts_once_the_ship_sails() -> None:
    alerts, *_ = run(
        [fix(0, sog=0.0), reading(1, door_open=True), fix(5, sog=12.0), reading(6, door_open=True)]
    )
    assert [(a["kind"], a["opened_at"]) for a in alerts] == [("door_open_at_sea", at(6))]


def test_position_in_force_is_at_most_2_hours_old() -> None:
    alerts, *_ = run([fix(0, sog=9.0), reading(120, door_open=True)])
    assert len(alerts) == 1
    alerts, *_ = run([fix(0, sog=9.0), reading(120 + 1 / 60, door_open=True)])
    assert alerts == []


def test_position_lookup_uses_fix_at_or_before_the_reading() -> None:
    alerts, windows, _, _ = run(
        [fix(0, lat=1.0), fix(10, lat=2.0), reading(5, WARM), reading(40, WARM)], end=True
    )
    assert alerts[0]["lat"] == 1.0
    assert [w["lat"] for w in windows] == [1.0, 2.0]


def test_late_position_is_not_used_and_goes_to_the_late_output() -> None:
    alerts, _, late, _ = run([fix(10, sog=0.0), fix(5, sog=15.0), reading(6, door_open=True)])
    assert alerts == []  # the late 05:00 fix (15 kn) is ignored; no fix in force at 06:00
    assert late[0]["type"] == "vessel.position" and late[0]["late_by_s"] == 300


# -- duplicates and late readings ---------------------------------------------------


def test_duplicates_are_dropped_and_counted() -> None:
    _, windows, late, d = run([reading(0), reading(0), reading(10)], end=True)
    assert late == [] and d.counts["duplicates"] == 1
    assert windows[0]["count"] == 2


def test_late_reading_changes_nothing_and_is_written_with_late_by() -> None:
    lines = [
        reading(0),
        reading(10, WARM),
        reading(20, WARM),
        reading(30, WARM),
        reading(5, 40.0),
        reading(40, WARM),
        reading(50, -18.0),
    ]
    alerts, windows, late, d = run(lines, end=True)
    assert kinds(alerts) == [("temperature_excursion", "open"), ("temperature_excursion", "closed")]
    assert [a["opened_at"] for a in alerts] == [at(40), at(40)]
    assert [w["count"] for w in windows] == [2, 1, 2, 1]
    assert late == [{**_obj(lines[4]), "late_by_s": 1500}]
    assert d.counts["late_readings"] == 1


def _obj(line: bytes) -> dict[str, object]:
    return dict(orjson.loads(line))


# -- windows ------------------------------------------------------------------------


def test_window_is_aligned_and_closed_by_the_next_reading_past_its_end() -> None:
    _, windows, _, _ = run(
        [
            fix(0, lat=5.0),
            reading(1, -18.5, power_kw=2.0),
            reading(8, -15.5, power_kw=3.0),
            reading(15),
        ]
    )
    assert windows == [
        {
            "type": "reefer.window",
            "container_id": BOX,
            "vessel_id": VESSEL,
            "window_start": at(0),
            "window_end": at(15),
            "count": 2,
            "temp_min": -18.5,
            "temp_max": -15.5,
            "temp_mean": -17.0,
            "setpoint_c": -18.0,
            "out_of_range": 1,
            "power_kw_mean": 2.5,
            "lat": 5.0,
            "lon": 20.0,
            "revision": 0,
        }
    ]


def test_window_closes_when_vessel_time_passes_end_by_silence_threshold() -> None:
    _, windows, _, _ = run([reading(1), _other(2), _other(45)])
    assert [w["container_id"] for w in windows] == [OTHER]  # OTHER's own next reading
    _, windows, _, _ = run([reading(1), _other(2), _other(45), _other(45.5)])
    assert sorted(w["container_id"] for w in windows) == [OTHER, BOX]


def test_window_counts_only_evaluated_readings() -> None:
    _, windows, _, _ = run(
        [reading(0, defrost=True), reading(5, 90.0), reading(10, 5.0, defrost=True), reading(20)],
        end=True,
    )
    assert [(w["window_start"], w["count"]) for w in windows] == [(at(15), 1)]


def test_input_end_closes_open_windows_but_not_alerts() -> None:
    alerts, windows, _, _ = run([reading(0, power_kw=0), reading(5, power_kw=0)], end=True)
    assert kinds(alerts) == [("power_loss", "open")] and len(windows) == 1


def test_thresholds_are_configurable() -> None:
    th = replace(
        DEFAULT_THRESHOLDS,
        tolerance_c=1.0,
        excursion_min=10,
        silence_min=5,
        window_min=60,
        door_speed_kn=10.0,
    )
    alerts, windows, _, _ = run(
        [
            fix(0, sog=9.0),
            reading(0, -16.5, door_open=True),
            reading(10, -16.5),
            reading(20, -18.0),
        ],
        th,
        end=True,
    )
    assert kinds(alerts) == [
        ("sensor_silent", "open"),
        ("sensor_silent", "closed"),
        ("temperature_excursion", "open"),
        ("sensor_silent", "open"),
        ("sensor_silent", "closed"),
        ("temperature_excursion", "closed"),
    ]
    assert [w["count"] for w in windows] == [3]


def test_table_row_holds_the_latest_reading_open_alerts_and_position() -> None:
    d = Detector(DEFAULT_THRESHOLDS)
    d.process(records([fix(0, lat=7.0), reading(0, power_kw=0)]))
    assert orjson.loads(rows(d)[BOX])["open_alerts"] == []
    d.process(records([reading(5, power_kw=0)]))
    row = orjson.loads(rows(d)[BOX])
    assert row["open_alerts"] == ["power_loss"] and row["ts"] == at(5)
    assert (row["lat"], row["sog_kn"], row["power_kw"]) == (7.0, 15.0, 0)
    assert row["alert_ids"] == {"power_loss": alert_id(BOX, "power_loss", parse_ts(at(0)))}
    d.process([])
    assert rows(d) == {}  # nothing changed, nothing to write


def test_a_late_and_a_duplicate_reading_leave_the_table_alone() -> None:
    d = Detector(DEFAULT_THRESHOLDS)
    d.process(records([reading(10)]))
    d.drain()
    d.process(records([reading(10), reading(5)]))
    assert rows(d) == {}


def test_a_transshipped_container_is_watched_by_its_new_vessels_clock() -> None:
    b = "IMO9999999"
    alerts, *_ = run(
        [
            reading(0),
            reading(10, vessel_id=b),  # moved to vessel B
            reading(60, container_id=OTHER),  # A's clock: would make BOX silent on A
            reading(15, container_id="TGHU9999995", vessel_id=b),
            reading(41, container_id="TGHU9999995", vessel_id=b),  # B's clock passes 10 + 30
        ]
    )
    silent = [a for a in alerts if a["container_id"] == BOX]
    assert [(a["kind"], a["vessel_id"], a["started_at"]) for a in silent] == [
        ("sensor_silent", b, at(10))
    ]


def test_totals_account_for_every_record() -> None:
    lines = [
        fix(0),
        reading(0),
        reading(0),
        reading(10),
        reading(5),
        b"{}",
        fix(-1),
        reading(20, 90.0),
        reading(40),
    ]
    *_, d = run(lines, end=True)
    t = d.totals()
    assert (
        t["readings"],
        t["duplicates"],
        t["late_readings"],
        t["dead_letters"],
        t["positions"],
        t["late_positions"],
        t["windows"],
    ) == (4, 1, 1, 1, 1, 1, 2)
