"""Alerts: opening, closing and retracting them (with their records), and the per-reading rules.

`excursion`, `power` (with `power_unstable`), `door` and `atmosphere` are the rules a
reading drives directly; silence is driven by the vessel's clock
(`flows.rules.detector`), faults by plausibility.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Final

from flows.contract import (
    ALERT_TYPE,
    ALERTS,
    ATMOSPHERE,
    CLOSED,
    DOOR,
    EXCURSION,
    OPEN,
    POWER_LOSS,
    POWER_UNSTABLE,
)
from flows.events import Position, Telemetry, format_ts
from flows.rules.atmosphere import GasWindow
from flows.rules.clock import VesselClock
from flows.rules.container import ContainerState, OpenAlert, lat_lon
from flows.rules.records import Outputs, alert_id, to_json

NO_POWER_KW: Final = 0.1


def implausible(r: Telemetry) -> str | None:
    """Why a reading is physically implausible (`sensor_fault`), or None when plausible."""
    if not -70.0 <= r.temp_c <= 70.0:
        return f"temp_c {r.temp_c} outside [-70, 70]"
    if r.co2_pct is not None and not 0.0 <= r.co2_pct <= 30.0:
        return f"co2_pct {r.co2_pct} outside [0, 30]"
    if r.o2_pct is not None and not 0.0 <= r.o2_pct <= 30.0:
        return f"o2_pct {r.o2_pct} outside [0, 30]"
    if r.humidity_pct is not None and not 0.0 <= r.humidity_pct <= 100.0:
        return f"humidity_pct {r.humidity_pct} outside [0, 100]"
    return None


@dataclass(slots=True)
class AlertBook:
    """Opens and closes alerts: counts them and emits their open/closed records."""

    out: Outputs
    counts: Counter[str]

    def open(
        self,
        cid: str,
        c: ContainerState,
        kind: str,
        started_at: int,
        opened_at: int,
        pos: Position | None,
        detail: dict[str, Any],
    ) -> None:
        """Open an alert of `kind` for container `cid`."""
        lat, lon = lat_lon(pos)
        alert = OpenAlert(alert_id(cid, kind, started_at), started_at, opened_at, lat, lon, detail)
        c.alerts[kind] = alert
        self.counts[f"{OPEN}.{kind}"] += 1
        self._emit(cid, c, kind, alert, None)

    def close(
        self, cid: str, c: ContainerState, kind: str, closed_at: int, state: str = CLOSED
    ) -> None:
        """Close (or retract: `state` RETRACTED) the container's open alert of `kind`."""
        alert = c.alerts.pop(kind)
        self.counts[f"{state}.{kind}"] += 1
        self._emit(cid, c, kind, alert, closed_at, state)

    def _emit(
        self,
        cid: str,
        c: ContainerState,
        kind: str,
        a: OpenAlert,
        closed_at: int | None,
        state: str = OPEN,
    ) -> None:
        record = {
            "type": ALERT_TYPE,
            "alert_id": a.alert_id,
            "state": state,
            "kind": kind,
            "container_id": cid,
            "vessel_id": c.vessel_id,
            "started_at": format_ts(a.started_at),
            "opened_at": format_ts(a.opened_at),
            "closed_at": None if closed_at is None else format_ts(closed_at),
            "lat": a.lat,
            "lon": a.lon,
            "detail": a.detail,
        }
        self.out.of(ALERTS).append((cid, to_json(record)))


def excursion(
    book: AlertBook,
    cid: str,
    c: ContainerState,
    r: Telemetry,
    dev: float,
    pos: Position | None,
    tolerance: float,
    excursion_us: int,
) -> None:
    """`temperature_excursion`: out of tolerance on every evaluated reading for long enough."""
    if abs(dev) <= tolerance:
        if EXCURSION in c.alerts:
            detail = c.alerts[EXCURSION].detail
            detail["peak_deviation_c"] = round(c.excursion_peak, 3)
            book.close(cid, c, EXCURSION, r.ts)
        c.excursion_start = None
        return
    if c.excursion_start is None:
        c.excursion_start, c.excursion_position = r.ts, pos
        c.excursion_peak, c.excursion_setpoint = dev, r.setpoint_c
    elif abs(dev) > abs(c.excursion_peak):
        c.excursion_peak = dev
    if EXCURSION not in c.alerts and r.ts - c.excursion_start >= excursion_us:
        detail = {
            "setpoint_c": c.excursion_setpoint,
            "peak_deviation_c": round(c.excursion_peak, 3),
        }
        book.open(cid, c, EXCURSION, c.excursion_start, r.ts, c.excursion_position, detail)


