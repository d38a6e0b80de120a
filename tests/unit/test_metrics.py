"""flows.metrics and its helpers: counters follow the detector, lag arithmetic, the server.

Each test reads the metrics through a registry of its own (the module's metrics are
process-wide, and other tests in this process move them): it compares what a step
added, with expected values written by hand.
"""

from __future__ import annotations

import socket
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import KafkaException, TopicPartition
from prometheus_client import CollectorRegistry

from flows import metrics
from flows.config import DEFAULT_THRESHOLDS, ConfigError
from flows.edges.kafka.lag import LagMeter, lag
from flows.events import parse
from flows.rules.detector import Detector
from flows.startup import first_process, process_id
from flows.watermark import Batch, PartitionMerge, PartState
from tests.support.builders import VESSEL, fix, reading

PARTS = ("a", "b")


def _registry(flow: metrics.Flow) -> CollectorRegistry:
    registry = CollectorRegistry()
    for collector in metrics.collectors(flow):
        registry.register(collector)
    return registry


class _Reader:
    """Sample values of a registry, as added since this reader was made."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self._start = self._all()

    def _all(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in self._registry.collect()
            for s in family.samples
        }

    def added(self, name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return self._all().get(key, 0.0) - self._start.get(key, 0.0)

    def now(self, name: str, **labels: str) -> float | None:
        return self._registry.get_sample_value(name, labels)


def _batch(part: int, lines: list[bytes], state: PartState = PartState.ACTIVE) -> Batch:
    return Batch(
        part, PARTS, [parse(line, f"{PARTS[part]}:{i}") for i, line in enumerate(lines)], state
    )


def _feed(detector: Detector, merge: PartitionMerge, batch: Batch) -> None:
    detector.process(merge.push(batch))


def test_the_vessel_counters_follow_the_detector_and_wait_for_the_merge() -> None:
    reader = _Reader(_registry("vessel"))
    detector, merge = Detector(DEFAULT_THRESHOLDS), PartitionMerge()
    meter = metrics.VesselMeter(detector, merge)
    # Partition b has sent nothing yet: what a sends waits for the watermark.
    _feed(detector, merge, _batch(0, [fix(0), reading(0), reading(1)]))
    meter.update(detector, merge)
    assert reader.added("coldwake_vessel_records_in_total") == 3
    assert reader.added("coldwake_vessel_readings_total") == 0
    assert reader.now("coldwake_vessel_merge_waiting_records") == 3

    lines = [
        reading(1),  # a duplicate
        reading(0.5),  # late
        b"{not json",  # dead letter
        reading(2000),  # 33 h ahead of the vessel's clock: held
        *(reading(m, temp=-10.0) for m in range(2, 40)),  # an excursion opens at 32
    ]
    _feed(detector, merge, _batch(0, lines, PartState.ENDED))
    _feed(detector, merge, _batch(1, [], PartState.ENDED))
    meter.update(detector, merge)
    assert reader.added("coldwake_vessel_records_in_total") == 3 + 42
    assert reader.added("coldwake_vessel_readings_total") == 2 + 38
    assert reader.added("coldwake_vessel_positions_total") == 1
    assert reader.added("coldwake_vessel_duplicates_total") == 1
    assert reader.added("coldwake_vessel_late_total", record="reading") == 1
    assert reader.added("coldwake_vessel_late_total", record="position") == 0
    assert reader.added("coldwake_vessel_dead_letters_total") == 1
    assert reader.now("coldwake_vessel_held_records") == 1
    assert reader.now("coldwake_vessel_merge_waiting_records") == 0
    opened = {"kind": "temperature_excursion", "state": "open"}
    assert reader.added("coldwake_vessel_alerts_total", **opened) == 1
    assert reader.added("coldwake_vessel_alerts_total", kind="power_loss", state="open") == 0
    # Minute 39 after 2026-11-26T12:00Z is the latest ts processed (the held one is not).
    event_time = datetime(2026, 11, 26, 12, 39, tzinfo=UTC).timestamp()
    assert reader.now("coldwake_vessel_event_time_seconds", vessel=VESSEL) == event_time
    lag_s = reader.now("coldwake_vessel_watermark_lag_seconds", vessel=VESSEL)
    assert lag_s is not None and lag_s > 0

    detector.end_of_input()  # the held record is dead-lettered, windows emitted
    meter.update(detector, merge)
    assert reader.now("coldwake_vessel_held_records") == 0
    assert reader.added("coldwake_vessel_dead_letters_total") == 2
    assert reader.added("coldwake_vessel_windows_total") == 3  # 12:00, 12:15 and 12:30


def test_a_resumed_state_is_the_baseline_not_counted_again() -> None:
    detector, merge = Detector(DEFAULT_THRESHOLDS), PartitionMerge()
    _feed(detector, merge, _batch(0, [reading(0), reading(1)], PartState.ENDED))
    _feed(detector, merge, _batch(1, [b"[]"], PartState.ENDED))
    reader = _Reader(_registry("vessel"))
    meter = metrics.VesselMeter(detector, merge)  # as DetectLogic makes it on a resume
    meter.update(detector, merge)
    assert reader.added("coldwake_vessel_records_in_total") == 0
    detector.process([parse(reading(2), "c:1")])
    meter.update(detector, merge)
    assert reader.added("coldwake_vessel_records_in_total") == 1
    assert reader.added("coldwake_vessel_readings_total") == 1
    assert reader.added("coldwake_vessel_dead_letters_total") == 0


def test_updates_come_at_most_once_a_second() -> None:
    reader = _Reader(_registry("vessel"))
    detector, merge = Detector(DEFAULT_THRESHOLDS), PartitionMerge()
    meter = metrics.VesselMeter(detector, merge)
    meter.maybe_update(100.0, detector, merge)
    detector.process([parse(reading(0), "c:1")])
    meter.maybe_update(100.5, detector, merge)
    assert reader.added("coldwake_vessel_readings_total") == 0
    meter.maybe_update(101.0, detector, merge)
    assert reader.added("coldwake_vessel_readings_total") == 1


@pytest.mark.parametrize(
    ("low", "high", "next_offset", "expected"),
    [
        (0, 100, 40, 60),
        (0, 100, 100, 0),
        (0, 100, 103, 0),  # past transaction markers the watermark has not caught up with
        (10, 100, -2, 90),  # OFFSET_BEGINNING: nothing read yet, from the log start
        (-1001, -1001, 5, None),  # no fetch answered yet
        (-1001, 100, -2, None),
    ],
)
def test_lag_is_the_high_watermark_minus_the_next_offset(
    low: int, high: int, next_offset: int, expected: int | None
) -> None:
    assert lag(low, high, next_offset) == expected


class _Consumer:
    """What `LagMeter` asks of a consumer: cached watermarks."""

    def __init__(self, marks: dict[tuple[str, int], tuple[int, int]]) -> None:
        self.marks = marks
        self.cached: list[bool] = []

    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float | None = None, cached: bool = False
    ) -> tuple[int, int]:
        self.cached.append(cached)
        if (partition.topic, partition.partition) not in self.marks:
            raise KafkaException("Local: Unknown partition")  # as for one not assigned
        return self.marks[(partition.topic, partition.partition)]


def test_the_lag_meter_sets_each_partition_and_drops_those_gone() -> None:
    reader = _Reader(_registry("fleet"))
    consumer = _Consumer({("t.a", 0): (0, 50), ("t.a", 1): (0, 7), ("t.b", 0): (0, 3)})
    meter = LagMeter()
    meter.report(consumer, {("t.a", 0): 20, ("t.a", 1): 7, ("t.b", 0): 0}, now=10.0)
    assert reader.now("coldwake_kafka_consumer_lag", topic="t.a", partition="0") == 30
    assert reader.now("coldwake_kafka_consumer_lag", topic="t.a", partition="1") == 0
    assert reader.now("coldwake_kafka_consumer_lag", topic="t.b", partition="0") == 3
    assert consumer.cached == [True, True, True]  # never a request to the brokers
    LagMeter().report(consumer, {("t.c", 9): 1}, now=10.0)  # not assigned: skipped
    assert reader.now("coldwake_kafka_consumer_lag", topic="t.c", partition="9") is None

    consumer.marks[("t.a", 0)] = (0, 60)
    meter.report(consumer, {("t.a", 0): 20, ("t.a", 1): 7}, now=10.5)  # too soon
    assert reader.now("coldwake_kafka_consumer_lag", topic="t.a", partition="0") == 30
    meter.report(consumer, {("t.a", 0): 20, ("t.a", 1): 7}, now=10.6, force=True)
    assert reader.now("coldwake_kafka_consumer_lag", topic="t.a", partition="0") == 40
    assert reader.now("coldwake_kafka_consumer_lag", topic="t.b", partition="0") is None


def test_the_lag_meter_looks_again_soon_while_no_watermark_is_known() -> None:
    reader = _Reader(_registry("vessel"))
    consumer = _Consumer({("t.c", 0): (-1001, -1001)})
    meter = LagMeter()
    meter.report(consumer, {("t.c", 0): -2}, now=10.0)
    assert reader.now("coldwake_kafka_consumer_lag", topic="t.c", partition="0") is None
    consumer.marks[("t.c", 0)] = (5, 25)  # the first fetch answered
    meter.report(consumer, {("t.c", 0): -2}, now=10.05)  # looks again in 0.1 s, not 1 s
    assert reader.now("coldwake_kafka_consumer_lag", topic="t.c", partition="0") is None
    meter.report(consumer, {("t.c", 0): -2}, now=10.1)
    assert reader.now("coldwake_kafka_consumer_lag", topic="t.c", partition="0") == 20


def test_fleet_counts() -> None:
    reader = _Reader(_registry("fleet"))
    metrics.fleet_decoded(10, 2)
    metrics.fleet_decoded(5, 0)
    changes: list[Any] = [("vessels", "v1", b"{}"), ("cargo", "k", None)]
    metrics.table_changes([*changes, ("vessels", "v2", b"{}")])
    metrics.rolled_back(4)
    assert reader.added("coldwake_fleet_records_in_total") == 15
    assert reader.added("coldwake_fleet_dead_letters_total") == 2
    assert reader.added("coldwake_fleet_table_changes_total", table="vessels") == 2
    assert reader.added("coldwake_fleet_table_changes_total", table="cargo") == 1
    assert reader.added("coldwake_fleet_rows_rolled_back_total") == 4


def test_snapshot_durations_are_a_histogram_per_step() -> None:
    reader = _Reader(_registry("vessel"))
    with metrics.snapshot_timer("detect").time():
        pass
    assert reader.added("coldwake_snapshot_duration_seconds_count", step="detect") == 1
    assert reader.added("coldwake_snapshot_duration_seconds_count", step="table") == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_binds_loopback_port_plus_process_id(capsys: pytest.CaptureFixture[str]) -> None:
    port = _free_port()
    assert metrics.serve(port - 1, process_id=1) == port
    assert f"coldwake: metrics at http://127.0.0.1:{port}/metrics" in capsys.readouterr().err
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        assert answer.status == 200
    any_port = metrics.serve(0, process_id=3)  # 0: any free port, whatever the process
    assert f"127.0.0.1:{any_port}/metrics" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="COLDWAKE_METRICS_PORT"):
        metrics.serve(port)  # taken, by the first server
    with pytest.raises(ConfigError, match="COLDWAKE_METRICS_PORT"):
        metrics.serve(65535, process_id=1)


def test_start_registers_once_and_serves_only_when_asked() -> None:
    assert metrics.start("vessel", 0, env={}) is None
    assert metrics.start("vessel", 0, env={}) is None  # registering twice is harmless
    with pytest.raises(ConfigError, match="COLDWAKE_METRICS_PORT"):
        metrics.start("fleet", 0, env={"COLDWAKE_METRICS_PORT": "70000"})


def test_process_id_from_the_command_line_or_bytewaxs_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BYTEWAX_PROCESS_ID", raising=False)
    assert process_id(["run.py", "flows.vessel"]) == 0
    assert process_id(["run.py", "flows.fleet", "-i", "2", "-a", "x;y;z"]) == 2
    assert process_id(["run.py", "flows.fleet", "--process-id", "1"]) == 1
    assert not first_process(["run.py", "-i", "1"])
    monkeypatch.setenv("BYTEWAX_PROCESS_ID", "3")
    assert process_id(["run.py", "flows.fleet"]) == 3
    assert first_process(["run.py", "-i", "0"])
