"""Stage 1, pure: each entity keeps its latest version and emits deltas when it changes.

`routes` sends a decoded record to the entities it is a version of; `step` keeps an
entity's latest version under a total order and returns the deltas of a change:
the old version's contributions to table rows, negated, plus the new version's.
So the rows' sums are always those of every entity's latest version, a function of
the set of records alone: duplicates and replays change nothing, arrival order
decides nothing, and any split of the entity keys over instances gives the same.

Entities (key prefix; versions ordered by; contributions of the latest version):

* `alert|alert_id`: state rank (open < closed = retracted), then digest. While open:
  the `open-alerts` row, +1 open alert of its kind on its vessel and in the `grid`
  cell and hour of its `started_at`; unless retracted, its `container-alerts` row
  and +1 alert of its kind in that `grid` row.
* `window|origin|container_id|start`: `revision`, then digest. +1 window, its
  readings, in-range window or excursion minutes, and its container, in `cargo`
  (band, hour) and `hourly` (vessel, hour); its vessel and container in its `grid`
  cell and hour; its `container-windows` row. `origin` (the topic's mirror alias)
  keeps apart the windows that two vessel flows close for one container and start
  (a transshipment within a window): each flow revises only its own, and both count.
* `state|container_id`: `ts`, then digest. The `container-state` row; +1 reefer
  aboard its vessel (a transshipped container moves to its new vessel).
* `latest-window|container_id`: (window start, `revision`, digest). +1 container
  out of range on the window's vessel when the window has an out-of-range reading.
* `position|vessel_id`, `late|digest`, `dlq|vessel|digest`: a fix, or one late or
  dead-letter record counted once (+1 `late` or `dead_letters` on its vessel).

Besides, every record that is not a duplicate of its entity's latest version offers
its event time to its vessel's `last_heard` (a MAX: every version counts, so
whether an older version arrived before or after a newer one does not matter),
and every fix its position to its vessel's `position`.
The digest (BLAKE2b-128 of the record's bytes) stands in for the bytes as the last
tie-break: the same total order on distinct records, in 16 bytes of state.
Imports only `flows.contract`, `flows.events`, `flows.timestamps` and `flows.fleet_core`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

import orjson

from flows.contract import OPEN, RETRACTED
from flows.events import Position, Telemetry
from flows.fleet_core import deltas as f
from flows.fleet_core.deltas import MAX, SET, SUM, Delta, net
from flows.fleet_core.inputs import AlertRecord, Record, StateRow, WindowRecord
from flows.fleet_core.names import (
    ALERTS_IN,
    CARGO,
    CONTAINER_ALERTS,
    CONTAINER_STATES,
    CONTAINER_WINDOWS,
    DLQ_IN,
    GRID,
    HOURLY,
    LATE_IN,
    OPEN_ALERTS,
    POSITION_IN,
    STATE_IN,
    VESSELS,
    WINDOWS_IN,
)
from flows.timestamps import format_ts

ALERT: Final = "alert"
WINDOW: Final = "window"
STATE: Final = "state"
LATEST_WINDOW: Final = "latest-window"
FIX: Final = "position"
LATE: Final = "late"
DEAD_LETTER: Final = "dlq"

_RANK: Final = {"open": 0, "closed": 1, "retracted": 1}

#: A version's place in its entity's total order.
Order = tuple[int | bytes, ...]


@dataclass(slots=True)
class Entity:
    """One entity's latest version (late and dead-letter entities: the one record)."""

    order: Order
    record: Record


def routes(record: Record) -> list[str]:
    """The keys of the entities a record is a version of."""
    v, kind = record.value, record.kind
    if kind == ALERTS_IN and isinstance(v, AlertRecord):
        return [f"{ALERT}|{v.alert_id}"]
    if kind == WINDOWS_IN and isinstance(v, WindowRecord):
        start = f.ts_us(v.window_start)
        return [
            f"{WINDOW}|{record.origin}|{v.container_id}|{start}",
            f"{LATEST_WINDOW}|{v.container_id}",
        ]
    if kind == STATE_IN and isinstance(v, StateRow):
        return [f"{STATE}|{v.container_id}"]
    if kind == POSITION_IN:
        return [f"{FIX}|{record.vessel_id}"]
    if kind == LATE_IN:
        return [f"{LATE}|{record.digest.hex()}"]
    if kind == DLQ_IN:
        return [f"{DEAD_LETTER}|{record.vessel_id}|{record.digest.hex()}"]
    raise ValueError(f"a {kind} record holding {type(v).__name__}")


