"""Cold-chain detection: per-container state machines for alerts, windows and the table.

`Detector.process` takes records in canonical order (see `flows.watermark`) and
collects output records in `Outputs`. Everything here is deterministic: the same
records in the same order give byte-identical outputs. No Bytewax import.
"""

from __future__ import annotations

import hashlib
import heapq
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from flows.events import US_PER_S, DeadLetter, Position, Record, Telemetry, format_ts

EXCURSION: Final = "temperature_excursion"
POWER_LOSS: Final = "power_loss"
SILENT: Final = "sensor_silent"
FAULT: Final = "sensor_fault"
DOOR: Final = "door_open_at_sea"
ALERT_KINDS: Final = (EXCURSION, POWER_LOSS, SILENT, FAULT, DOOR)

_MINUTE: Final = 60 * US_PER_S
_POSITION_MAX_AGE: Final = 120 * _MINUTE  # the contract's 2 h; not a tunable
_NO_POWER_KW: Final = 0.1
_PRUNE_POSITIONS_AT: Final = 4096

# Timer kinds, in firing order for equal deadlines.
_TIMER_SILENCE: Final = 0
_TIMER_WINDOW: Final = 1


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The contract's configurable thresholds (defaults are the contract's)."""

    tolerance_c: float = 2.0
    excursion_min: float = 30.0
    silence_min: float = 30.0
    window_min: float = 15.0
    door_speed_kn: float = 2.0


def _json(obj: Any) -> bytes:
    """Compact JSON bytes of `obj`, sized to fit.

    orjson.dumps returns bytes that still hold its whole working buffer (4 KB in
    3.13); outputs wait in batches before a sink takes them, so keep a tight copy.
    """
    return bytes(memoryview(orjson.dumps(obj)))


def alert_id(container_id: str, kind: str, started_at: int) -> str:
    """Deterministic alert id: the same alert gets the same id on every replay."""
    text = f"{container_id}|{kind}|{format_ts(started_at)}"
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def implausible(r: Telemetry) -> str | None:
    """Why a reading is physically implausible, or None when it is plausible."""
    if not -70.0 <= r.temp_c <= 70.0:
        return f"temp_c {r.temp_c} outside [-70, 70]"
    if r.co2_pct is not None and not 0.0 <= r.co2_pct <= 30.0:
        return f"co2_pct {r.co2_pct} outside [0, 30]"
    if r.o2_pct is not None and not 0.0 <= r.o2_pct <= 30.0:
        return f"o2_pct {r.o2_pct} outside [0, 30]"
    if r.humidity_pct is not None and not 0.0 <= r.humidity_pct <= 100.0:
        return f"humidity_pct {r.humidity_pct} outside [0, 100]"
    return None


# Comparisons allow for binary floating point, so that 15.3 - 13.3 counts as exactly 2.0.
_EPSILON: Final = 1e-9


@dataclass(slots=True)
class Outputs:
    """Output records collected since the last drain, as (key, JSON bytes)."""

    alerts: list[tuple[str, bytes]] = field(default_factory=list)
    windows: list[tuple[str, bytes]] = field(default_factory=list)
    late: list[tuple[str, bytes]] = field(default_factory=list)
    dlq: list[tuple[str, bytes]] = field(default_factory=list)
    rows: list[tuple[str, bytes]] = field(default_factory=list)
    position: int = 0  # input records processed, for the table's idempotent writes


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
    """The open tumbling window of one container."""

    start: int
    count: int = 0
    temp_min: float = 0.0
    temp_max: float = 0.0
    temp_sum: float = 0.0
    power_sum: float = 0.0
    out_of_range: int = 0
    setpoint_c: float = 0.0
    position: Position | None = None


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
    window: Window | None = None
    silence_timer: bool = False  # whether the vessel's timers hold one for this container


@dataclass(slots=True)
class VesselState:
    """A vessel's event time, its usable positions and its containers' timers."""

    event_time: int = -(2**62)
    position_time: int = -(2**62)
    position_ts: list[int] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    timers: list[tuple[int, int, str, int]] = field(default_factory=list)

    def position_at(self, ts: int) -> Position | None:
        """The fix in force at `ts`: the latest at or before it, at most 2 h older."""
        i = bisect_right(self.position_ts, ts) - 1
        if i < 0 or ts - self.position_ts[i] > _POSITION_MAX_AGE:
            return None
        return self.positions[i]


def _lat_lon(p: Position | None) -> tuple[float | None, float | None]:
    return (p.lat, p.lon) if p is not None else (None, None)


@dataclass(slots=True)
class Detector:
    """Applies the contract's rules to records in canonical order."""

    th: Thresholds = field(default_factory=Thresholds)
    containers: dict[str, ContainerState] = field(default_factory=dict)
    vessels: dict[str, VesselState] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    out: Outputs = field(default_factory=Outputs)
    windows_closed: int = 0  # a plain int: counted for nearly every reading
    _dirty: set[str] = field(default_factory=set)
    _bounds: dict[int, tuple[str, str]] = field(default_factory=dict)
    _window_us: int = field(init=False)
    _silence_us: int = field(init=False)
    _excursion_us: int = field(init=False)
    _tolerance: float = field(init=False)

    def __post_init__(self) -> None:
        self._tolerance = self.th.tolerance_c + _EPSILON
        self._window_us = int(self.th.window_min * _MINUTE)
        self._silence_us = int(self.th.silence_min * _MINUTE)
        self._excursion_us = int(self.th.excursion_min * _MINUTE)

    def process(self, records: Iterable[Record]) -> None:
        """Apply the rules to records in canonical order, collecting outputs."""
        reading = self._reading
        for r in records:
            self.out.position += 1
            if type(r) is Telemetry:
                reading(r)
            elif type(r) is Position:
                self._position(r)
            else:
                assert type(r) is DeadLetter
                self.counts["dead_letters"] += 1
                self.out.dlq.append((r.source, _json(r.to_json())))

    def end_of_input(self) -> None:
        """The input ended: every open window closes (alerts stay open)."""
        for cid in sorted(self.containers):
            c = self.containers[cid]
            if c.window is not None:
                self._close_window(cid, c)

    def totals(self) -> Counter[str]:
        """Counts for progress lines and the summary, readings and windows included."""
        totals = self.counts.copy()
        totals["windows"] = self.windows_closed
        # Every record is a reading, a position or a dead letter, and a reading is
        # processed unless it was late or a duplicate.
        totals["readings"] = (
            self.out.position
            - totals["dead_letters"]
            - totals["positions"]
            - totals["late_positions"]
            - totals["late_readings"]
            - totals["duplicates"]
        )
        return totals

    @property
    def has_changed_rows(self) -> bool:
        """Whether some container changed since the table rows were last drained."""
        return bool(self._dirty)

    def drain(self, rows: bool = True) -> Outputs:
        """Return the outputs collected so far and start anew.

        With `rows`, the table rows of every container changed since the last such
        drain come too; callers batch them because a container often changes many
        times between two looks at the table.
        """
        out = self.out
        if rows:
            for cid in sorted(self._dirty):
                out.rows.append((cid, _json(self._row(cid, self.containers[cid]))))
            self._dirty.clear()
        self.out = Outputs(position=out.position)
        return out

    # -- records ---------------------------------------------------------------------

    def _position(self, p: Position) -> None:
        v = self._vessel(p.vessel_id)
        if p.ts < v.position_time:
            self._late(p.vessel_id, p.raw, v.position_time - p.ts, "late_positions")
            return
        self.counts["positions"] += 1
        v.position_time = p.ts
        if v.position_ts and v.position_ts[-1] == p.ts:
            v.positions[-1] = p  # same instant: the later fix wins
        else:
            v.position_ts.append(p.ts)
            v.positions.append(p)
            if len(v.positions) > _PRUNE_POSITIONS_AT:
                self._prune_positions(p.vessel_id, v)

    def _reading(self, r: Telemetry) -> None:
        cid = r.container_id
        c = self.containers.get(cid)
        if c is not None and r.ts <= c.last.ts:
            if r.ts == c.last.ts:
                self.counts["duplicates"] += 1
            else:
                self._late(cid, r.raw, c.last.ts - r.ts, "late_readings")
            return
        v = self._vessel(r.vessel_id)
        if r.ts > v.event_time:
            v.event_time = r.ts
            self._fire_timers(r.vessel_id, v)
        pos = v.position_at(r.ts)
        if c is None:
            c = self.containers[cid] = ContainerState(r.vessel_id, r)
        elif c.vessel_id != r.vessel_id:  # transshipped: the new vessel's clock rules
            c.vessel_id, c.silence_timer = r.vessel_id, False
        if c.alerts and SILENT in c.alerts:
            self._close(cid, c, SILENT, r.ts)
        if c.window is not None and r.ts >= c.window.start + self._window_us:
            self._close_window(cid, c)

        reason = implausible(r)
        if reason is None:
            if c.alerts and FAULT in c.alerts:
                self._close(cid, c, FAULT, r.ts)
            if not r.defrost:
                temp = r.temp_c
                dev = temp - r.setpoint_c
                out_of_range = abs(dev) > self._tolerance
                if out_of_range or c.excursion_start is not None:
                    self._excursion(cid, c, r, dev, pos)
                # Count the reading in its window (inline: this runs for nearly every one).
                w = c.window
                if w is None:
                    start = r.ts - r.ts % self._window_us
                    w = c.window = Window(start, temp_min=temp, temp_max=temp)
                elif temp < w.temp_min:
                    w.temp_min = temp
                elif temp > w.temp_max:
                    w.temp_max = temp
                w.count += 1
                w.temp_sum += temp
                w.power_sum += r.power_kw
                w.out_of_range += out_of_range
                w.setpoint_c = r.setpoint_c
                w.position = pos
            if r.power_kw < _NO_POWER_KW or c.no_power is not None:
                self._power(cid, c, r, pos)
            if r.door_open or (c.alerts and DOOR in c.alerts):
                self._door(cid, c, r, pos)
        elif FAULT not in c.alerts:
            self._open(cid, c, FAULT, r.ts, r.ts, pos, {"reason": reason})

        c.last, c.position = r, pos
        if not c.silence_timer:
            c.silence_timer = True
            heapq.heappush(v.timers, (r.ts + self._silence_us, _TIMER_SILENCE, cid, r.ts))
        self._dirty.add(cid)

    # -- rules -----------------------------------------------------------------------

    def _excursion(
        self, cid: str, c: ContainerState, r: Telemetry, dev: float, pos: Position | None
    ) -> None:
        if abs(dev) <= self._tolerance:
            if EXCURSION in c.alerts:
                detail = c.alerts[EXCURSION].detail
                detail["peak_deviation_c"] = round(c.excursion_peak, 3)
                self._close(cid, c, EXCURSION, r.ts)
            c.excursion_start = None
            return
        if c.excursion_start is None:
            c.excursion_start, c.excursion_position = r.ts, pos
            c.excursion_peak, c.excursion_setpoint = dev, r.setpoint_c
        elif abs(dev) > abs(c.excursion_peak):
            c.excursion_peak = dev
        if EXCURSION not in c.alerts and r.ts - c.excursion_start >= self._excursion_us:
            detail = {
                "setpoint_c": c.excursion_setpoint,
                "peak_deviation_c": round(c.excursion_peak, 3),
            }
            self._open(cid, c, EXCURSION, c.excursion_start, r.ts, c.excursion_position, detail)

    def _power(self, cid: str, c: ContainerState, r: Telemetry, pos: Position | None) -> None:
        if r.power_kw >= _NO_POWER_KW:
            if POWER_LOSS in c.alerts:
                self._close(cid, c, POWER_LOSS, r.ts)
            c.no_power = None
        elif c.no_power is None:
            c.no_power = (r.ts, pos)
        elif POWER_LOSS not in c.alerts:
            started, started_pos = c.no_power
            self._open(cid, c, POWER_LOSS, started, r.ts, started_pos, {"power_kw": r.power_kw})

    def _door(self, cid: str, c: ContainerState, r: Telemetry, pos: Position | None) -> None:
        if not r.door_open:
            if DOOR in c.alerts:
                self._close(cid, c, DOOR, r.ts)
        elif DOOR not in c.alerts and pos is not None and pos.sog_kn > self.th.door_speed_kn:
            self._open(cid, c, DOOR, r.ts, r.ts, pos, {"sog_kn": pos.sog_kn})

    def _fire_timers(self, vessel_id: str, v: VesselState) -> None:
        """The vessel's event time moved: open silences and close windows that are due."""
        timers, now = v.timers, v.event_time
        while timers and timers[0][0] < now:
            deadline, kind, cid, token = heapq.heappop(timers)
            c = self.containers[cid]
            if c.vessel_id != vessel_id:
                continue  # moved to another vessel, whose timers now watch it
            if kind == _TIMER_WINDOW:
                if c.window is not None and c.window.start == token:
                    self._close_window(cid, c)
                continue
            last = c.last.ts
            if last != token:
                # The container reported since this timer was set: one timer per
                # container, moved on lazily, is far cheaper than one per reading.
                heapq.heappush(timers, (last + self._silence_us, kind, cid, last))
                continue
            c.silence_timer = False
            self._open(
                cid, c, SILENT, token, deadline, c.position, {"silence_min": self.th.silence_min}
            )
            self._dirty.add(cid)
            if c.window is not None:
                # An open window always ends after its container's last reading, so
                # only a silent container can need the vessel's time to close it.
                end = c.window.start + self._window_us
                heapq.heappush(timers, (end + self._silence_us, _TIMER_WINDOW, cid, c.window.start))

    # -- outputs ---------------------------------------------------------------------

    def _open(
        self,
        cid: str,
        c: ContainerState,
        kind: str,
        started_at: int,
        opened_at: int,
        pos: Position | None,
        detail: dict[str, Any],
    ) -> None:
        lat, lon = _lat_lon(pos)
        alert = OpenAlert(alert_id(cid, kind, started_at), started_at, opened_at, lat, lon, detail)
        c.alerts[kind] = alert
        self.counts[f"opened.{kind}"] += 1
        self._emit_alert(cid, c, kind, alert, None)

    def _close(self, cid: str, c: ContainerState, kind: str, closed_at: int) -> None:
        alert = c.alerts.pop(kind)
        self.counts[f"closed.{kind}"] += 1
        self._emit_alert(cid, c, kind, alert, closed_at)

    def _emit_alert(
        self, cid: str, c: ContainerState, kind: str, a: OpenAlert, closed_at: int | None
    ) -> None:
        record = {
            "type": "reefer.alert",
            "alert_id": a.alert_id,
            "state": "open" if closed_at is None else "closed",
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
        self.out.alerts.append((cid, _json(record)))

    def _close_window(self, cid: str, c: ContainerState) -> None:
        w = c.window
        assert w is not None
        c.window = None
        bounds = self._bounds.get(w.start)
        if bounds is None:  # every container shares the same window bounds
            if len(self._bounds) > 10_000:
                self._bounds.clear()
            bounds = format_ts(w.start), format_ts(w.start + self._window_us)
            self._bounds[w.start] = bounds
        lat, lon = _lat_lon(w.position)
        record = {
            "type": "reefer.window",
            "container_id": cid,
            "vessel_id": c.vessel_id,
            "window_start": bounds[0],
            "window_end": bounds[1],
            "count": w.count,
            "temp_min": w.temp_min,
            "temp_max": w.temp_max,
            "temp_mean": round(w.temp_sum / w.count, 3),
            "setpoint_c": w.setpoint_c,
            "out_of_range": w.out_of_range,
            "power_kw_mean": round(w.power_sum / w.count, 3),
            "lat": lat,
            "lon": lon,
        }
        self.windows_closed += 1
        self.out.windows.append((cid, _json(record)))

    def _late(self, key: str, raw: bytes, late_by_us: int, counter: str) -> None:
        self.counts[counter] += 1
        record = orjson.loads(raw)
        late_by_s = late_by_us / US_PER_S
        record["late_by_s"] = int(late_by_s) if late_by_s.is_integer() else late_by_s
        self.out.late.append((key, _json(record)))

    def _row(self, cid: str, c: ContainerState) -> dict[str, Any]:
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
            "door_open": r.door_open,
            "defrost": r.defrost,
            "lat": None if p is None else p.lat,
            "lon": None if p is None else p.lon,
            "sog_kn": None if p is None else p.sog_kn,
            "open_alerts": sorted(c.alerts),
            "alert_ids": {kind: c.alerts[kind].alert_id for kind in sorted(c.alerts)},
        }

    # -- helpers ---------------------------------------------------------------------

    def _vessel(self, vessel_id: str) -> VesselState:
        v = self.vessels.get(vessel_id)
        if v is None:
            v = self.vessels[vessel_id] = VesselState()
        return v

    def _prune_positions(self, vessel_id: str, v: VesselState) -> None:
        """Drop fixes no future reading can use: older than 2 h before every container's
        latest reading (a later reading of a container is never older than its latest)."""
        lasts = [c.last.ts for c in self.containers.values() if c.vessel_id == vessel_id]
        horizon = min(lasts, default=v.position_time) - _POSITION_MAX_AGE
        keep = max(0, bisect_right(v.position_ts, horizon) - 1)
        del v.position_ts[:keep], v.positions[:keep]