def power(
    book: AlertBook,
    cid: str,
    c: ContainerState,
    r: Telemetry,
    pos: Position | None,
    unstable_count: int,
    unstable_us: int,
) -> None:
    """`power_loss`: no power on two consecutive readings; `power_unstable`: the
    `unstable_count`-th power_loss within `unstable_us` of the first, closed once power
    has held for `unstable_us` with no power_loss in between."""
    if r.power_kw >= NO_POWER_KW:
        if POWER_LOSS in c.alerts:
            book.close(cid, c, POWER_LOSS, r.ts)
            c.power_restored = r.ts
        c.no_power = None
        if (
            POWER_UNSTABLE in c.alerts
            and c.power_restored is not None
            and r.ts - c.power_restored >= unstable_us
        ):
            book.close(cid, c, POWER_UNSTABLE, r.ts)
    elif c.no_power is None:
        c.no_power = (r.ts, pos)
    elif POWER_LOSS not in c.alerts:
        started, started_pos = c.no_power
        book.open(cid, c, POWER_LOSS, started, r.ts, started_pos, {"power_kw": r.power_kw})
        losses = c.power_losses
        losses.append((started, r.ts, started_pos))
        while r.ts - losses[0][1] > unstable_us:
            losses.pop(0)
        if len(losses) >= unstable_count and POWER_UNSTABLE not in c.alerts:
            first_started, _, first_pos = losses[-unstable_count]
            detail = {"power_losses": len(losses), "within_hours": unstable_us / 3_600_000_000}
            book.open(cid, c, POWER_UNSTABLE, first_started, r.ts, first_pos, detail)


def door(
    book: AlertBook,
    cid: str,
    c: ContainerState,
    r: Telemetry,
    pos: Position | None,
    door_speed_kn: float,
) -> None:
    """`door_open_at_sea`: the door open while the vessel's known speed is above the limit."""
    if not r.door_open:
        if DOOR in c.alerts:
            book.close(cid, c, DOOR, r.ts)
    elif DOOR not in c.alerts and pos is not None and pos.sog_kn > door_speed_kn:
        book.open(cid, c, DOOR, r.ts, r.ts, pos, {"sog_kn": pos.sog_kn})


@dataclass(frozen=True, slots=True)
class AtmosphereLimits:
    """The atmosphere rule's limits (percentage points), with the floating-point slack."""

    co2_max: float
    o2_min: float
    tolerance: float
    span_us: int


def atmosphere(
    book: AlertBook,
    cid: str,
    c: ContainerState,
    r: Telemetry,
    clock: VesselClock,
    lim: AtmosphereLimits,
) -> None:
    """`atmosphere_out_of_range`: a 30-minute mean of CO2 above its limit or of O2 below
    its limit (or, with a setpoint, off it by more than the tolerance)."""
    gas = c.gas
    if gas is None:
        gas = c.gas = GasWindow(lim.span_us)
    co2, o2 = gas.update(r.ts, r.co2_pct, r.o2_pct)
    co2_sp, o2_sp = r.co2_setpoint_pct, r.o2_setpoint_pct
    co2_out = co2 is not None and (
        co2 > lim.co2_max if co2_sp is None else abs(co2 - co2_sp) > lim.tolerance
    )
    o2_out = o2 is not None and (
        o2 < lim.o2_min if o2_sp is None else abs(o2 - o2_sp) > lim.tolerance
    )
    if ATMOSPHERE in c.alerts:
        if not co2_out and not o2_out:
            book.close(cid, c, ATMOSPHERE, r.ts)
        return
    if not co2_out and not o2_out:
        return
    started = min(gas.span_start(i) for i, out in ((1, co2_out), (2, o2_out)) if out)
    detail = {
        "co2_mean_pct": None if co2 is None else round(co2, 3),
        "o2_mean_pct": None if o2 is None else round(o2, 3),
        "co2_setpoint_pct": co2_sp,
        "o2_setpoint_pct": o2_sp,
    }
    book.open(cid, c, ATMOSPHERE, started, r.ts, clock.position_at(started), detail)
