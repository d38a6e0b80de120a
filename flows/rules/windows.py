"""Per-container tumbling windows, aligned to UTC midnight: their record and shared bounds."""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from flows.contract import WINDOW_TYPE
from flows.events import format_ts
from flows.rules.container import Window


@dataclass(slots=True)
class WindowBounds:
    """Formatted window bounds, shared: every container has the same windows."""

    window_us: int
    _bounds: dict[int, tuple[str, str]] = field(default_factory=dict)

    def of(self, start: int) -> tuple[str, str]:
        """`(window_start, window_end)` of the window starting at `start`."""
        bounds = self._bounds.get(start)
        if bounds is None:
            if len(self._bounds) > 10_000:
                self._bounds.clear()
            bounds = format_ts(start), format_ts(start + self.window_us)
            self._bounds[start] = bounds
        return bounds


class WindowRecord(msgspec.Struct):
    """The windows output's record, in the contract's field order.

    A Struct rather than a dict: about one window is emitted for every two readings,
    and msgspec builds and encodes a Struct in two thirds of the time.
    """

    type: str
    container_id: str
    vessel_id: str
    window_start: str
    window_end: str
    count: int
    temp_min: float
    temp_max: float
    temp_mean: float
    setpoint_c: float
    out_of_range: int
    power_kw_mean: float
    lat: float | None
    lon: float | None
    revision: int


_encode = msgspec.json.Encoder().encode


def window_record(cid: str, w: Window, bounds: tuple[str, str]) -> bytes:
    """The windows output's record of a window at its current revision.

    Its vessel and position are those of its last counted reading.
    """
    p, count = w.position, w.count
    return _encode(
        WindowRecord(
            WINDOW_TYPE,
            cid,
            w.vessel_id,
            bounds[0],
            bounds[1],
            count,
            w.temp_min,
            w.temp_max,
            round(w.temp_sum / count, 3),
            w.setpoint_c,
            w.out_of_range,
            round(w.power_sum / count, 3),
            None if p is None else p.lat,
            None if p is None else p.lon,
            w.revision,
        )
    )