def step(key: str, entity: Entity | None, record: Record) -> tuple[Entity, list[Delta]]:
    """Offer a record to the entity `key`; `(its state now, the deltas to send)`."""
    etype = key.partition("|")[0]
    if entity is not None and entity.record.digest == record.digest:
        return entity, []  # the same record again
    new = _order(etype, record)
    out = _offers(etype, record)
    if entity is None:
        out.extend(_contributions(etype, record))
        return Entity(new, record), out  # nothing to cancel: no need to net
    if new > entity.order:
        out.extend(d.negated() for d in _contributions(etype, entity.record))
        out.extend(_contributions(etype, record))
        entity = Entity(new, record)
    return entity, net(out)


def _order(etype: str, record: Record) -> Order:
    v, digest = record.value, record.digest
    if etype == ALERT and isinstance(v, AlertRecord):
        return (_RANK[v.state], digest)
    if etype == WINDOW and isinstance(v, WindowRecord):
        return (v.revision, digest)
    if etype == LATEST_WINDOW and isinstance(v, WindowRecord):
        return (f.ts_us(v.window_start), v.revision, digest)
    if etype == STATE and isinstance(v, StateRow):
        return (f.ts_us(v.ts), digest)
    if etype == FIX and isinstance(v, Position):
        return (v.ts, digest)
    return (digest,)  # late and dead letters: the first arrival stays


def _offers(etype: str, record: Record) -> list[Delta]:
    """The MAX deltas of a record: its event time, and a fix's position."""
    v, vessel = record.value, record.vessel_id
    if etype == ALERT and isinstance(v, AlertRecord):
        ts = max(f.ts_us(v.opened_at), f.ts_us(v.closed_at or v.opened_at))
    elif etype == WINDOW and isinstance(v, WindowRecord):
        ts = f.ts_us(v.window_start)
    elif etype == STATE and isinstance(v, StateRow):
        ts = f.ts_us(v.ts)
    elif etype == FIX and isinstance(v, Position):
        fix = orjson.dumps(
            {
                "ts": format_ts(v.ts),
                "lat": v.lat,
                "lon": v.lon,
                "sog_kn": v.sog_kn,
                "cog_deg": v.cog_deg,
            }
        ).decode()
        position = f"{f.sortable(v.ts)}|{record.digest.hex()}|{fix}"
        return [
            Delta(VESSELS.name, vessel, MAX, f.LAST_HEARD, f.sortable(v.ts), 1),
            Delta(VESSELS.name, vessel, MAX, f.POSITION, position, 1),
        ]
    elif etype == LATE and isinstance(v, Telemetry | Position):
        ts = v.ts
    else:
        return []  # the latest-window entity (its window entity offers), dead letters
    return [Delta(VESSELS.name, vessel, MAX, f.LAST_HEARD, f.sortable(ts), 1)]


def _contributions(etype: str, record: Record) -> list[Delta]:
    """What one version adds to table rows (SUM and SET deltas; negated when replaced)."""
    v, vessel = record.value, record.vessel_id
    if etype == ALERT and isinstance(v, AlertRecord):
        return _alert(v)
    if etype == WINDOW and isinstance(v, WindowRecord):
        return _window(v, record.origin)
    if etype == STATE and isinstance(v, StateRow):
        return [
            Delta(CONTAINER_STATES.name, v.container_id, SET, f.ROW, record.raw.decode(), 1),
            Delta(VESSELS.name, vessel, SUM, f.REEFERS, "", 1),
        ]
    if etype == LATEST_WINDOW and isinstance(v, WindowRecord):
        if v.out_of_range == 0:
            return []
        return [Delta(VESSELS.name, vessel, SUM, f.OUT_OF_RANGE_CONTAINERS, "", 1)]
    if etype == LATE:
        return [Delta(VESSELS.name, vessel, SUM, f.LATE, "", 1)]
    if etype == DEAD_LETTER:
        return [Delta(VESSELS.name, vessel, SUM, f.DEAD_LETTERS, "", 1)]
    return []  # a fix only offers (MAX)


#: The fields of an `open-alerts` row and of a `container-alerts` row, in their order.
OPEN_ALERT_FIELDS: Final = (
    "alert_id", "kind", "vessel_id", "container_id", "since", "opened_at", "lat", "lon", "detail"
)  # fmt: skip
CONTAINER_ALERT_FIELDS: Final = (
    "alert_id", "kind", "state", "vessel_id", "container_id", "since", "closed_at", "lat", "lon"
)  # fmt: skip


def alert_row(a: AlertRecord, fields: tuple[str, ...]) -> str:
    """An alert's table row: these fields of it (`since` is its `started_at`), as JSON."""
    values = {
        "alert_id": a.alert_id,
        "kind": a.kind,
        "state": a.state,
        "vessel_id": a.vessel_id,
        "container_id": a.container_id,
        "since": a.started_at,
        "opened_at": a.opened_at,
        "closed_at": a.closed_at,
        "lat": a.lat,
        "lon": a.lon,
        "detail": a.detail,
    }
    return orjson.dumps({name: values[name] for name in fields}).decode()


