"""Wrong clocks and late data through the real dataflow, in memory, outcomes worked out by hand.

A reading or a position fix dated 2099 must not move its vessel's clock; a container's
buffered backlog must revise its windows and retract a silence it disproves; a window
takes vessel and position from its last counted reading; and a ship whose gateway was
off for two days must resume with every record processed. Every expected record below
follows from the contract (defaults: 30-minute silence, 15-minute windows, 360 minutes
ahead before a record is held), not from running the code.
"""

from __future__ import annotations

from typing import Any

import pytest

from flows.config import load
from tests.support.builders import BOX, OTHER, VESSEL, at, fix, reading
from tests.support.memory import MemoryRun, run_in_memory

THIRD = "TGHU9999995"
SHIP_2 = "IMO9321483"
BOGUS_TS = "2099-11-26T12:20:00Z"  # a reefer controller whose RTC battery died
RUNS = [(None, 1), (7, 1), (13, 2)]  # (interleaving seed, workers)


def _run(lines: list[bytes], seed: int | None = None, workers: int = 1, **env: str) -> MemoryRun:
    settings = load({"COLDWAKE_PROGRESS_S": "0", **{f"COLDWAKE_{k}": v for k, v in env.items()}})
    return run_in_memory({"t": lines}, settings, seed=seed, workers=workers)


def _windows(run: MemoryRun) -> list[tuple[str, str, int, int]]:
    """(container, window_start, count, revision) of each emitted window, in order."""
    return [
        (w["container_id"], w["window_start"], w["count"], w["revision"])
        for w in run.json("windows")
    ]


def _alerts(run: MemoryRun) -> list[dict[str, Any]]:
    alerts = run.json("alerts")
    for a in alerts:
        del a["alert_id"]
    return alerts


def _silent(cid: str, last: float, closed: float | None, state: str, pos: bool = False):
    return {
        "type": "reefer.alert",
        "state": state,
        "kind": "sensor_silent",
        "container_id": cid,
        "vessel_id": VESSEL,
        "started_at": at(last),
        "opened_at": at(last + 30),
        "closed_at": None if closed is None else at(closed),
        "lat": 10.0 if pos else None,
        "lon": 20.0 if pos else None,
        "detail": {"silence_min": 30.0},
    }


def _every_five(cids: list[str], start: int, end: int) -> list[bytes]:
    """Each container's reading at every 5th minute from start to end, minute by minute."""
    return [reading(m, container_id=cid) for m in range(start, end + 1, 5) for cid in cids]


# -- 1. one reading dated 2099 -------------------------------------------------------------

THREE = [BOX, OTHER, THIRD]


def _with_bogus_reading() -> tuple[list[bytes], bytes, int]:
    """BOX, OTHER, THIRD every 5 minutes 0..60; BOX's reading at 20 says 2099."""
    lines = _every_five(THREE, 0, 60)
    bogus = reading(20, ts=BOGUS_TS)
    index = lines.index(reading(20))
    lines[index] = bogus
    return lines, bogus, index + 1


def _five_minute_windows(box_from_15: int) -> list[tuple[str, str, int, int]]:
    """Each container's windows of 3 readings (BOX's second: `box_from_15`), closed by its
    next reading; the last ones, of one reading, closed by the end of input in id order."""
    closed = [
        (cid, at(start), box_from_15 if (cid, start) == (BOX, 15) else 3, 0)
        for start in (0, 15, 30, 45)
        for cid in THREE
    ]
    return [*closed, (OTHER, at(60), 1, 0), (BOX, at(60), 1, 0), (THIRD, at(60), 1, 0)]


@pytest.mark.parametrize(("seed", "workers"), RUNS)
def test_a_reading_dated_2099_is_dead_lettered_and_moves_no_clock(
    seed: int | None, workers: int
) -> None:
    lines, bogus, line_number = _with_bogus_reading()
    run = _run(lines, seed, workers)
    [dead] = run.json("dlq")
    assert (dead["source"], dead["raw"], dead["raw_encoding"]) == (
        f"t:{line_number}",
        bogus.decode(),
        "utf-8",
    )
    # Uncorroborated at the end of input, when the vessel's event time was 13:00.
    assert BOGUS_TS in dead["error"] and "2026-11-26T13:00:00Z" in dead["error"], dead["error"]
    assert run.records["alerts"] == []  # nobody fell silent: the clock never left 2026
    # BOX's later true readings count (its 20 is gone: 2 readings from 15), none is late.
    assert _windows(run) == _five_minute_windows(box_from_15=2)
    assert run.records["late"] == []
    assert run.rows()[BOX]["ts"] == at(60)


