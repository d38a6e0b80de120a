"""Running means of a container's CO2 and O2 readings (for `atmosphere_out_of_range`).

Gas sensors are noisy: the rule judges the mean over the last `span_us` of the
container's event time, each gas only once its readings span that long. One deque
holds both gases: this runs for nearly every reading, so it is kept to one append
and, most of the time, one pop.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

Sample = tuple[int, float | None, float | None]  # (ts, co2_pct, o2_pct)


@dataclass(slots=True)
class GasWindow:
    """A container's plausible gas readings over [ts - span, ts] of its latest reading."""

    span_us: int
    samples: deque[Sample] = field(default_factory=deque)
    co2_sum: float = 0.0
    co2_n: int = 0
    o2_sum: float = 0.0
    o2_n: int = 0
    co2_first: int | None = None  # the container's first reading of each gas
    o2_first: int | None = None

    def update(
        self, ts: int, co2: float | None, o2: float | None
    ) -> tuple[float | None, float | None]:
        """Count a reading (either gas may be absent); return both means at `ts`, each
        None until that gas's readings span `span_us` (or when none is left in it)."""
        samples = self.samples
        if co2 is not None:
            samples.append((ts, co2, o2))
            self.co2_sum += co2
            self.co2_n += 1
            if self.co2_first is None:
                self.co2_first = ts
            if o2 is not None:
                self.o2_sum += o2
                self.o2_n += 1
                if self.o2_first is None:
                    self.o2_first = ts
        elif o2 is not None:
            samples.append((ts, None, o2))
            self.o2_sum += o2
            self.o2_n += 1
            if self.o2_first is None:
                self.o2_first = ts
        horizon = ts - self.span_us
        while samples and samples[0][0] < horizon:
            _, old_co2, old_o2 = samples.popleft()
            if old_co2 is not None:
                self.co2_n -= 1
                # Empty again: start from an exact zero, not a running-sum residue.
                self.co2_sum = self.co2_sum - old_co2 if self.co2_n else 0.0
            if old_o2 is not None:
                self.o2_n -= 1
                self.o2_sum = self.o2_sum - old_o2 if self.o2_n else 0.0
        first = self.co2_first
        co2_mean = (
            self.co2_sum / self.co2_n
            if first is not None and first <= horizon and self.co2_n
            else None
        )
        first = self.o2_first
        o2_mean = (
            self.o2_sum / self.o2_n
            if first is not None and first <= horizon and self.o2_n
            else None
        )
        return co2_mean, o2_mean

    def span_start(self, gas: int) -> int:
        """The first reading of the current span that has the gas (1: CO2, 2: O2)."""
        return next(sample[0] for sample in self.samples if sample[gas] is not None)
