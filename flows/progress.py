"""Progress lines and the closing summary of the vessel flow, on stderr."""

from __future__ import annotations

import sys
import time

from flows.config import Settings
from flows.contract import ALERT_KINDS, CLOSED, FILE_OUTPUTS, OPEN, OUTPUTS, RETRACTED
from flows.rules.detector import Detector
from flows.watermark import PartitionMerge


def log(line: str) -> None:
    """One line for the person watching, on stderr."""
    print(f"coldwake: {line}", file=sys.stderr, flush=True)


def describe_start(settings: Settings, resuming: bool) -> str:
    """The first line of a run: what it reads, where it writes."""
    inp = settings.input
    if inp.kind == "sim":
        sim = settings.sim
        source = (
            f"the simulator (seed {sim.seed}, {sim.vessels} vessel(s) x {sim.containers} "
            f"containers, {sim.hours:g} h)"
        )
    elif inp.kind == "file":
        source = ", ".join(str(p) for p in inp.paths)
    else:
        source = f"Kafka at {settings.kafka.brokers}"
    sink = (
        f"{settings.out_dir}/*.jsonl"
        if settings.output == "local"
        else f"Kafka at {settings.kafka.brokers}"
    )
    how = "resuming from the recovery state" if resuming else "starting afresh"
    return f"{how}: reading {source}; writing {sink} and the table in {settings.data_dir}"


class Progress:
    """Periodic progress lines and the closing summary."""

    def __init__(self, settings: Settings, start_processed: int) -> None:
        self._settings = settings
        self._every = settings.progress_s
        self._started = self._last = time.monotonic()
        self._start_processed = self._last_processed = start_processed

    def maybe_report(self, detector: Detector, merge: PartitionMerge) -> None:
        """Say how far the run is, at most every `COLDWAKE_PROGRESS_S` seconds."""
        now = time.monotonic()
        if not self._every or now - self._last < self._every:
            return
        processed, counts = detector.out.processed, detector.totals()
        rate = (processed - self._last_processed) / (now - self._last)
        opened = sum(counts[f"{OPEN}.{k}"] for k in ALERT_KINDS)
        log(
            f"progress: {processed:,} records ({rate:,.0f}/s), {counts['readings']:,} readings, "
            f"{opened:,} alerts opened, {counts['windows']:,} windows, "
            f"{counts['dead_letters']:,} dead letters, {counts['late_readings']:,} late, "
            f"{counts['held']:,} held, "
            f"{merge.buffered:,} waiting for the watermark"
        )
        self._last, self._last_processed = now, processed

    def summary(self, d: Detector) -> None:
        """What the run did, where its outputs are and how to query them."""
        counts = d.totals()
        seconds = time.monotonic() - self._started
        done = d.out.processed - self._start_processed
        log(
            f"input ended: {d.out.processed:,} records ({done / max(seconds, 1e-9):,.0f}/s "
            f"this run, {seconds:.1f} s)"
        )
        log(
            f"  readings {counts['readings']:,}, positions {counts['positions']:,}, "
            f"duplicates {counts['duplicates']:,}, late readings {counts['late_readings']:,}, "
            f"late positions {counts['late_positions']:,}, "
            f"dead letters {counts['dead_letters']:,} "
            f"({counts['held_dead_letters']:,} held too far ahead), "
            f"windows {counts['windows']:,}, clock jumps {counts['clock_jumps']:,}"
        )
        log(f"  alerts (opened / closed / retracted), {d.open_alerts:,} still open:")
        for kind in ALERT_KINDS:
            log(
                f"    {kind:<24} {counts[f'{OPEN}.{kind}']:>6,} / {counts[f'{CLOSED}.{kind}']:,}"
                f" / {counts[f'{RETRACTED}.{kind}']:,}"
            )
        data = self._settings.data_dir
        if self._settings.output == "local":
            names = ",".join(o.name for o in FILE_OUTPUTS)
            log(f"  outputs: {self._settings.out_dir}/{{{names}}}.jsonl")
        else:
            log(f"  outputs: Kafka topics {', '.join(o.topic for o in OUTPUTS)}")
        log(
            f"  container-state table: {data / 'state'}; query it with "
            f"`python -m state.query {data} count | list | get CONTAINER_ID`"
        )