def test_a_reading_dated_2099_is_dead_lettered_once_the_clock_moved_max_ahead_on() -> None:
    lines, bogus, _ = _with_bogus_reading()
    run = _run(lines, MAX_AHEAD_MIN="30")
    [dead] = run.json("dlq")
    assert dead["raw"] == bogus.decode()
    # Held when the vessel's event time was 12:15, dropped when it reached 12:45.
    assert BOGUS_TS in dead["error"] and "2026-11-26T12:45:00Z" in dead["error"], dead["error"]
    assert run.records["alerts"] == []
    assert _windows(run) == _five_minute_windows(box_from_15=2)
    assert run.records["late"] == []


# -- 2. one position fix dated 2099 --------------------------------------------------------

VOYAGE = [
    fix(0, sog=0.2, lat=51.9, lon=4.0),  # alongside in port
    reading(0),
    fix(0, sog=0.0, lat=51.9, lon=4.0, ts="2099-11-26T12:05:00Z"),  # a broken GPS clock
    fix(10, sog=14.0, lat=51.5, lon=3.0),  # under way
    reading(10),
    reading(12, door_open=True),  # the door opens at 14 knots
    reading(15),  # and shuts again
]


def _door(state: str, closed: float | None) -> dict[str, Any]:
    return {
        "type": "reefer.alert",
        "state": state,
        "kind": "door_open_at_sea",
        "container_id": BOX,
        "vessel_id": VESSEL,
        "started_at": at(12),
        "opened_at": at(12),
        "closed_at": None if closed is None else at(closed),
        "lat": 51.5,
        "lon": 3.0,
        "detail": {"sog_kn": 14.0},
    }


@pytest.mark.parametrize(("seed", "workers"), RUNS)
def test_a_fix_dated_2099_is_dead_lettered_and_later_true_fixes_are_used(
    seed: int | None, workers: int
) -> None:
    run = _run(VOYAGE, seed, workers)
    [dead] = run.json("dlq")
    assert (dead["source"], dead["raw"]) == ("t:3", VOYAGE[2].decode())
    assert "2099-11-26T12:05:00Z" in dead["error"] and at(15) in dead["error"], dead["error"]
    assert _alerts(run) == [_door("open", None), _door("closed", 15)]
    [first, last] = run.json("windows")
    assert (first["window_start"], first["count"], first["lat"], first["lon"]) == (
        at(0),
        3,
        51.5,
        3.0,
    )
    assert (last["window_start"], last["count"], last["lat"], last["lon"]) == (at(15), 1, 51.5, 3.0)
    assert run.records["late"] == []


def test_a_fix_dated_2099_in_its_own_partition_changes_nothing_either() -> None:
    fixes = [line for line in VOYAGE if b"vessel.position" in line]
    readings = [line for line in VOYAGE if b"vessel.position" not in line]
    for seed, workers in RUNS:
        run = run_in_memory({"positions": fixes, "telemetry": readings}, seed=seed, workers=workers)
        assert [d["source"] for d in run.json("dlq")] == ["positions:2"]
        assert _alerts(run) == [_door("open", None), _door("closed", 15)]


def test_three_fixes_dated_2099_in_a_row_in_their_own_partition_hold_no_true_fix_back() -> None:
    # A GPS whose clock says 2099 for three fixes running. The position feed is one source,
    # and on Kafka its fixes have a partition of their own, all in a row: they must not
    # move that partition's clock either, or every later true fix waits behind them.
    bogus = [fix(0, sog=0.0, ts=f"2099-11-26T12:0{m}:00Z") for m in (1, 2, 3)]
    fixes = [VOYAGE[0], *bogus, VOYAGE[3]]
    readings = [line for line in VOYAGE if b"vessel.position" not in line]
    for seed, workers in RUNS:
        run = run_in_memory({"positions": fixes, "telemetry": readings}, seed=seed, workers=workers)
        assert [d["source"] for d in run.json("dlq")] == [
            "positions:2",
            "positions:3",
            "positions:4",
        ]
        assert _alerts(run) == [_door("open", None), _door("closed", 15)], (seed, workers)
        assert [(w["count"], w["lat"], w["lon"]) for w in run.json("windows")] == [
            (3, 51.5, 3.0),
            (1, 51.5, 3.0),
        ]


