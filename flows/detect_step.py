"""The `detect` step's Bytewax logic: the watermark merge feeding the `Detector`."""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from bytewax.operators import StatefulLogic

from flows import metrics
from flows.config import Settings
from flows.progress import Progress, log
from flows.rules.clock import MINUTE
from flows.rules.detector import Detector
from flows.rules.records import Outputs
from flows.watermark import Batch, PartitionMerge

#: Table rows go out at most this often: a container changes on every reading,
#: readers need it fresh to the second, not to the reading.
TABLE_INTERVAL_S: Final = 0.5


@dataclass(slots=True)
class DetectState:
    """Everything the detect step snapshots: merge queues, rule state, whether done."""

    merge: PartitionMerge
    detector: Detector
    finished: bool = False  # the input was complete at some point (a resume may add more)


class DetectLogic(StatefulLogic[Batch, Outputs, bytes]):
    """Feeds batches through the watermark merge into the detector."""

    def __init__(self, settings: Settings, resume: bytes | None) -> None:
        th = settings.thresholds
        if resume is None:
            merge = PartitionMerge(max_ahead=int(th.max_ahead_min * MINUTE))
            self.state = DetectState(merge, Detector(th))
        else:
            self.state = pickle.loads(resume)
            self.state.merge.resumed()
            log(f"resumed from the last snapshot: {self.state.detector.out.processed:,} records in")
        self._start = self.state.detector.out.processed
        self._was_finished = self.state.finished
        self._summarised = False
        self._progress = Progress(settings, self._start)
        self._rows_at = time.monotonic()
        self._meter = metrics.VesselMeter(self.state.detector, self.state.merge)
        self._snapshot_timer = metrics.snapshot_timer("detect")

    def on_item(self, value: Batch) -> tuple[list[Outputs], bool]:
        state = self.state
        state.detector.process(state.merge.push(value))
        if state.merge.ended:
            self._finish()
        self._progress.maybe_report(state.detector, state.merge)
        now = time.monotonic()
        self._meter.maybe_update(now, state.detector, state.merge)
        rows = state.finished or now - self._rows_at >= TABLE_INTERVAL_S
        if rows:
            self._rows_at = now
        return [state.detector.drain(rows)], StatefulLogic.RETAIN

    def on_eof(self) -> tuple[list[Outputs], bool]:
        # Every input partition of this execution is exhausted.
        self.state.detector.process(self.state.merge.finish())
        self._finish()
        return [self.state.detector.drain()], StatefulLogic.RETAIN

    def on_notify(self) -> tuple[list[Outputs], bool]:
        # A quiet input still gets its changed rows into the table.
        self._rows_at = time.monotonic()
        return [self.state.detector.drain(True)], StatefulLogic.RETAIN

    def notify_at(self) -> datetime | None:
        if not self.state.detector.has_changed_rows:
            return None
        return datetime.now(UTC) + timedelta(seconds=TABLE_INTERVAL_S)

    def snapshot(self) -> bytes:
        # Pickled now, so later mutation cannot leak into the snapshot.
        with self._snapshot_timer.time():
            return pickle.dumps(self.state, protocol=pickle.HIGHEST_PROTOCOL)

    def _finish(self) -> None:
        """The input ended: once per execution, close what the end closes and sum up."""
        if self._summarised:
            return
        self._summarised = True
        state = self.state
        if self._was_finished and state.detector.out.processed == self._start:
            log(
                "the input was already complete at the last snapshot: nothing new to read, "
                "the outputs stay as they are (run without -r, or with an empty recovery "
                "directory, to process it again)"
            )
        state.finished = True
        state.detector.end_of_input()
        self._progress.summary(state.detector)
        self._meter.update(state.detector, state.merge)  # the metrics end equal to the summary
