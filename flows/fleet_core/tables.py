"""Stage 2, pure: each fleet table row folds its deltas, and encodes to stable JSON.

A row's state (`Row`) is the sum of every delta it was sent, whatever their order:
counters (SUM), member counts (SET) and maxima (MAX); see `flows.fleet_core.deltas`. A
row encodes to JSON with its fields in the order below, or to None (deleted) when
it holds nothing: no counter or member count other than 0 and no maximum. `fold`
applies a row's deltas of one change and says whether the encoded row changed, so
that a compacted topic receives only real changes (None: a tombstone).

The tables (key; fields; the row changes when; it is deleted when):

* `container-state` (`container_id`): the vessel flow's container-state row, as it
  wrote it, of the container's latest state fleet-wide: greatest `ts`, then
  greatest record digest. Changes with that state. Never deleted.
* `open-alerts` (`alert_id`): `alert_id, kind, vessel_id, container_id, since`
  (`started_at`), `opened_at, lat, lon` (the position at `since`), `detail`, from
  the alert's open record, while its latest record (open, then closed or retracted;
  ties by digest) is open. Deleted when the alert closes or is retracted.
* `vessels` (`vessel_id`): `last_heard`, the latest event time among the vessel's
  records (fix and state `ts`, an alert's `opened_at` or `closed_at`, a window's
  `window_start`, a late record's `ts`; never a dead letter's); `position`, its
  latest fix (`ts, lat, lon, sog_kn, cog_deg`; greatest `ts`, then digest) or null
  (fixes are the vessel's raw input, which no vessel clock vetted: a far-future fix
  that the vessel flow dead-lettered still moves `position` and `last_heard`);
  `reefers_aboard`, the containers whose latest state names the vessel;
  `open_alerts`, kind -> alerts whose latest record is open and names the vessel
  (kinds with a count, in the contract's order); `out_of_range_containers`, the
  containers whose latest window (greatest `window_start`, then `revision`) names
  the vessel and has `out_of_range` > 0; `dead_letters` and `late`, its distinct
  dead-letter and late records. Never deleted: `last_heard` and those two counts
  only grow.
* `cargo` (`hour|band`, the hour of `window_start`, the band of the window's
  `setpoint_c`): from each window's highest revision (a window: one vessel flow's,
  for one container and start; see `flows.fleet_core.entities`): `hour, band`, `containers`
  (distinct), `windows`, `readings` (sum of `count`), `windows_in_range`
  (`out_of_range` = 0), `in_range_share` (their share, 4 decimals), and
  `excursion_min`, the minutes of windows with an out-of-range reading (each
  counts its whole length). Deleted when no window is left (revisions move them).
* `grid` (`hour|lat_min|lon_min`, 5° cells): `hour, lat_min, lat_max, lon_min,
  lon_max`; `vessels` and `containers`, distinct, of the windows (highest revision)
  with a position in the cell and a `window_start` in the hour; `alerts`, kind ->
  alerts whose position (at `started_at`) is in the cell and `started_at` in the
  hour, unless retracted; `open_alerts`, kind -> those of them still open. Deleted
  when all are 0.
* `hourly` (`vessel_id|hour`): from each window's highest revision naming the vessel,
  with `window_start` in the hour: `vessel_id, hour, containers` (distinct),
  `windows, readings, out_of_range` (sum of `out_of_range`), `mean_deviation_c`,
  the mean of `temp_mean - setpoint_c` over the readings (each in thousandths of a
  degree; 3 decimals). Deleted when no window is left.
* `container-windows` (`container_id|window_start|origin`, `window_start` as RFC 3339
  UTC, `origin` the mirror alias of the vessel flow that closed it): each window's
  highest revision, `container_id, vessel_id, window_start, window_end, count,
  temp_min, temp_max, temp_mean, setpoint_c, out_of_range, revision`: a container's
  history in key order (the dashboard's chart). Changes with a revision; never deleted.
* `container-alerts` (`container_id|alert_id`): every alert's latest record unless it
  was retracted, `alert_id, kind, state, vessel_id, container_id, since, closed_at,
  lat, lon`. Changes when the alert closes; deleted when it is retracted.

Imports only `flows.contract`, `flows.timestamps` and `flows.fleet_core`'s `names`, `deltas`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from flows.contract import ALERT_KINDS
from flows.fleet_core import deltas as f
from flows.fleet_core.deltas import MAX, SET, SUM, Delta, split_row_id
from flows.fleet_core.names import CARGO, GRID, HOURLY, UPSERT_TABLES, VESSELS
from flows.timestamps import format_ts

_KIND_ORDER: Final = {kind: i for i, kind in enumerate(ALERT_KINDS)}

#: One change of a table: `(table, key, encoded row)`, None when the row was deleted.
Change = tuple[str, str, bytes | None]


@dataclass(slots=True)
class Row:
    """What one row has been sent: the sum of its deltas, and what it last emitted.

    Attributes:
        sums: `(field, member)` -> counter; counters at 0 are dropped.
        sets: field -> member -> count; counts at 0 are dropped, then empty fields.
        maxes: field -> greatest member offered.
        emitted: The encoding last emitted (None: none, or a deletion).
    """

    sums: dict[tuple[str, str], int] = field(default_factory=dict)
    sets: dict[str, dict[str, int]] = field(default_factory=dict)
    maxes: dict[str, str] = field(default_factory=dict)
    emitted: bytes | None = None

    def apply(self, d: Delta) -> None:
        """Add one delta."""
        if d.op == SUM:
            target = (d.field, d.member)
            n = self.sums.get(target, 0) + d.amount
            if n:
                self.sums[target] = n
            else:
                self.sums.pop(target, None)
        elif d.op == SET:
            members = self.sets.setdefault(d.field, {})
            n = members.get(d.member, 0) + d.amount
            if n:
                members[d.member] = n
            else:
                members.pop(d.member, None)
                if not members:
                    del self.sets[d.field]
        elif d.op == MAX:
            best = self.maxes.get(d.field)
            if best is None or d.member > best:
                self.maxes[d.field] = d.member
        else:
            raise ValueError(f"unknown delta op {d.op!r}")

    def holds_nothing(self) -> bool:
        """Whether every counter and member count is 0 and no maximum was offered."""
        return not self.sums and not self.sets and not self.maxes

    def count(self, name: str, member: str = "") -> int:
        """A counter's value."""
        return self.sums.get((name, member), 0)

    def distinct(self, name: str) -> int:
        """How many members of a SET field have a count above 0."""
        return sum(1 for n in self.sets.get(name, {}).values() if n > 0)

    def by_kind(self, name: str) -> dict[str, int]:
        """A counter per alert kind: kinds with a count, the contract's kinds first."""
        kinds = [m for (fname, m), n in self.sums.items() if fname == name and n]
        kinds.sort(key=lambda k: (_KIND_ORDER.get(k, len(_KIND_ORDER)), k))
        return {k: self.sums[(name, k)] for k in kinds}

    def content(self) -> str | None:
        """An upsert row's JSON: its member with a count above 0 (the greatest, if several)."""
        members = [m for m, n in self.sets.get(f.ROW, {}).items() if n > 0]
        return max(members) if members else None


