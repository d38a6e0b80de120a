"""The dashboard views' pure parts: cells of open alerts, a container's vessels, severity,
and the view cache that builds a view once per store position."""

from __future__ import annotations

import gzip
from typing import Any

from state.api.dashboard import ViewCache
from state.api.views import open_cells, severity, vessel_spans


def _alert(kind: str, lat: float | None, lon: float | None) -> dict[str, Any]:
    return {"kind": kind, "lat": lat, "lon": lon}


def test_open_alerts_count_in_the_5_degree_cell_of_their_position() -> None:
    alerts = [
        _alert("sensor_silent", 51.955, 4.05),
        _alert("temperature_excursion", 52.0, 0.0),
        _alert("sensor_silent", 50.0, 4.99),
        _alert("power_loss", 10.395, -75.535),
        _alert("power_loss", None, None),  # no position: on no cell
        _alert(
            "door_open_at_sea", 90.0, 180.0
        ),  # the pole and the antimeridian join the cells below
    ]
    assert open_cells(alerts) == [
        {"lat_min": 10, "lon_min": -80, "open_alerts": 1, "by_kind": {"power_loss": 1}},
        {
            "lat_min": 50,
            "lon_min": 0,
            "open_alerts": 3,
            "by_kind": {"temperature_excursion": 1, "sensor_silent": 2},
        },
        {"lat_min": 85, "lon_min": 175, "open_alerts": 1, "by_kind": {"door_open_at_sea": 1}},
    ]


def _window(vessel: str, start: str, end: str) -> dict[str, Any]:
    return {"vessel_id": vessel, "window_start": start, "window_end": end}


def test_a_containers_vessels_are_the_runs_of_its_windows() -> None:
    windows = [
        _window("A", "2026-11-20T00:00:00Z", "2026-11-20T00:15:00Z"),
        _window("A", "2026-11-20T00:15:00Z", "2026-11-20T00:30:00Z"),
        _window("B", "2026-11-20T00:30:00Z", "2026-11-20T00:45:00Z"),
        _window("A", "2026-11-20T06:00:00Z", "2026-11-20T06:15:00Z"),
    ]
    assert vessel_spans(windows) == [
        {"vessel_id": "A", "from": "2026-11-20T00:00:00Z", "to": "2026-11-20T00:30:00Z"},
        {"vessel_id": "B", "from": "2026-11-20T00:30:00Z", "to": "2026-11-20T00:45:00Z"},
        {"vessel_id": "A", "from": "2026-11-20T06:00:00Z", "to": "2026-11-20T06:15:00Z"},
    ]


def test_severity_ranks_cargo_at_risk_first_and_unknown_kinds_last() -> None:
    assert severity("temperature_excursion") == (1, "critical", "Temperature excursion")
    assert severity("power_unstable") == (7, "watch", "Power unstable")
    assert severity("ice_on_deck") == (8, "watch", "ice_on_deck")


class _View:
    def __init__(self, position: int) -> None:
        self.position = position


def test_a_view_is_built_once_per_position() -> None:
    cache, built = ViewCache(), []

    def build(view: Any) -> dict[str, Any]:
        built.append(view.position)
        return {"n": len(built)}

    assert cache.get(_View(5), ("fleet", ""), build) == b'{"n":1,"position":5}'  # type: ignore[arg-type]
    assert cache.get(_View(5), ("fleet", ""), build) == b'{"n":1,"position":5}'  # type: ignore[arg-type]
    assert cache.get(_View(6), ("fleet", ""), build) == b'{"n":2,"position":6}'  # type: ignore[arg-type]
    zipped = cache.get(_View(6), ("fleet", ""), build, gzipped=True)  # type: ignore[arg-type]
    assert gzip.decompress(zipped) == b'{"n":2,"position":6}'
    assert built == [5, 6]
