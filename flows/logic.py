"""The `detect` step's Bytewax logic: merge, rules, progress lines and the closing summary."""

from __future__ import annotations

import pickle
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bytewax.operators import StatefulLogic

from flows.config import Settings
from flows.detect import ALERT_KINDS, Detector, Outputs
from flows.watermark import Batch, PartitionMerge

TABLE_INTERVAL_S = 0.5


@dataclass(slots=True)
class VesselCore:
    """Everything the detect step snapshots: merge queues, rule state, counters."""

    merge: PartitionMerge = field(default_factory=PartitionMerge)
    detector: Detector = field(default_factory=Detector)
    finished: bool = False


class VesselLogic(StatefulLogic[Batch, Outputs, bytes]):
    """Feeds batches through the watermark merge into the detector."""

    def __init__(self, settings: Settings, resume: bytes | None) -> None:
        if resume is None:
            self.core = VesselCore(detector=Detector(settings.thresholds))
        else:
            self.core = pickle.loads(resume)
        self._settings = settings
        self._progress = _Progress(settings, self.core.detector.out.position)
        self._rows_at = time.monotonic()

    def on_item(self, value: Batch) -> tuple[list[Outputs], bool]:
        core = self.core
        core.detector.process(core.merge.push(value))
        if core.merge.ended:
            self._finish()
        self._progress.maybe_report(core)
        # Table rows go out at most every TABLE_INTERVAL_S: a container changes on
        # every reading, readers need it fresh to the second, not to the reading.
        now = time.monotonic()
        rows = core.finished or now - self._rows_at >= TABLE_INTERVAL_S
        if rows:
            self._rows_at = now
        return [core.detector.drain(rows)], StatefulLogic.RETAIN

    def on_eof(self) -> tuple[list[Outputs], bool]:
        # Every input partition of this execution is exhausted.
        self.core.detector.process(self.core.merge.finish())
        self._finish()
        return [self.core.detector.drain()], StatefulLogic.RETAIN

    def on_notify(self) -> tuple[list[Outputs], bool]:
        # A quiet input still gets its changed rows into the table.
        self._rows_at = time.monotonic()
        return [self.core.detector.drain(True)], StatefulLogic.RETAIN

    def notify_at(self) -> datetime | None:
        if not self.core.detector.has_changed_rows:
            return None
        return datetime.now(UTC) + timedelta(seconds=TABLE_INTERVAL_S)

    def snapshot(self) -> bytes:
        # Pickled now, so later mutation cannot leak into the snapshot.
        return pickle.dumps(self.core, protocol=pickle.HIGHEST_PROTOCOL)

    def _finish(self) -> None:
        if not self.core.finished:
            self.core.finished = True
            self.core.detector.end_of_input()
            self._progress.summary(self.core)


class _Progress:
    """Periodic progress lines and the closing summary, on stderr."""

    def __init__(self, settings: Settings, start_position: int) -> None:
        self._settings = settings
        self._every = settings.progress_s
        self._started = self._last = time.monotonic()
        self._start_position = self._last_position = start_position

    def maybe_report(self, core: VesselCore) -> None:
        now = time.monotonic()
        if not self._every or now - self._last < self._every:
            return
        position, counts = core.detector.out.position, core.detector.totals()
        rate = (position - self._last_position) / (now - self._last)
        opened = sum(counts[f"opened.{k}"] for k in ALERT_KINDS)
        _log(
            f"progress: {position:,} records ({rate:,.0f}/s), {counts['readings']:,} readings, "
            f"{opened:,} alerts opened, {counts['windows']:,} windows, "
            f"{counts['dead_letters']:,} dead letters, {counts['late_readings']:,} late, "
            f"{core.merge.buffered:,} waiting for the watermark"
        )
        self._last, self._last_position = now, position

    def summary(self, core: VesselCore) -> None:
        d = core.detector
        counts = d.totals()
        seconds = time.monotonic() - self._started
        done = d.out.position - self._start_position
        _log(
            f"input ended: {d.out.position:,} records ({done / max(seconds, 1e-9):,.0f}/s "
            f"this run, {seconds:.1f} s)"
        )
        _log(
            f"  readings {counts['readings']:,}, positions {counts['positions']:,}, "
            f"duplicates {counts['duplicates']:,}, late readings {counts['late_readings']:,}, "
            f"late positions {counts['late_positions']:,}, "
            f"dead letters {counts['dead_letters']:,}, windows {counts['windows']:,}"
        )
        open_now = sum(len(c.alerts) for c in d.containers.values())
        _log(f"  alerts (opened / closed), {open_now:,} still open:")
        for kind in ALERT_KINDS:
            _log(f"    {kind:<22} {counts[f'opened.{kind}']:>6,} / {counts[f'closed.{kind}']:,}")
        data = self._settings.data_dir
        if self._settings.output == "local":
            _log(f"  outputs: {data / 'out'}/{{alerts,windows,late,dlq}}.jsonl")
        else:
            _log(
                "  outputs: Kafka topics reefer.alerts, reefer.windows, reefer.late, "
                "reefer.dlq, reefer.container-state"
            )
        _log(
            f"  container-state table: {data / 'state'}; query it with "
            f"`python -m state.query {data} count | list | get CONTAINER_ID`"
        )


def _log(line: str) -> None:
    print(f"coldwake: {line}", file=sys.stderr, flush=True)
