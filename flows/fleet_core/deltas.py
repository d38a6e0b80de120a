"""Deltas, the one message between the fleet's two stages, and the table rows' keys.

Stage 1 (`flows.fleet_core.entities`) turns records into deltas; stage 2
(`flows.fleet_core.tables`) folds the deltas of each row. A `Delta` is one change to one
field of one row, of one of three kinds:

* `SUM`: add `amount` to the counter `(field, member)` (`member` is "" for a plain
  counter, an alert kind for a count by kind). Counters are integers, so sums are
  exact and their order never matters (a float sum would depend on it).
* `SET`: add `amount` to the count of `member` in the multiset `field`. The field's
  value is how many members have a count above 0 (a distinct count), or, for the
  upsert tables' `ROW`, the member itself: the row's JSON.
* `MAX`: offer `member` to the field `field`, whose value is the greatest member
  offered (as strings: `sortable` pads times so that string order is time order).
  Never retracted, so `amount` is unused (1): a maximum only grows.

SUM and SET deltas come in pairs over time (a version's +1, then its -1 when a later
version replaces it), so a row's final fields are the sums of its entities' latest
contributions. Row keys join their parts with `|`, which no id may contain. Pure:
imports only `flows.timestamps` and `flows.fleet_core.names`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import lru_cache
from typing import Final, Literal, NamedTuple

from flows.fleet_core.names import CHILLED, FROZEN, WARM
from flows.timestamps import US_PER_S, format_ts, parse_ts

Op = Literal["sum", "set", "max"]
SUM: Final[Op] = "sum"
SET: Final[Op] = "set"
MAX: Final[Op] = "max"

US_PER_MIN: Final = 60 * US_PER_S
US_PER_HOUR: Final = 3600 * US_PER_S
#: Grid cells are this many degrees square.
CELL_DEG: Final = 5


class Delta(NamedTuple):
    """One change to one field of one table row (see the module docstring)."""

    table: str
    key: str
    op: Op
    field: str
    member: str
    amount: int

    def negated(self) -> Delta:
        """The delta that undoes this one (MAX deltas are never undone)."""
        return self._replace(amount=-self.amount)


def row_id(table: str, key: str) -> str:
    """The stage-2 key of a row: its table's name, `:`, its key."""
    return f"{table}:{key}"


def split_row_id(rid: str) -> tuple[str, str]:
    """`(table, key)` of a stage-2 key."""
    table, _, key = rid.partition(":")
    return table, key


def net(deltas: Iterable[Delta]) -> list[Delta]:
    """Deltas that add up to the same as `deltas`, at most one per target, in a fixed order.

    SUM and SET deltas to the same target are added up and dropped when they cancel;
    MAX deltas to the same field keep only the greatest. The result is sorted, so the
    same changes always give the same list.
    """
    sums: dict[tuple[str, str, Op, str, str], int] = {}
    maxes: dict[tuple[str, str, str], str] = {}
    for d in deltas:
        if d.op == MAX:
            target = (d.table, d.key, d.field)
            best = maxes.get(target)
            if best is None or d.member > best:
                maxes[target] = d.member
        else:
            target5 = (d.table, d.key, d.op, d.field, d.member)
            sums[target5] = sums.get(target5, 0) + d.amount
    out = [Delta(*t, n) for t, n in sums.items() if n != 0]
    out.extend(Delta(t, k, MAX, f, m, 1) for (t, k, f), m in maxes.items())
    out.sort()
    return out


def by_row(deltas: Iterable[Delta]) -> list[tuple[str, list[Delta]]]:
    """Deltas grouped by row, as `(stage-2 key, deltas)`, rows in first-seen order.

    Stage 1 sends each row its deltas of one change together, so that stage 2 never
    shows a row halfway through a change (a window's container counted, not yet its
    vessel).
    """
    rows: dict[str, list[Delta]] = {}
    for d in deltas:
        rows.setdefault(row_id(d.table, d.key), []).append(d)
    return list(rows.items())


