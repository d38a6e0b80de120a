"""flows.vessel against the real 3-broker vessel cluster: same answers, crashes, failures."""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from deploy.kafka.admin import admin_client, create_topics
from deploy.kafka.topics import contract_topics
from flows.contract import CONTAINER_STATE
from flows.edges.kafka.producer import produce_file
from flows.events import Telemetry, parse
from flows.rules.alerts import implausible
from flows.sim import SimConfig, write_files
from state.reader import TableReader
from state.table import table_path
from tests.integration.conftest import KafkaClusters
from tests.integration.kafka_io import (
    distinct,
    end_offsets,
    finish,
    kafka_outputs,
    local_outputs,
    start_flow,
)
from tests.support.kafka import reset_topics

pytestmark = pytest.mark.integration

COMPARED = ("alerts", "windows", "late")


@pytest.fixture
def vessel(kafka_clusters: KafkaClusters) -> str:
    """The vessel cluster's brokers, with the contract's topics new and empty."""
    reset_topics(kafka_clusters.vessel_brokers)
    return kafka_clusters.vessel_brokers


def _simulate(tmp: Path, containers: int, hours: float, seed: int) -> Path:
    records, _ = write_files(SimConfig(seed=seed, containers=containers, hours=hours), tmp)
    return records


def _file_mode(records: Path, data_dir: Path) -> dict[str, dict[bytes, bytes]]:
    finish(start_flow(data_dir, input=f"file:{records}"))
    return {name: distinct(name, values) for name, values in local_outputs(data_dir).items()}


def _kafka_mode(brokers: str) -> dict[str, dict[bytes, bytes]]:
    return {name: distinct(name, values) for name, values in kafka_outputs(brokers).items()}


def _assert_same_results(
    kafka: dict[str, dict[bytes, bytes]], files: dict[str, dict[bytes, bytes]]
) -> None:
    for name in COMPARED:
        assert kafka[name] == files[name], f"{name}: Kafka mode differs from file mode"
    # Dead letters name their source (topic[partition]@offset vs file:line): compare
    # the records and reasons.
    assert kafka["dlq"].keys() == files["dlq"].keys()


def test_kafka_mode_on_two_workers_gives_the_same_results_as_file_mode(
    vessel: str, tmp_path: Path
) -> None:
    records = _simulate(tmp_path, containers=150, hours=24, seed=5)
    produce_file(records, vessel)
    expected = _file_mode(records, tmp_path / "file")

    err = finish(
        start_flow(
            tmp_path / "kafka",
            workers=2,
            input="kafka",
            output="kafka",
            brokers=vessel,
            kafka_stop_at_end="1",
        )
    )
    got = _kafka_mode(vessel)
    _assert_same_results(got, expected)
    assert len(got["alerts"]) >= 20 and "input ended" in err

    # The compacted container-state topic ends with the rows of the local table.
    with TableReader(table_path(tmp_path / "kafka")) as table:
        assert {k.encode(): v for k, v in table.items()} == got[CONTAINER_STATE.name]
        assert table.count() == 150


def test_live_mode_keeps_up_while_empty_partitions_stay_idle(vessel: str, tmp_path: Path) -> None:
    """No stop-at-end: the flow waits for data, and two of the three position partitions
    never receive any; the idle rule must keep them from stalling the merge. Every
    partition has said it is idle when the records come, so the first to deliver must
    not run ahead of the others (its wake voids their idle claims)."""
    records = _simulate(tmp_path, containers=60, hours=12, seed=12)
    expected = _file_mode(records, tmp_path / "file")
    # The default idle timeout (5 s): by the time the records come, every partition has
    # said it is idle (the flow starts in about 3 s).
    proc = start_flow(tmp_path / "live", input="kafka", output="kafka", brokers=vessel)
    try:
        time.sleep(12)
        assert proc.poll() is None
        produce_file(records, vessel, rate=20_000)
        # It catches up in a few seconds; the bound only keeps a stalled flow from hanging.
        deadline = time.monotonic() + 120
        # Every alert and late record that file mode gave shows up while the input is
        # still open.
        while (seen := {k: len(v) for k, v in _kafka_mode(vessel).items()}) and any(
            seen[name] < len(expected[name]) for name in ("alerts", "late")
        ):
            if time.monotonic() > deadline:
                proc.send_signal(signal.SIGTERM)
                _, err = proc.communicate(timeout=30)
                raise AssertionError(
                    f"live flow did not catch up: {seen['alerts']} of {len(expected['alerts'])}"
                    f" alerts, {seen['late']} of {len(expected['late'])} late records after"
                    f" 120 s; its stderr:\n{err.decode(errors='replace')[-3000:]}"
                )
            assert proc.poll() is None
            time.sleep(0.5)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    got = _kafka_mode(vessel)
    assert got["alerts"] == expected["alerts"]
    assert got["late"] == expected["late"]


def test_kill_9_three_times_while_consuming_then_resume(vessel: str, tmp_path: Path) -> None:
    records = _simulate(tmp_path, containers=700, hours=48, seed=8)
    assert sum(1 for _ in records.open("rb")) >= 200_000
    produce_file(records, vessel)
    expected = _file_mode(records, tmp_path / "file")
    windows_total = len(expected["windows"])

    seed = random.randrange(1 << 30)
    shares = sorted(random.Random(seed).uniform(0.05, 0.9) for _ in range(3))
    settings = {"input": "kafka", "output": "kafka", "brokers": vessel, "kafka_stop_at_end": "1"}
    recovery = tmp_path / "recovery"
    for share in shares:
        proc = start_flow(tmp_path / "kafka", recovery, **settings)
        while end_offsets(vessel, "reefer.windows") < share * windows_total:
            if proc.poll() is not None:
                pytest.fail(f"run ended before {share:.0%} of the windows (seed {seed})")
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finish(start_flow(tmp_path / "kafka", recovery, **settings))

    # `distinct` also asserts that every repeated record is an exact replay.
    _assert_same_results(_kafka_mode(vessel), expected)


