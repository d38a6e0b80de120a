"""A hand-written voyage through the real dataflow, in memory, with every output spelled out.

Three containers on one vessel, 41 minutes: each alert kind opens and closes once,
and there is a duplicate, a late reading and a dead letter. The expected records
below were worked out by hand from the contract, not by running the code.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.builders import BOX, OTHER, VESSEL, at, fix, reading, window
from tests.support.memory import MemoryRun, run_in_memory

THIRD = "TGHU9999995"

POSITIONS = [fix(0, sog=15.0, lat=10.0, lon=20.0)]
TELEMETRY = [
    reading(0),  # BOX, in range
    reading(0),  # duplicate: dropped
    reading(0, container_id=OTHER, power_kw=0),  # OTHER loses power
    reading(5, container_id=OTHER, power_kw=0),  # second reading without power: power_loss
    reading(5, -10.0),  # BOX 8 degrees too warm
    reading(35, -10.0, door_open=True),  # 30 min out of range: excursion; door open at 15 kn
    reading(3),  # BOX late by 32 minutes
    reading(36, 95.0, container_id=THIRD),  # implausible: sensor_fault; OTHER silent since 5
    b"not json",  # dead letter
    reading(40, container_id=OTHER),  # OTHER back, with power
    reading(40),  # BOX back in range, door shut
    reading(41, container_id=THIRD),  # THIRD plausible again
]


def _alert(
    kind: str,
    state: str,
    cid: str,
    started: float,
    opened: float,
    closed: float | None,
    **detail: Any,
) -> dict[str, Any]:
    return {
        "type": "reefer.alert",
        "state": state,
        "kind": kind,
        "container_id": cid,
        "vessel_id": VESSEL,
        "started_at": at(started),
        "opened_at": at(opened),
        "closed_at": None if closed is None else at(closed),
        "lat": 10.0,
        "lon": 20.0,
        "detail": detail,
    }


EXPECTED_ALERTS = [
    _alert("power_loss", "open", OTHER, 0, 5, None, power_kw=0.0),
    _alert(
        "temperature_excursion", "open", BOX, 5, 35, None, setpoint_c=-18.0, peak_deviation_c=8.0
    ),
    _alert("door_open_at_sea", "open", BOX, 35, 35, None, sog_kn=15.0),
    _alert("sensor_silent", "open", OTHER, 5, 35, None, silence_min=30.0),
    _alert("sensor_fault", "open", THIRD, 36, 36, None, reason="temp_c 95.0 outside [-70, 70]"),
    _alert("sensor_silent", "closed", OTHER, 5, 35, 40, silence_min=30.0),
    _alert("power_loss", "closed", OTHER, 0, 5, 40, power_kw=0.0),
    _alert(
        "temperature_excursion", "closed", BOX, 5, 35, 40, setpoint_c=-18.0, peak_deviation_c=8.0
    ),
    _alert("door_open_at_sea", "closed", BOX, 35, 35, 40, sog_kn=15.0),
    _alert("sensor_fault", "closed", THIRD, 36, 36, 41, reason="temp_c 95.0 outside [-70, 70]"),
]


EXPECTED_WINDOWS = [
    window(BOX, 0, 2, -18.0, -10.0, -14.0, 1, 2.5),  # closed by BOX's reading at 35
    window(OTHER, 0, 2, -18.0, -18.0, -18.0, 0, 0.0),  # closed by OTHER's reading at 40
    # closed by the end of input, in container order
    window(OTHER, 30, 1, -18.0, -18.0, -18.0, 0, 2.5),
    window(BOX, 30, 2, -18.0, -10.0, -14.0, 1, 2.5),
    window(THIRD, 30, 1, -18.0, -18.0, -18.0, 0, 2.5),
]


def _run(seed: int | None = None, workers: int = 1) -> MemoryRun:
    return run_in_memory(
        {"positions": POSITIONS, "telemetry": TELEMETRY}, seed=seed, workers=workers
    )


@pytest.mark.parametrize(("seed", "workers"), [(None, 1), (5, 1), (11, 2)])
def test_every_alert_window_late_record_and_dead_letter_is_exactly_as_worked_out(
    seed: int | None, workers: int
) -> None:
    out = _run(seed, workers)
    alerts = out.json("alerts")
    ids = [a.pop("alert_id") for a in alerts]
    assert alerts == EXPECTED_ALERTS
    # Each alert's open and closed records share one id; different alerts never do.
    assert ids[:5] == [ids[6], ids[7], ids[8], ids[5], ids[9]] and len(set(ids)) == 5

    assert out.json("windows") == EXPECTED_WINDOWS
    late = reading(3).decode()[:-1] + ',"late_by_s":1920}'
    assert out.records["late"] == [late.encode()]
    [dead] = out.json("dlq")
    assert (dead["type"], dead["source"], dead["raw"], dead["raw_encoding"]) == (
        "dead_letter",
        "telemetry:9",
        "not json",
        "utf-8",
    )
    assert dead["error"].startswith("not valid JSON")


def test_the_table_holds_each_containers_last_reading_with_no_alert_open() -> None:
    rows = _run().rows()
    assert sorted(rows) == [OTHER, BOX, THIRD]
    box = rows[BOX]
    assert (box["ts"], box["temp_c"], box["door_open"], box["open_alerts"]) == (
        at(40),
        -18.0,
        False,
        [],
    )
    assert (box["lat"], box["lon"], box["sog_kn"]) == (10.0, 20.0, 15.0)
    assert (rows[OTHER]["ts"], rows[OTHER]["power_kw"]) == (at(40), 2.5)
    assert rows[THIRD]["ts"] == at(41)