# -- 3. a container's backlog arrives behind the vessel's clock ----------------------------

BACKLOG = [
    *_every_five([BOX, OTHER], 0, 60)[:2],
    reading(0, container_id=THIRD),
    *_every_five([BOX, OTHER], 0, 60)[2:],
    # THIRD's buffered readings, in order, once the others have taken the clock to 13:00
    reading(5, -17.0, container_id=THIRD),
    reading(10, -16.0, container_id=THIRD),
    *_every_five([THIRD], 15, 60),
]


@pytest.mark.parametrize(("seed", "workers"), RUNS)
def test_a_backlog_behind_the_clock_revises_windows_and_retracts_its_silence(
    seed: int | None, workers: int
) -> None:
    run = _run(BACKLOG, seed, workers)
    # THIRD fell silent at 12:30 (the clock passed it at 12:35); its reading of 12:05 shows
    # it never was silent 30 minutes: the alert is retracted, closed at that reading.
    assert _alerts(run) == [
        _silent(THIRD, 0, None, "open"),
        _silent(THIRD, 0, 5, "retracted"),
    ]
    for alert in run.json("alerts"):
        if alert["closed_at"] is not None and alert["state"] != "retracted":
            assert alert["closed_at"] >= alert["opened_at"], alert
    assert _windows(run) == [
        (BOX, at(0), 3, 0),
        (OTHER, at(0), 3, 0),
        (BOX, at(15), 3, 0),
        (OTHER, at(15), 3, 0),
        (BOX, at(30), 3, 0),
        (OTHER, at(30), 3, 0),
        (THIRD, at(0), 1, 0),  # the clock passed 12:15 + 30 min at 12:50
        (BOX, at(45), 3, 0),
        (OTHER, at(45), 3, 0),
        (THIRD, at(0), 3, 1),  # re-emitted whole when its 12:15 reading closed it
        (THIRD, at(15), 3, 0),
        (THIRD, at(30), 3, 0),
        (THIRD, at(45), 3, 0),
        (OTHER, at(60), 1, 0),
        (BOX, at(60), 1, 0),
        (THIRD, at(60), 1, 0),
    ]
    first, second = [
        w for w in run.json("windows") if (w["container_id"], w["window_start"]) == (THIRD, at(0))
    ]
    assert (first["temp_min"], first["temp_max"], first["temp_mean"]) == (-18.0, -18.0, -18.0)
    assert (second["temp_min"], second["temp_max"], second["temp_mean"]) == (-18.0, -16.0, -17.0)
    assert run.records["late"] == [] and run.records["dlq"] == []


# -- 4. a container moves to another vessel mid-window -------------------------------------

TWO_SHIPS = [fix(0, lat=10.0, lon=20.0), fix(0, lat=30.0, lon=40.0, vessel=SHIP_2)]


@pytest.mark.parametrize(
    ("last", "vessel", "lat", "lon", "count"),
    [
        # The last reading of the window is on the new ship: all three come from it.
        (reading(10, vessel_id=SHIP_2), SHIP_2, 30.0, 40.0, 3),
        # On the new ship, but not counted (defrost): all three from the reading at 5.
        (reading(10, vessel_id=SHIP_2, defrost=True), VESSEL, 10.0, 20.0, 2),
        # Implausible, so not counted either.
        (reading(10, 95.0, vessel_id=SHIP_2), VESSEL, 10.0, 20.0, 2),
    ],
)
def test_a_window_takes_vessel_and_position_from_its_last_counted_reading(
    last: bytes, vessel: str, lat: float, lon: float, count: int
) -> None:
    lines = [*TWO_SHIPS, reading(0), reading(5), last, reading(15, vessel_id=SHIP_2)]
    window = _run(lines).json("windows")[0]
    assert (window["window_start"], window["count"]) == (at(0), count)
    assert (window["vessel_id"], window["lat"], window["lon"]) == (vessel, lat, lon)


def test_a_window_on_a_new_ship_without_a_fix_has_no_position() -> None:
    lines = [fix(0, lat=10.0, lon=20.0), reading(0), reading(5), reading(10, vessel_id=SHIP_2)]
    [window] = _run(lines).json("windows")
    assert (window["count"], window["vessel_id"], window["lat"], window["lon"]) == (
        3,
        SHIP_2,
        None,
        None,
    )


# -- 5. the gateway was off for two days ---------------------------------------------------

TWO_DAYS = 2 * 24 * 60


