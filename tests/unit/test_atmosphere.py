"""`atmosphere_out_of_range`: 30-minute means of CO2 and O2 against limits or setpoints."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.builders import at, detect, reading


def _every_5_min(gas: str, values: list[float], **fields: Any) -> list[bytes]:
    return [reading(5 * i, **{gas: v}, **fields) for i, v in enumerate(values)]


def _atmos(lines: list[bytes]) -> list[tuple[str, str, str, str | None]]:
    out, _ = detect(lines)
    return [
        (a["state"], a["started_at"], a["opened_at"], a["closed_at"])
        for a in out["alerts"]
        if a["kind"] == "atmosphere_out_of_range"
    ]


@pytest.mark.parametrize(("co2", "opens"), [(9.99, False), (10.0, False), (10.01, True)])
def test_co2_mean_just_under_at_and_over_the_limit(co2: float, opens: bool) -> None:
    alerts = _atmos(_every_5_min("co2_pct", [co2] * 13))
    assert alerts == ([("open", at(0), at(30), None)] if opens else [])


@pytest.mark.parametrize(("o2", "opens"), [(12.01, False), (12.0, False), (11.99, True)])
def test_o2_mean_just_over_at_and_under_the_limit(o2: float, opens: bool) -> None:
    alerts = _atmos(_every_5_min("o2_pct", [o2] * 13))
    assert alerts == ([("open", at(0), at(30), None)] if opens else [])


def test_the_mean_opens_when_it_crosses_and_closes_when_back_in_range() -> None:
    # 9 until 25 min, 12 from 30 to 55, 9 again from 60: the 7 readings of each
    # [t - 30, t] span average 72/7 = 10.29 at 40 (open) and 69/7 = 9.86 at 80 (close).
    values = [9.0] * 6 + [12.0] * 6 + [9.0] * 6
    assert _atmos(_every_5_min("co2_pct", values)) == [
        ("open", at(10), at(40), None),
        ("closed", at(10), at(40), at(80)),
    ]


def test_nothing_is_judged_before_the_readings_span_30_minutes() -> None:
    assert _atmos(_every_5_min("co2_pct", [20.0] * 6)) == []  # 0..25 min
    assert _atmos(_every_5_min("co2_pct", [20.0] * 7))[0][2] == at(30)


@pytest.mark.parametrize(("co2", "opens"), [(7.0, False), (3.0, False), (7.01, True), (2.99, True)])
def test_with_a_setpoint_the_mean_must_stay_within_2_points_of_it(co2: float, opens: bool) -> None:
    lines = _every_5_min("co2_pct", [co2] * 13, co2_setpoint_pct=5.0)
    assert bool(_atmos(lines)) is opens


def test_an_o2_setpoint_replaces_the_fixed_limit() -> None:
    # 3 % O2 is far below 12 %, but it is what controlled-atmosphere cargo asks for.
    assert _atmos(_every_5_min("o2_pct", [3.0] * 13, o2_setpoint_pct=3.0)) == []
    assert _atmos(_every_5_min("o2_pct", [6.0] * 13, o2_setpoint_pct=3.0)) != []


def test_implausible_gas_readings_feed_only_sensor_fault() -> None:
    out, _ = detect(_every_5_min("co2_pct", [35.0] * 13))
    assert {a["kind"] for a in out["alerts"]} == {"sensor_fault"}