def fold(
    table: str, key: str, row: Row | None, deltas: Iterable[Delta]
) -> tuple[Row | None, Change | None]:
    """Apply a row's deltas; `(row state to keep, change to emit or None)`.

    The state is None once the row holds nothing and its deletion was emitted.
    """
    if row is None:
        row = Row()
    for d in deltas:
        row.apply(d)
    encoded = encode(table, key, row)
    change: Change | None = None
    if encoded != row.emitted:
        row.emitted = encoded
        change = (table, key, encoded)
    if row.holds_nothing() and row.emitted is None:
        return None, change
    return row, change


def encode(table: str, key: str, row: Row) -> bytes | None:
    """A row's JSON, fields in their fixed order; None when the row is deleted."""
    if table in UPSERT_TABLES:
        content = row.content()
        return None if content is None else content.encode()
    if row.holds_nothing():
        return None
    obj = _ENCODERS[table](key, row)
    return orjson.dumps(obj)


def _vessel(key: str, row: Row) -> dict[str, Any]:
    heard = row.maxes.get(f.LAST_HEARD)
    fix = row.maxes.get(f.POSITION)
    return {
        "vessel_id": key,
        "last_heard": None if heard is None else format_ts(int(heard)),
        "position": None if fix is None else orjson.loads(fix.split("|", 2)[2]),
        "reefers_aboard": row.count(f.REEFERS),
        "open_alerts": row.by_kind(f.OPEN_BY_KIND),
        "out_of_range_containers": row.count(f.OUT_OF_RANGE_CONTAINERS),
        "dead_letters": row.count(f.DEAD_LETTERS),
        "late": row.count(f.LATE),
    }


