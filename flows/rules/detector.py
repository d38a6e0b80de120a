"""The `Detector`: applies every rule to records in canonical order (see `flows.watermark`).

Per reading: duplicates and late readings are set aside, the vessel's clock moves
(firing due silences and window closes), then the alert rules and the window run.
Changed containers are remembered for the table, whose rows go out in batches.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from flows.contract import CONTAINER_STATE, DLQ, DOOR, FAULT, LATE, SILENT, WINDOWS
from flows.events import DeadLetter, Position, Record, Telemetry
from flows.rules import alerts
from flows.rules.alerts import NO_POWER_KW, AlertBook, implausible
from flows.rules.clock import MINUTE, TIMER_SILENCE, TIMER_WINDOW, VesselClock
from flows.rules.container import ContainerState, Window, table_row
from flows.rules.records import Outputs, late_record, to_json
from flows.rules.thresholds import Thresholds
from flows.rules.windows import WindowBounds, window_record

_PRUNE_POSITIONS_AT: Final = 4096
# Comparisons allow for binary floating point, so that 15.3 - 13.3 counts as exactly 2.0.
_EPSILON: Final = 1e-9


@dataclass(slots=True)
class Detector:
    """Applies the contract's rules to records in canonical order."""

    th: Thresholds
    containers: dict[str, ContainerState] = field(default_factory=dict)
    vessels: dict[str, VesselClock] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    out: Outputs = field(default_factory=Outputs)
    windows_closed: int = 0  # a plain int: counted for nearly every reading
    _dirty: set[str] = field(default_factory=set)
    _book: AlertBook = field(init=False)
    _bounds: WindowBounds = field(init=False)
    _window_us: int = field(init=False)
    _silence_us: int = field(init=False)
    _excursion_us: int = field(init=False)
    _tolerance: float = field(init=False)

    def __post_init__(self) -> None:
        self._tolerance = self.th.tolerance_c + _EPSILON
        self._window_us = int(self.th.window_min * MINUTE)
        self._silence_us = int(self.th.silence_min * MINUTE)
        self._excursion_us = int(self.th.excursion_min * MINUTE)
        self._book = AlertBook(self.out, self.counts)
        self._bounds = WindowBounds(self._window_us)

    def process(self, records: Iterable[Record]) -> None:
        """Apply the rules to records in canonical order, collecting outputs."""
        reading = self._reading
        out = self.out
        for r in records:
            out.processed += 1
            if type(r) is Telemetry:
                reading(r)
            elif type(r) is Position:
                self._position(r)
            else:
                assert type(r) is DeadLetter
                self.counts["dead_letters"] += 1
                out.of(DLQ).append((r.source, to_json(r.to_json())))

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
            self.out.processed
            - totals["dead_letters"]
            - totals["positions"]
            - totals["late_positions"]
            - totals["late_readings"]
            - totals["duplicates"]
        )
        return totals

    @property
    def open_alerts(self) -> int:
        """Alerts open now, over all containers."""
        return sum(len(c.alerts) for c in self.containers.values())

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
        if rows:
            table = self.out.of(CONTAINER_STATE)
            for cid in sorted(self._dirty):
                table.append((cid, to_json(table_row(cid, self.containers[cid]))))
            self._dirty.clear()
        return self.out.take()

    # -- records ---------------------------------------------------------------------

    def _position(self, p: Position) -> None:
        v = self._vessel(p.vessel_id)
        if p.ts < v.position_time:
            self._late(p.vessel_id, p.raw, v.position_time - p.ts, "late_positions")
            return
        self.counts["positions"] += 1
        if v.add_position(p) and len(v.positions) > _PRUNE_POSITIONS_AT:
            lasts = [c.last.ts for c in self.containers.values() if c.vessel_id == p.vessel_id]
            v.prune_positions(min(lasts, default=v.position_time))

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
        book = self._book
        if c.alerts and SILENT in c.alerts:
            book.close(cid, c, SILENT, r.ts)
        if c.window is not None and r.ts >= c.window.start + self._window_us:
            self._close_window(cid, c)

        reason = implausible(r)
        if reason is None:
            if c.alerts and FAULT in c.alerts:
                book.close(cid, c, FAULT, r.ts)
            if not r.defrost:
                temp = r.temp_c
                dev = temp - r.setpoint_c
                out_of_range = abs(dev) > self._tolerance
                if out_of_range or c.excursion_start is not None:
                    alerts.excursion(book, cid, c, r, dev, pos, self._tolerance, self._excursion_us)
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
            if r.power_kw < NO_POWER_KW or c.no_power is not None:
                alerts.power(book, cid, c, r, pos)
            if r.door_open or (c.alerts and DOOR in c.alerts):
                alerts.door(book, cid, c, r, pos, self.th.door_speed_kn)
        elif FAULT not in c.alerts:
            book.open(cid, c, FAULT, r.ts, r.ts, pos, {"reason": reason})

        c.last, c.position = r, pos
        if not c.silence_timer:
            c.silence_timer = True
            heapq.heappush(v.timers, (r.ts + self._silence_us, TIMER_SILENCE, cid, r.ts))
        self._dirty.add(cid)

    # -- the vessel's clock ------------------------------------------------------------

    def _fire_timers(self, vessel_id: str, v: VesselClock) -> None:
        """The vessel's event time moved: open silences and close windows that are due."""
        timers, now = v.timers, v.event_time
        while timers and timers[0][0] < now:
            deadline, kind, cid, token = heapq.heappop(timers)
            c = self.containers[cid]
            if c.vessel_id != vessel_id:
                continue  # moved to another vessel, whose timers now watch it
            if kind == TIMER_WINDOW:
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
            detail = {"silence_min": self.th.silence_min}
            self._book.open(cid, c, SILENT, token, deadline, c.position, detail)
            self._dirty.add(cid)
            if c.window is not None:
                # An open window always ends after its container's last reading, so
                # only a silent container can need the vessel's time to close it.
                end = c.window.start + self._window_us
                heapq.heappush(timers, (end + self._silence_us, TIMER_WINDOW, cid, c.window.start))

    # -- outputs ---------------------------------------------------------------------

    def _close_window(self, cid: str, c: ContainerState) -> None:
        w = c.window
        assert w is not None
        c.window = None
        self.windows_closed += 1
        record = window_record(cid, c.vessel_id, w, self._bounds.of(w.start))
        self.out.of(WINDOWS).append((cid, record))

    def _late(self, key: str, raw: bytes, late_by_us: int, counter: str) -> None:
        self.counts[counter] += 1
        self.out.of(LATE).append((key, late_record(raw, late_by_us)))

    def _vessel(self, vessel_id: str) -> VesselClock:
        v = self.vessels.get(vessel_id)
        if v is None:
            v = self.vessels[vessel_id] = VesselClock()
        return v