def _accounting(records: Path) -> Counter[str]:
    """What the contract says must become of each input reading, computed independently."""
    latest: dict[str, int] = {}
    tally: Counter[str] = Counter()
    for line in records.open("rb"):
        r = parse(line.rstrip(b"\n"), "x")
        if not isinstance(r, Telemetry):
            tally["dead letters" if type(r).__name__ == "DeadLetter" else "positions"] += 1
            continue
        last = latest.get(r.container_id)
        if last is not None and r.ts <= last:
            tally["duplicates" if r.ts == last else "late"] += 1
            continue
        latest[r.container_id] = r.ts
        tally["in windows" if implausible(r) is None and not r.defrost else "not windowed"] += 1
    return tally


def test_a_vessel_broker_killed_mid_run_loses_nothing(
    kafka_clusters: KafkaClusters, vessel: str, tmp_path: Path
) -> None:
    records = _simulate(tmp_path, containers=400, hours=48, seed=9)
    produce_file(records, vessel)
    expected = _file_mode(records, tmp_path / "file")

    proc = start_flow(
        tmp_path / "kafka", input="kafka", output="kafka", brokers=vessel, kafka_stop_at_end="1"
    )
    while end_offsets(vessel, "reefer.windows") < 0.1 * len(expected["windows"]):
        assert proc.poll() is None, "the run ended before the broker could be killed"
        time.sleep(0.05)
    kafka_clusters.kill_broker("vessel", 2)
    try:
        time.sleep(3)
        assert proc.poll() is None or proc.returncode == 0
    finally:
        kafka_clusters.start_broker("vessel", 2)
    finish(proc)

    got = _kafka_mode(vessel)
    _assert_same_results(got, expected)
    tally = _accounting(records)
    windowed = sum(orjson.loads(w)["count"] for w in got["windows"].values())
    assert windowed == tally["in windows"]
    late_readings = [v for v in got["late"].values() if b'"reefer.telemetry"' in v]
    assert len(late_readings) == tally["late"]
    assert len(got["dlq"]) == tally["dead letters"]


def test_unreachable_brokers_give_a_clear_error_within_the_timeout(tmp_path: Path) -> None:
    started = time.monotonic()
    proc = start_flow(tmp_path, input="kafka", brokers="127.0.0.1:1", kafka_timeout_s="3")
    _, err = proc.communicate(timeout=60)
    elapsed = time.monotonic() - started
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 2
    assert len(lines) == 1 and "no Kafka broker answered at 127.0.0.1:1 within 3 s" in lines[0]
    assert elapsed < 3 + 10  # the timeout plus interpreter start-up, never a hang


def test_a_missing_topic_is_a_clear_error(kafka_clusters: KafkaClusters, tmp_path: Path) -> None:
    # The shore cluster holds none of the vessel's input topics.
    proc = start_flow(
        tmp_path, input="kafka", brokers=kafka_clusters.shore_brokers, kafka_timeout_s="5"
    )
    _, err = proc.communicate(timeout=60)
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 2
    assert len(lines) == 1 and "topic 'vessel.position' does not exist" in lines[0]
    assert "never auto-creates topics" in lines[0]


def test_a_cluster_that_dies_mid_run_stops_the_flow_with_a_clear_error(
    kafka_clusters: KafkaClusters, tmp_path: Path
) -> None:
    """All brokers gone (the 1-node shore cluster, used as a stand-in): the flow must
    stop with one clear line within the timeout instead of waiting forever, and a
    restart once the cluster is back resumes and finishes with the same results."""
    shore = kafka_clusters.shore_brokers
    specs = [
        replace(s, replication_factor=1, config={**s.config, "min.insync.replicas": "1"})
        for s in contract_topics()
    ]
    create_topics(shore, specs)
    records = _simulate(tmp_path, containers=300, hours=48, seed=13)
    produce_file(records, shore)
    expected = _file_mode(records, tmp_path / "file")

    recovery = tmp_path / "recovery"
    settings = {
        "input": "kafka",
        "output": "kafka",
        "brokers": shore,
        "kafka_stop_at_end": "1",
        "kafka_timeout_s": "4",
    }
    proc = start_flow(tmp_path / "kafka", recovery, **settings)
    try:
        while end_offsets(shore, "reefer.windows") < 0.2 * len(expected["windows"]):
            assert proc.poll() is None, "the run ended before the cluster could be killed"
            time.sleep(0.05)
        kafka_clusters.kill_broker("shore", 1)
        killed = time.monotonic()
        _, err = proc.communicate(timeout=120)
        waited = time.monotonic() - killed
    finally:
        kafka_clusters.start_broker("shore", 1)
    text = "\n".join(line for line in err.decode().splitlines() if not line.startswith("%"))
    assert proc.returncode != 0
    assert "the run stops" in text and "COLDWAKE_KAFKA_TIMEOUT_S" in text, text[:3000]
    assert waited < 4 + 30  # the timeout plus at most one flush timeout: never a hang

    try:
        finish(start_flow(tmp_path / "kafka", recovery, **settings))
        _assert_same_results(_kafka_mode(shore), expected)
    finally:  # the shore cluster holds no contract topics in the other tests
        admin = admin_client(shore)  # held: the futures need a live client
        for future in admin.delete_topics([s.name for s in specs]).values():
            future.result(timeout=30)