def container_window_row(w: WindowRecord) -> str:
    """The `container-windows` row of a window's highest revision."""
    row = {
        "container_id": w.container_id,
        "vessel_id": w.vessel_id,
        "window_start": w.window_start,
        "window_end": w.window_end,
        "count": w.count,
        "temp_min": w.temp_min,
        "temp_max": w.temp_max,
        "temp_mean": w.temp_mean,
        "setpoint_c": w.setpoint_c,
        "out_of_range": w.out_of_range,
        "revision": w.revision,
    }
    return orjson.dumps(row).decode()


def _alert(a: AlertRecord) -> list[Delta]:
    out: list[Delta] = []
    is_open = a.state == OPEN
    if a.state != RETRACTED:
        key = f.container_alert_key(a.container_id, a.alert_id)
        row = alert_row(a, CONTAINER_ALERT_FIELDS)
        out.append(Delta(CONTAINER_ALERTS.name, key, SET, f.ROW, row, 1))
    if is_open:
        row = alert_row(a, OPEN_ALERT_FIELDS)
        out.append(Delta(OPEN_ALERTS.name, a.alert_id, SET, f.ROW, row, 1))
        out.append(Delta(VESSELS.name, a.vessel_id, SUM, f.OPEN_BY_KIND, a.kind, 1))
    if a.state != RETRACTED and a.lat is not None and a.lon is not None:
        key = f.grid_key(f.hour_of(f.ts_us(a.started_at)), f.cell(a.lat, a.lon))
        out.append(Delta(GRID.name, key, SUM, f.ALERTS_BY_KIND, a.kind, 1))
        if is_open:
            out.append(Delta(GRID.name, key, SUM, f.OPEN_BY_KIND, a.kind, 1))
    return out


def _window(w: WindowRecord, origin: str) -> list[Delta]:
    start = f.ts_us(w.window_start)
    hour = f.hour_of(start)
    cid, n, bad = w.container_id, w.count, w.out_of_range
    history = f.container_window_key(cid, format_ts(start), origin)
    cargo = f.cargo_key(hour, f.band(w.setpoint_c))
    hourly = f.hourly_key(w.vessel_id, hour)
    deviation = (f.milli(w.temp_mean) - f.milli(w.setpoint_c)) * n
    minutes = (f.ts_us(w.window_end) - start) // f.US_PER_MIN
    out = [
        Delta(CARGO.name, cargo, SET, f.CONTAINERS, cid, 1),
        Delta(CARGO.name, cargo, SUM, f.WINDOWS, "", 1),
        Delta(CARGO.name, cargo, SUM, f.READINGS, "", n),
        Delta(CARGO.name, cargo, SUM, f.IN_RANGE, "", 1 if bad == 0 else 0),
        Delta(CARGO.name, cargo, SUM, f.EXCURSION_MIN, "", minutes if bad > 0 else 0),
        Delta(HOURLY.name, hourly, SET, f.CONTAINERS, cid, 1),
        Delta(HOURLY.name, hourly, SUM, f.WINDOWS, "", 1),
        Delta(HOURLY.name, hourly, SUM, f.READINGS, "", n),
        Delta(HOURLY.name, hourly, SUM, f.OUT_OF_RANGE, "", bad),
        Delta(HOURLY.name, hourly, SUM, f.DEVIATION, "", deviation),
        Delta(CONTAINER_WINDOWS.name, history, SET, f.ROW, container_window_row(w), 1),
    ]
    if w.lat is not None and w.lon is not None:
        grid = f.grid_key(hour, f.cell(w.lat, w.lon))
        out.append(Delta(GRID.name, grid, SET, f.VESSEL_IDS, w.vessel_id, 1))
        out.append(Delta(GRID.name, grid, SET, f.CONTAINERS, cid, 1))
    return out


@dataclass(slots=True)
class EntityStage:
    """One stage-1 instance: the entities routed to it, by key."""

    entities: dict[str, Entity] = field(default_factory=dict)

    def apply(self, key: str, record: Record) -> list[Delta]:
        """Offer a record to the entity `key`; the deltas to send to stage 2."""
        entity, out = step(key, self.entities.get(key), record)
        self.entities[key] = entity
        return out

    def apply_batch(self, items: Iterable[tuple[str, Record]]) -> list[Delta]:
        """Offer many `(entity key, record)`; their deltas, netted (`deltas.net`)."""
        out: list[Delta] = []
        for key, record in items:
            out.extend(self.apply(key, record))
        return net(out)
