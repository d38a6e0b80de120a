"""The flows' Prometheus metrics, every one defined here once, and the server that shows them.

Bytewax 0.21.1 measures its own steps (items in and out, `next_batch`, `write_batch`
and `snapshot` durations) in a Rust registry that Python cannot read: only its
Dataflow API server shows them (`BYTEWAX_DATAFLOW_API_ENABLED`, see docs/metrics.md).
That server also appends prometheus-client's default registry to its /metrics, so
the metrics here are registered there too: `COLDWAKE_METRICS_PORT` serves them on
127.0.0.1, and Bytewax's server, when someone enables it, shows them next to its own.

Counters follow what the flows count anyway (the detector's totals, once a second;
the fleet's counts per batch), never a call per record: the vessel flow's cost per
record bounds its throughput. They count from the start of the process, so a resumed
run starts them at 0 again (a reset, which Prometheus' `rate()` expects).
"""

from __future__ import annotations

import os
import time
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Mapping
from typing import Final, Literal

from prometheus_client import (
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from flows.config import ConfigError, value
from flows.contract import ALERT_KINDS, CLOSED, OPEN, RETRACTED
from flows.events import US_PER_S
from flows.fleet_core.names import TABLE_NAMES
from flows.fleet_core.tables import Change
from flows.progress import log
from flows.rules.clock import NO_TIME
from flows.rules.detector import Detector
from flows.watermark import PartitionMerge

Flow = Literal["vessel", "fleet"]

#: Served on loopback only: the issue's "safe by default" (no token on this server).
HOST: Final = "127.0.0.1"
#: How often the vessel's counters catch up with the detector (a scrape is ~15 s apart).
UPDATE_S: Final = 1.0
_ALERT_STATES: Final = (OPEN, CLOSED, RETRACTED)

# -- both flows ------------------------------------------------------------------------

SNAPSHOT_SECONDS: Final = Histogram(
    "coldwake_snapshot_duration_seconds",
    "Time a step takes to snapshot for recovery: detect (pickling the rule state), "
    "table and tables (flushing the stores, and the fleet's changelog)",
    ["step"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=None,
)
KAFKA_LAG: Final = Gauge(
    "coldwake_kafka_consumer_lag",
    "Records of an input partition not read yet: the high watermark the consumer last "
    "fetched (the last stable offset, for read_committed) minus the next offset to read",
    ["topic", "partition"],
    registry=None,
)

# -- the vessel flow -------------------------------------------------------------------

RECORDS_IN: Final = Counter(
    "coldwake_vessel_records_in",
    "Input records the detect step took in, malformed ones included",
    registry=None,
)
READINGS: Final = Counter(
    "coldwake_vessel_readings",
    "Readings the rules processed (not late, duplicate or held)",
    registry=None,
)
POSITIONS: Final = Counter(
    "coldwake_vessel_positions", "Position fixes the rules processed", registry=None
)
DUPLICATES: Final = Counter(
    "coldwake_vessel_duplicates", "Readings dropped as duplicates", registry=None
)
LATE: Final = Counter(
    "coldwake_vessel_late",
    "Records sent to the late output, by record type (reading, position)",
    ["record"],
    registry=None,
)
DEAD_LETTERS: Final = Counter(
    "coldwake_vessel_dead_letters",
    "Records sent to the DLQ: malformed, or held too far ahead and never corroborated",
    registry=None,
)
HELD: Final = Gauge(
    "coldwake_vessel_held_records",
    "Records held now because they are too far ahead of their vessel's clock",
    registry=None,
)
ALERTS: Final = Counter(
    "coldwake_vessel_alerts",
    "Alert records emitted, by kind and state (open: opened; closed; retracted)",
    ["kind", "state"],
    registry=None,
)
WINDOWS: Final = Counter(
    "coldwake_vessel_windows", "Window records emitted, revisions included", registry=None
)
WAITING: Final = Gauge(
    "coldwake_vessel_merge_waiting_records",
    "Records taken in but waiting for the watermark (another partition may still send "
    "earlier ones)",
    registry=None,
)

#: Computed at scrape time (`_EventTimes`): name -> help.
_EVENT_TIME: Final = (
    "coldwake_vessel_event_time_seconds",
    "A vessel's event time (the latest ts of its processed records), in Unix seconds",
)
_WATERMARK_LAG: Final = (
    "coldwake_vessel_watermark_lag_seconds",
    "Wall clock minus a vessel's event time, in seconds",
)


class _EventTimes(Collector):
    """Each vessel's event time, and the wall clock's lead over it when scraped.

    Computed at scrape time, so the lag of a flow that stopped receiving keeps growing.
    """

    def __init__(self) -> None:
        self._seconds: dict[str, float] = {}

    def set(self, detector: Detector) -> None:
        # Replaced whole: the scrape thread reads the old dict or the new, never half.
        self._seconds = {
            vid: v.event_time / US_PER_S
            for vid, v in detector.vessels.items()
            if v.event_time != NO_TIME
        }

    def collect(self) -> Iterator[Metric]:
        now, seconds = time.time(), self._seconds
        event, lag = self.describe()
        for vid in sorted(seconds):
            event.add_metric([vid], seconds[vid])
            lag.add_metric([vid], now - seconds[vid])
        yield event
        yield lag

    def describe(self) -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily(*m, labels=["vessel"]) for m in (_EVENT_TIME, _WATERMARK_LAG)]


EVENT_TIMES: Final = _EventTimes()

# -- the fleet flow --------------------------------------------------------------------

FLEET_RECORDS_IN: Final = Counter(
    "coldwake_fleet_records_in", "Vessel records the fleet flow read", registry=None
)
FLEET_DEAD_LETTERS: Final = Counter(
    "coldwake_fleet_dead_letters",
    "Vessel records that did not decode, sent to the fleet's dead letters",
    registry=None,
)
TABLE_CHANGES: Final = Counter(
    "coldwake_fleet_table_changes",
    "Row changes (upserts and deletes) written to the fleet tables, by table",
    ["table"],
    registry=None,
)
ROLLED_BACK: Final = Counter(
    "coldwake_fleet_rows_rolled_back",
    "Rows a resumed run rolled back to the recovery snapshot (written after it)",
    registry=None,
)

_COLLECTORS: Final[dict[Flow, tuple[Collector, ...]]] = {
    "vessel": (
        RECORDS_IN, READINGS, POSITIONS, DUPLICATES, LATE, DEAD_LETTERS, HELD, ALERTS,
        WINDOWS, WAITING, EVENT_TIMES, SNAPSHOT_SECONDS, KAFKA_LAG,
    ),
    "fleet": (
        FLEET_RECORDS_IN, FLEET_DEAD_LETTERS, TABLE_CHANGES, ROLLED_BACK, SNAPSHOT_SECONDS,
        KAFKA_LAG,
    ),
}  # fmt: skip
_registered: set[Collector] = set()


def collectors(flow: Flow) -> tuple[Collector, ...]:
    """The metrics of one flow (a process shows only its own flow's)."""
    return _COLLECTORS[flow]


def register(flow: Flow) -> None:
    """Add a flow's metrics to the default registry (once per process)."""
    for c in collectors(flow):
        if c not in _registered:
            REGISTRY.register(c)
            _registered.add(c)


def serve(port: int, process_id: int = 0) -> int:
    """Serve the default registry at http://127.0.0.1:PORT/metrics; return the port.

    Process i of a multi-process run takes `port + i`; port 0 takes any free port.
    The server is a daemon thread: it ends with the process.
    """
    want = port + process_id if port else 0
    try:
        server, _ = start_http_server(want, addr=HOST)
    except (OSError, OverflowError) as exc:
        raise ConfigError(
            f"COLDWAKE_METRICS_PORT={port}: cannot serve metrics on {HOST}:{want} (process "
            f"{process_id}): {exc}; choose a free port, or 0 for any"
        ) from None
    bound = int(server.server_port)
    log(f"metrics at http://{HOST}:{bound}/metrics")
    return bound


def start(flow: Flow, process_id: int, env: Mapping[str, str] | None = None) -> int | None:
    """Register a flow's metrics; serve them when `COLDWAKE_METRICS_PORT` is set."""
    # A `_created` series per counter would double the output (21 alert series) and
    # tell nothing `process_start_time_seconds` does not.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    register(flow)
    port: int | None = value(os.environ if env is None else env, "COLDWAKE_METRICS_PORT")
    return None if port is None else serve(port, process_id)


# -- updates ---------------------------------------------------------------------------

_LATE_READING: Final = LATE.labels(record="reading")
_LATE_POSITION: Final = LATE.labels(record="position")
# The detector's totals (`Detector.totals()` keys) each counter follows.
_FOLLOWS: Final = {
    "records_in": RECORDS_IN,
    "readings": READINGS,
    "positions": POSITIONS,
    "duplicates": DUPLICATES,
    "late_readings": _LATE_READING,
    "late_positions": _LATE_POSITION,
    "dead_letters": DEAD_LETTERS,
    "windows": WINDOWS,
} | {
    f"{state}.{kind}": ALERTS.labels(kind=kind, state=state)
    for kind in ALERT_KINDS
    for state in _ALERT_STATES
}


def _totals(detector: Detector, merge: PartitionMerge) -> Tally[str]:
    totals = detector.totals()
    # Every record taken in was either processed by the rules or still waits in the merge.
    totals["records_in"] = detector.out.processed + merge.buffered
    return totals


class VesselMeter:
    """Brings the vessel's metrics up to the detector's totals, by their deltas.

    Created with the (possibly resumed) state: what it had counted before this
    process is the baseline, not counted again.
    """

    def __init__(self, detector: Detector, merge: PartitionMerge) -> None:
        self._last = _totals(detector, merge)
        self._due = 0.0

    def maybe_update(self, now: float, detector: Detector, merge: PartitionMerge) -> None:
        """`update`, at most every `UPDATE_S` (monotonic seconds `now`)."""
        if now >= self._due:
            self._due = now + UPDATE_S
            self.update(detector, merge)

    def update(self, detector: Detector, merge: PartitionMerge) -> None:
        """Add what the detector counted since the last update; set the gauges."""
        totals, last = _totals(detector, merge), self._last
        for key, counter in _FOLLOWS.items():
            delta = totals[key] - last[key]
            if delta > 0:
                counter.inc(delta)
        self._last = totals
        HELD.set(totals["held"])
        WAITING.set(merge.buffered)
        EVENT_TIMES.set(detector)


def snapshot_timer(step: str) -> Histogram:
    """The snapshot-duration histogram of one step (`with timer.time(): ...`)."""
    return SNAPSHOT_SECONDS.labels(step=step)


def fleet_decoded(read: int, undecodable: int) -> None:
    """Count one decoded batch of the fleet flow."""
    FLEET_RECORDS_IN.inc(read)
    if undecodable:
        FLEET_DEAD_LETTERS.inc(undecodable)


_TABLES: Final = {table: TABLE_CHANGES.labels(table=table) for table in TABLE_NAMES}


def table_changes(changes: Iterable[Change]) -> None:
    """Count the row changes of one batch written to the fleet tables."""
    for table, n in Tally(change[0] for change in changes).items():
        (_TABLES.get(table) or TABLE_CHANGES.labels(table=table)).inc(n)


def rolled_back(rows: int) -> None:
    """Count the rows a resumed shard rolled back."""
    ROLLED_BACK.inc(rows)