def _cargo(key: str, row: Row) -> dict[str, Any]:
    hour, band = key.split("|")
    windows, in_range = row.count(f.WINDOWS), row.count(f.IN_RANGE)
    return {
        "hour": hour,
        "band": band,
        "containers": row.distinct(f.CONTAINERS),
        "windows": windows,
        "readings": row.count(f.READINGS),
        "windows_in_range": in_range,
        "in_range_share": round(in_range / windows, 4) if windows > 0 else None,
        "excursion_min": row.count(f.EXCURSION_MIN),
    }


def _grid(key: str, row: Row) -> dict[str, Any]:
    hour, lat, lon = key.split("|")
    lat_min, lon_min = int(lat), int(lon)
    return {
        "hour": hour,
        "lat_min": lat_min,
        "lat_max": lat_min + f.CELL_DEG,
        "lon_min": lon_min,
        "lon_max": lon_min + f.CELL_DEG,
        "vessels": row.distinct(f.VESSEL_IDS),
        "containers": row.distinct(f.CONTAINERS),
        "alerts": row.by_kind(f.ALERTS_BY_KIND),
        "open_alerts": row.by_kind(f.OPEN_BY_KIND),
    }


def _hourly(key: str, row: Row) -> dict[str, Any]:
    vessel_id, hour = key.split("|")
    readings = row.count(f.READINGS)
    deviation = row.count(f.DEVIATION)
    return {
        "vessel_id": vessel_id,
        "hour": hour,
        "containers": row.distinct(f.CONTAINERS),
        "windows": row.count(f.WINDOWS),
        "readings": readings,
        "out_of_range": row.count(f.OUT_OF_RANGE),
        "mean_deviation_c": round(deviation / readings / 1000, 3) if readings > 0 else None,
    }


_ENCODERS: Final = {
    VESSELS.name: _vessel,
    CARGO.name: _cargo,
    GRID.name: _grid,
    HOURLY.name: _hourly,
}


@dataclass(slots=True)
class TableStage:
    """One stage-2 instance: the rows routed to it, by stage-2 key (`deltas.row_id`).

    Attributes:
        rows: Stage-2 key -> row state (rows that hold nothing and were never
            emitted, or whose deletion was emitted, are dropped).
    """

    rows: dict[str, Row] = field(default_factory=dict)

    def apply(self, rid: str, deltas: Iterable[Delta]) -> Change | None:
        """Fold deltas into the row `rid`; the change to emit, if any."""
        table, key = split_row_id(rid)
        row, change = fold(table, key, self.rows.get(rid), deltas)
        if row is None:
            self.rows.pop(rid, None)
        else:
            self.rows[rid] = row
        return change

    def apply_batch(self, messages: Iterable[tuple[str, Iterable[Delta]]]) -> list[Change]:
        """Fold many rows' deltas, then encode each row once: its changes, rows in
        first-touched order. The rows end as `apply` leaves them; a row that changes
        and changes back within the batch emits nothing."""
        touched: dict[str, Row] = {}
        for rid, deltas in messages:
            row = touched.get(rid) or self.rows.get(rid) or Row()
            for d in deltas:
                row.apply(d)
            touched[rid] = row
        changes: list[Change] = []
        for rid, row in touched.items():
            table, key = split_row_id(rid)
            kept, change = fold(table, key, row, ())
            if kept is None:
                self.rows.pop(rid, None)
            else:
                self.rows[rid] = kept
            if change is not None:
                changes.append(change)
        return changes

    def resync(self, rid: str) -> Change:
        """The row `rid` as it is now (None: absent), to emit whatever was emitted before.

        After a resume from a snapshot, the rows written since that snapshot may hold
        values the replay never writes again: records replayed in another order can
        leave a row untouched (an older version arriving after a newer one is a
        no-op) or end it where it was (a member count 1 -> 2 -> 1 shows no change).
        The edge re-emits every row written after the snapshot with this.
        """
        table, key = split_row_id(rid)
        row = self.rows.get(rid)
        encoded = None if row is None else encode(table, key, row)
        if row is not None:
            row.emitted = encoded
        return (table, key, encoded)

    def tables(self) -> dict[str, dict[str, bytes]]:
        """Every row that exists now: table name -> key -> encoded row."""
        out: dict[str, dict[str, bytes]] = {}
        for rid, row in self.rows.items():
            if row.emitted is not None:
                table, key = split_row_id(rid)
                out.setdefault(table, {})[key] = row.emitted
        return out
