"""What the rules remember of one container between its readings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flows.events import Position, Telemetry, format_ts
from flows.rules.atmosphere import GasWindow


@dataclass(slots=True)
class OpenAlert:
    """An alert that has opened and not yet closed."""

    alert_id: str
    started_at: int
    opened_at: int
    lat: float | None
    lon: float | None
    detail: dict[str, Any]


@dataclass(slots=True)
class Window:
    """A container's latest tumbling window; kept after it is emitted, for revisions.

    `revision` is that of the last emission (-1: never emitted); `pending` says that
    it has readings no emission has shown yet. `vessel_id` and `position` are those
    of its last counted reading.
    """

    start: int
    end: int
    vessel_id: str
    count: int = 0
    temp_min: float = 0.0
    temp_max: float = 0.0
    temp_sum: float = 0.0
    power_sum: float = 0.0
    out_of_range: int = 0
    setpoint_c: float = 0.0
    position: Position | None = None
    revision: int = -1
    pending: bool = True


@dataclass(slots=True)
class ContainerState:
    """Everything one container's rules remember between readings."""

    vessel_id: str
    last: Telemetry
    position: Position | None = None
    alerts: dict[str, OpenAlert] = field(default_factory=dict)
    excursion_start: int | None = None
    excursion_position: Position | None = None
    excursion_peak: float = 0.0
    excursion_setpoint: float = 0.0
    no_power: tuple[int, Position | None] | None = None  # first reading without power
    power_losses: list[tuple[int, int, Position | None]] = field(default_factory=list)
    power_restored: int | None = None  # when its last power_loss closed
    gas: GasWindow | None = None
    window: Window | None = None
    silence_timer: bool = False  # whether the vessel's timers hold one for this container


def lat_lon(p: Position | None) -> tuple[float | None, float | None]:
    """A position's coordinates, or (None, None) when there is none."""
    return (p.lat, p.lon) if p is not None else (None, None)


def table_row(cid: str, c: ContainerState) -> dict[str, Any]:
    """The container-state table's row: the last reading, its position, open alerts."""
    r, p = c.last, c.position
    return {
        "container_id": cid,
        "vessel_id": c.vessel_id,
        "ts": format_ts(r.ts),
        "setpoint_c": r.setpoint_c,
        "temp_c": r.temp_c,
        "power_kw": r.power_kw,
        "return_c": r.return_c,
        "ambient_c": r.ambient_c,
        "humidity_pct": r.humidity_pct,
        "co2_pct": r.co2_pct,
        "o2_pct": r.o2_pct,
        "co2_setpoint_pct": r.co2_setpoint_pct,
        "o2_setpoint_pct": r.o2_setpoint_pct,
        "door_open": r.door_open,
        "defrost": r.defrost,
        "lat": None if p is None else p.lat,
        "lon": None if p is None else p.lon,
        "sog_kn": None if p is None else p.sog_kn,
        "open_alerts": sorted(c.alerts),
        "alert_ids": {kind: c.alerts[kind].alert_id for kind in sorted(c.alerts)},
    }