#: `flows.timestamps.parse_ts`, remembered: a fleet's records share their times (windows
#: align to the quarter hour, a vessel's records to its clock), and a record's times
#: are read several times on its way (routing, ordering, contributions).
ts_us = lru_cache(maxsize=1 << 16)(parse_ts)


# -- keys and their parts ----------------------------------------------------------


def sortable(ts_us: int) -> str:
    """A time as a MAX member: 20 digits, so that string order is time order."""
    return f"{ts_us:020d}"


def hour_of(ts_us: int) -> str:
    """The UTC hour a time falls in, as the RFC 3339 time of its start."""
    return format_ts(ts_us - ts_us % US_PER_HOUR)


def band(setpoint_c: float) -> str:
    """The cargo band of a setpoint: frozen <= -10 °C < chilled <= +10 °C < warm."""
    if setpoint_c <= -10.0:
        return FROZEN
    return CHILLED if setpoint_c <= 10.0 else WARM


def cell(lat: float, lon: float) -> tuple[int, int]:
    """The south-west corner of a position's grid cell, in whole degrees.

    `floor(lat / 5) * 5` and the same for `lon`, computed on integers so that no float
    rounding moves a position across a border; the north pole (90) joins the cells
    below it and the antimeridian (180) the cells west of it, so that there are
    exactly 36 x 72 cells.
    """
    lat_i = min(math.floor(lat) // CELL_DEG, 90 // CELL_DEG - 1)
    lon_i = min(math.floor(lon) // CELL_DEG, 180 // CELL_DEG - 1)
    return lat_i * CELL_DEG, lon_i * CELL_DEG


def milli(value: float) -> int:
    """A temperature in whole thousandths of a degree (a window's `temp_mean` has 3 decimals)."""
    return round(value * 1000)


def cargo_key(hour: str, band_name: str) -> str:
    """`fleet.cargo`'s key: `hour|band`."""
    return f"{hour}|{band_name}"


def grid_key(hour: str, corner: tuple[int, int]) -> str:
    """`fleet.grid`'s key: `hour|lat_min|lon_min` (the cell's south-west corner)."""
    return f"{hour}|{corner[0]}|{corner[1]}"


def hourly_key(vessel_id: str, hour: str) -> str:
    """`fleet.hourly`'s key: `vessel_id|hour`."""
    return f"{vessel_id}|{hour}"


def container_window_key(container_id: str, window_start: str, origin: str) -> str:
    """`fleet.container-windows`' key: `container_id|window_start|origin` (time order
    within a container, as every `window_start` has the same RFC 3339 form)."""
    return f"{container_id}|{window_start}|{origin}"


def container_alert_key(container_id: str, alert_id: str) -> str:
    """`fleet.container-alerts`' key: `container_id|alert_id`."""
    return f"{container_id}|{alert_id}"


# -- field names -------------------------------------------------------------------

#: The upsert tables' (`names.UPSERT_TABLES`) one SET field: the row's JSON.
ROW: Final = "row"
# fleet.vessels
LAST_HEARD: Final = "last_heard"  # MAX of `sortable(ts)`
POSITION: Final = "position"  # MAX of `sortable(ts)|digest hex|fix JSON`
REEFERS: Final = "reefers_aboard"
OPEN_BY_KIND: Final = "open_alerts"  # SUM per alert kind (also in fleet.grid)
OUT_OF_RANGE_CONTAINERS: Final = "out_of_range_containers"
DEAD_LETTERS: Final = "dead_letters"
LATE: Final = "late"
# fleet.cargo, fleet.grid and fleet.hourly
CONTAINERS: Final = "containers"  # SET of container ids
VESSEL_IDS: Final = "vessels"  # SET of vessel ids
WINDOWS: Final = "windows"
READINGS: Final = "readings"
IN_RANGE: Final = "windows_in_range"
EXCURSION_MIN: Final = "excursion_min"
ALERTS_BY_KIND: Final = "alerts"  # SUM per alert kind
OUT_OF_RANGE: Final = "out_of_range"
DEVIATION: Final = "deviation_mc"  # SUM of thousandths of a degree times readings
