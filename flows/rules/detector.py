"""The `Detector`: applies every rule to records in canonical order (see `flows.watermark`).

Per record: a record far ahead of its vessel's clock is held (`flows.rules.holding`);
a reading that repeats or precedes its container's latest is set aside as a duplicate
or late; otherwise the vessel's clock moves (firing due silences and window closes),
then the alert rules and the window run. Changed containers are remembered for the
table, whose rows go out in batches.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from flows.contract import (
    CLOSED,
    CONTAINER_STATE,
    DLQ,
    DOOR,
    FAULT,
    LATE,
    POWER_UNSTABLE,
    RETRACTED,
    SILENT,
    WINDOWS,
)
from flows.events import DeadLetter, Position, Record, Telemetry, format_ts
from flows.rules import alerts
from flows.rules.alerts import NO_POWER_KW, AlertBook, AtmosphereLimits, implausible
from flows.rules.clock import MINUTE, TIMER_SILENCE, TIMER_WINDOW, VesselClock
from flows.rules.container import ContainerState, Window, table_row
from flows.rules.holding import CORROBORATING_SOURCES, POSITION_SOURCE, Held
from flows.rules.records import Outputs, late_record, origin, to_json
from flows.rules.thresholds import Thresholds
from flows.rules.windows import WindowBounds, window_record

_PRUNE_POSITIONS_AT: Final = 4096
# Comparisons allow for binary floating point, so that 15.3 - 13.3 counts as exactly 2.0.
_EPSILON: Final = 1e-9
_HOUR: Final = 60 * MINUTE


@dataclass(slots=True)
class Detector:
    """Applies the contract's rules to records in canonical order."""

    th: Thresholds
    containers: dict[str, ContainerState] = field(default_factory=dict)
    vessels: dict[str, VesselClock] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    out: Outputs = field(default_factory=Outputs)
    windows_emitted: int = 0  # a plain int: counted for nearly every reading
    _dirty: set[str] = field(default_factory=set)
    _book: AlertBook = field(init=False)
    _bounds: WindowBounds = field(init=False)
    _atmos: AtmosphereLimits = field(init=False)
    _window_us: int = field(init=False)
    _silence_us: int = field(init=False)
    _excursion_us: int = field(init=False)
    _ahead_us: int = field(init=False)
    _unstable_us: int = field(init=False)
    _tolerance: float = field(init=False)

    def __post_init__(self) -> None:
        th = self.th
        self._tolerance = th.tolerance_c + _EPSILON
        self._window_us = th.window_min * MINUTE
        self._silence_us = int(th.silence_min * MINUTE)
        self._excursion_us = int(th.excursion_min * MINUTE)
        self._ahead_us = int(th.max_ahead_min * MINUTE)
        self._unstable_us = int(th.power_unstable_hours * _HOUR)
        self._atmos = AtmosphereLimits(
            th.co2_max_pct + _EPSILON,
            th.o2_min_pct - _EPSILON,
            th.atmos_tolerance_pct + _EPSILON,
            int(th.atmos_min * MINUTE),
        )
        self._book = AlertBook(self.out, self.counts)
        self._bounds = WindowBounds(self._window_us)

    def process(self, records: Iterable[Record]) -> None:
        """Apply the rules to records in canonical order, collecting outputs."""
        out, vessels = self.out, self.vessels
        for r in records:
            out.processed += 1
            if isinstance(r, DeadLetter):
                self._dead_letter(r)
                continue
            v = vessels.get(r.vessel_id)
            if v is None:
                v = vessels[r.vessel_id] = VesselClock()
            if r.ts > v.bound:
                self._hold(v, r)
            elif isinstance(r, Telemetry):
                self._reading(r, v)
            else:
                self._position(r, v)

    def end_of_input(self) -> None:
        """The input ended: held records are dead-lettered, pending windows emitted
        (alerts stay open). May be called again after more input (a resumed run)."""
        for vid in sorted(self.vessels):
            v = self.vessels[vid]
            for h in v.holding.release(lambda _: True):
                self._drop_held(vid, h, "the input had ended with no other source corroborating it")
        for cid in sorted(self.containers):
            c = self.containers[cid]
            if c.window is not None and c.window.pending:
                self._emit_window(cid, c.window)

    def totals(self) -> Counter[str]:
        """Counts for progress lines and the summary, readings and windows included."""
        totals = self.counts.copy()
        totals["windows"] = self.windows_emitted
        totals["held"] = sum(len(v.holding.held) for v in self.vessels.values())
        # Every record is a reading, a position or a dead letter, and a reading is
        # processed unless it was late, a duplicate or is held.
        totals["readings"] = (
            self.out.processed
            - totals["dead_letters"]
            - totals["positions"]
            - totals["late_positions"]
            - totals["late_readings"]
            - totals["duplicates"]
            - totals["held"]
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

    def _position(self, p: Position, v: VesselClock) -> None:
        if p.ts < v.position_time:
            self._late(p.vessel_id, p.raw, v.position_time - p.ts, "late_positions")
            return
        self.counts["positions"] += 1
        v.holding.saw(POSITION_SOURCE)
        if v.add_position(p) and len(v.positions) > _PRUNE_POSITIONS_AT:
            lasts = [c.last.ts for c in self.containers.values() if c.vessel_id == p.vessel_id]
            v.prune_positions(min(lasts, default=v.position_time))
        if p.ts > v.event_time:
            self._advance(p.vessel_id, v, p.ts)

    def _reading(self, r: Telemetry, v: VesselClock) -> None:
        cid = r.container_id
        c = self.containers.get(cid)
        if c is not None and r.ts <= c.last.ts:
            if r.ts == c.last.ts:
                self.counts["duplicates"] += 1
            else:
                self._late(cid, r.raw, c.last.ts - r.ts, "late_readings")
            return
        if v.learning:
            v.holding.saw(cid)
            v.learning = len(v.holding.sources) < CORROBORATING_SOURCES
        if r.ts > v.event_time:
            self._advance(r.vessel_id, v, r.ts)
        pos = v.position_at(r.ts)
        if c is None:
            c = self.containers[cid] = ContainerState(r.vessel_id, r)
        elif c.vessel_id != r.vessel_id:  # transshipped: the new vessel's clock rules
            c.vessel_id, c.silence_timer = r.vessel_id, False
        book = self._book
        if c.alerts and SILENT in c.alerts:
            # A reading dated before the silence opened shows the container was never
            # silent that long: its readings were delayed, not missing.
            silent = c.alerts[SILENT]
            state = RETRACTED if r.ts < silent.opened_at else CLOSED
            book.close(cid, c, SILENT, r.ts, state)
        w = c.window
        if w is not None and r.ts >= w.end:
            if w.pending:
                self._emit_window(cid, w)
            w = c.window = None

        temp, co2, o2, hum = r.temp_c, r.co2_pct, r.o2_pct, r.humidity_pct
        # `implausible()` spelled out: this runs for nearly every reading.
        if (
            -70.0 <= temp <= 70.0
            and (co2 is None or 0.0 <= co2 <= 30.0)
            and (o2 is None or 0.0 <= o2 <= 30.0)
            and (hum is None or 0.0 <= hum <= 100.0)
        ):
            if c.alerts and FAULT in c.alerts:
                book.close(cid, c, FAULT, r.ts)
            if not r.defrost:
                dev = temp - r.setpoint_c
                out_of_range = abs(dev) > self._tolerance
                if out_of_range or c.excursion_start is not None:
                    alerts.excursion(book, cid, c, r, dev, pos, self._tolerance, self._excursion_us)
                # Count the reading in its window (inline: this runs for nearly every one).
                if w is None:
                    start = r.ts - r.ts % self._window_us
                    w = c.window = Window(
                        start, start + self._window_us, r.vessel_id, 0, temp, temp
                    )
                else:
                    if temp < w.temp_min:
                        w.temp_min = temp
                    elif temp > w.temp_max:
                        w.temp_max = temp
                    if w.revision >= 0 and not w.pending:
                        self._revise_later(r.vessel_id, v, cid, w)
                    w.pending, w.vessel_id = True, r.vessel_id
                w.count += 1
                w.temp_sum += temp
                w.power_sum += r.power_kw
                w.out_of_range += out_of_range
                w.setpoint_c = r.setpoint_c
                w.position = pos
            unstable = c.alerts and POWER_UNSTABLE in c.alerts
            if r.power_kw < NO_POWER_KW or c.no_power is not None or unstable:
                alerts.power(book, cid, c, r, pos, self.th.power_unstable_count, self._unstable_us)
            if r.door_open or (c.alerts and DOOR in c.alerts):
                alerts.door(book, cid, c, r, pos, self.th.door_speed_kn)
            if co2 is not None or o2 is not None or c.gas is not None:
                alerts.atmosphere(book, cid, c, r, v, self._atmos)
        elif FAULT not in c.alerts:
            book.open(cid, c, FAULT, r.ts, r.ts, pos, {"reason": implausible(r)})

        c.last, c.position = r, pos
        if not c.silence_timer:
            c.silence_timer = True
            heapq.heappush(v.timers, (r.ts + self._silence_us, TIMER_SILENCE, cid, r.ts))
        self._dirty.add(cid)

    # -- the vessel's clock ------------------------------------------------------------

    def _advance(self, vessel_id: str, v: VesselClock, ts: int) -> None:
        """Move the vessel's event time: fire due timers, drop stale held records."""
        v.event_time, v.bound = ts, ts + self._ahead_us
        if v.timers and v.timers[0][0] < ts:  # checked here: time moves on most readings
            self._fire_timers(vessel_id, v)
        if v.holding.held and not v.jumping:
            self._expire(vessel_id, v)

    def _expire(self, vessel_id: str, v: VesselClock) -> None:
        """Dead-letter held records the clock has moved `max_ahead` past since they came."""
        horizon = v.event_time - self._ahead_us
        for h in v.holding.release(lambda h: h.held_at <= horizon):
            self._drop_held(vessel_id, h, "no other source had corroborated it")

    def _hold(self, v: VesselClock, r: Telemetry | Position) -> None:
        evicted = v.holding.hold(r, v.event_time)
        if evicted is not None:
            self._drop_held(r.vessel_id, evicted, "the vessel was holding 10,000 records")
        group = v.holding.corroborated(r, self._ahead_us)
        if not group:
            return
        self.counts["clock_jumps"] += 1
        v.jumping = True  # the records held before the jump are judged after it
        self._release(group)
        # The clock has really moved: held records it no longer leads are ordinary now.
        caught_up = v.holding.release(lambda h: h.record.ts <= v.bound)
        self._release(sorted(caught_up, key=lambda h: (h.record.ts, h.seq)))
        v.jumping = False
        self._expire(r.vessel_id, v)

    def _release(self, held: list[Held]) -> None:
        for h in held:
            r = h.record
            v = self.vessels[r.vessel_id]
            if isinstance(r, Telemetry):
                self._reading(r, v)
            else:
                self._position(r, v)

    def _drop_held(self, vessel_id: str, h: Held, why: str) -> None:
        r, now = h.record, self.vessels[vessel_id].event_time
        error = (
            f"ts: {format_ts(r.ts)} was more than {self.th.max_ahead_min:g} minutes ahead of "
            f"vessel {vessel_id}'s event time when it came ({format_ts(h.held_at)}); "
            f"by {format_ts(now)} {why}"
        )
        self.counts["held_dead_letters"] += 1
        self._dead_letter(DeadLetter(error, origin(r), r.raw))

    def _fire_timers(self, vessel_id: str, v: VesselClock) -> None:
        """The vessel's event time moved: open silences and emit windows that are due."""
        timers, now = v.timers, v.event_time
        while timers and timers[0][0] < now:
            deadline, kind, cid, token = heapq.heappop(timers)
            c = self.containers[cid]
            if c.vessel_id != vessel_id:
                continue  # moved to another vessel, whose timers now watch it
            if kind == TIMER_WINDOW:
                w = c.window
                if w is not None and w.start == token and w.pending:
                    self._emit_window(cid, w)
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
                # A window always ends after its container's last reading, so only a
                # silent container can need the vessel's time to emit it.
                self._revise_later(vessel_id, v, cid, c.window)

    def _revise_later(self, vessel_id: str, v: VesselClock, cid: str, w: Window) -> None:
        """Emit the window once the vessel's time passes its end by the silence threshold."""
        heapq.heappush(v.timers, (w.end + self._silence_us, TIMER_WINDOW, cid, w.start))

    # -- outputs ---------------------------------------------------------------------

    def _emit_window(self, cid: str, w: Window) -> None:
        w.revision += 1
        w.pending = False
        self.windows_emitted += 1
        record = window_record(cid, w, self._bounds.of(w.start))
        self.out.of(WINDOWS).append((cid, record))

    def _late(self, key: str, raw: bytes, late_by_us: int, counter: str) -> None:
        self.counts[counter] += 1
        self.out.of(LATE).append((key, late_record(raw, late_by_us)))

    def _dead_letter(self, dead: DeadLetter) -> None:
        self.counts["dead_letters"] += 1
        self.out.of(DLQ).append((dead.source, to_json(dead.to_json())))
