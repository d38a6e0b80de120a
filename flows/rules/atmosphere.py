"""Running 30-minute means of a container's CO2 and O2 readings (for `atmosphere_out_of_range`).

Gas sensors are noisy: the rule judges the mean over the last `atmos_min` minutes of
the container's event time, and only once its readings of that gas span that long.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(slots=True)
class GasSeries:
    """One gas's readings over the last `span_us` of the container's event time."""

    span_us: int
    first: int | None = None  # the container's first reading of this gas
    times: deque[int] = field(default_factory=deque)
    values: deque[float] = field(default_factory=deque)
    total: float = 0.0

    def add(self, ts: int, value: float) -> None:
        """Count a plausible reading of this gas."""
        if self.first is None:
            self.first = ts
        self.times.append(ts)
        self.values.append(value)
        self.total += value

    def mean(self, now: int) -> float | None:
        """The mean over [now - span, now], or None until the readings span that long."""
        times, values, horizon = self.times, self.values, now - self.span_us
        while times and times[0] < horizon:
            times.popleft()
            self.total -= values.popleft()
        if self.first is None or self.first > horizon or not times:
            return None
        if len(values) == 1:  # no running-sum residue from earlier readings
            self.total = values[0]
        return self.total / len(values)

    def span_start(self) -> int:
        """The first reading of the current span (call after `mean`)."""
        return self.times[0]


@dataclass(slots=True)
class GasWindow:
    """A container's CO2 and O2 series."""

    co2: GasSeries
    o2: GasSeries

    @classmethod
    def of(cls, span_us: int) -> GasWindow:
        """Empty series spanning `span_us`."""
        return cls(GasSeries(span_us), GasSeries(span_us))