def _gateway_off_two_days() -> list[bytes]:
    lines = []
    for start in (0, TWO_DAYS):
        for m in (start, start + 10, start + 20, start + 30):
            if m in (0, TWO_DAYS):
                lines.append(fix(m, lat=10.0, lon=20.0))
            lines += [reading(m, container_id=cid) for cid in THREE]
    return lines


def _after_the_gap() -> list[tuple[str, str, int, int]]:
    """Readings at 0, 10, 20, 30 and two days later again: windows of 2, 1 and 1 readings."""
    windows = []
    for day in (0, TWO_DAYS):
        # closed by each container's next reading, in reading order
        windows += [(cid, at(day + start), n, 0) for start, n in ((0, 2), (15, 1)) for cid in THREE]
        # the one left open: by the clock's jump (see the alerts), or the end of input
        windows += [(cid, at(day + 30), 1, 0) for cid in (OTHER, BOX, THIRD)]
    return windows


def _counted(run: MemoryRun) -> int:
    """Readings counted in windows, each window at its highest revision."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for w in run.json("windows"):
        key = (w["container_id"], w["window_start"])
        if key not in latest or w["revision"] > latest[key]["revision"]:
            latest[key] = w
    return sum(w["count"] for w in latest.values())


@pytest.mark.parametrize(("seed", "workers"), RUNS)
def test_a_ship_whose_gateway_was_off_two_days_has_every_record_processed(
    seed: int | None, workers: int
) -> None:
    run = _run(_gateway_off_two_days(), seed, workers)
    assert run.records["dlq"] == [] and run.records["late"] == []
    # The clock jumps two days: each container's silence (since 12:30) opens, in id order,
    # and its own first reading after the gap closes it.
    assert _alerts(run) == [
        _silent(OTHER, 30, None, "open", pos=True),
        _silent(BOX, 30, None, "open", pos=True),
        _silent(THIRD, 30, None, "open", pos=True),
        _silent(BOX, 30, TWO_DAYS, "closed", pos=True),
        _silent(OTHER, 30, TWO_DAYS, "closed", pos=True),
        _silent(THIRD, 30, TWO_DAYS, "closed", pos=True),
    ]
    assert _windows(run) == _after_the_gap()
    assert _counted(run) == 24  # every reading
    assert {cid: row["ts"] for cid, row in run.rows().items()} == {
        cid: at(TWO_DAYS + 30) for cid in THREE
    }


def test_after_two_days_off_each_containers_backlog_may_come_whole_one_after_another() -> None:
    before = [reading(m, container_id=cid) for m in (0, 10, 20, 30) for cid in THREE]
    backlogs = [
        reading(m, container_id=cid) for cid in THREE for m in range(TWO_DAYS, TWO_DAYS + 61, 10)
    ]
    run = _run(before + backlogs)
    assert run.records["dlq"] == [] and run.records["late"] == []
    assert _counted(run) == 12 + 21  # every reading counts in a window
    assert {cid: row["ts"] for cid, row in run.rows().items()} == {
        cid: at(TWO_DAYS + 60) for cid in THREE
    }
    # THIRD's backlog comes last, behind the clock its neighbours moved: the silence the
    # clock opened for it at 12:30 two days on is retracted by its reading of 12:10.
    retracted = [a for a in _alerts(run) if a["state"] == "retracted"]
    assert retracted == [_silent(THIRD, TWO_DAYS, TWO_DAYS + 10, "retracted")]
    for alert in run.json("alerts"):
        if alert["closed_at"] is not None and alert["state"] != "retracted":
            assert alert["closed_at"] >= alert["opened_at"], alert
    assert (THIRD, at(TWO_DAYS), 2, 1) in _windows(run)  # revised: 12:00 and 12:10


def test_a_real_two_day_jump_does_not_carry_a_bogus_2099_reading_along() -> None:
    lines = _gateway_off_two_days()
    bogus = reading(31, ts=BOGUS_TS)
    gap = lines.index(fix(TWO_DAYS, lat=10.0, lon=20.0))
    lines.insert(gap, bogus)
    run = _run(lines)
    [dead] = run.json("dlq")
    assert (dead["source"], dead["raw"]) == (f"t:{gap + 1}", bogus.decode())
    # Held at 12:30; the jump took the clock more than 360 minutes past that.
    assert BOGUS_TS in dead["error"] and at(TWO_DAYS) in dead["error"], dead["error"]
    assert run.records["late"] == []
    assert _windows(run) == _after_the_gap()
    assert len(run.json("alerts")) == 6
