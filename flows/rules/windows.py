"""Per-container tumbling windows, aligned to UTC midnight: their record and shared bounds."""

from __future__ import annotations

from dataclasses import dataclass, field

from flows.contract import WINDOW_TYPE
from flows.events import format_ts
from flows.rules.container import Window, lat_lon
from flows.rules.records import to_json


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


def window_record(cid: str, w: Window, bounds: tuple[str, str]) -> bytes:
    """The windows output's record of a window at its current revision.

    Its vessel and position are those of its last counted reading.
    """
    lat, lon = lat_lon(w.position)
    record = {
        "type": WINDOW_TYPE,
        "container_id": cid,
        "vessel_id": w.vessel_id,
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
        "revision": w.revision,
    }
    return to_json(record)
