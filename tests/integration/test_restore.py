"""`python -m state.restore` on real runs: a lost store is rebuilt consistently with the
recovery snapshot, and `-r` then resumes as if nothing had been lost."""

from __future__ import annotations

import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from deploy.kafka.admin import admin_client
from flows.contract import CONTAINER_STATE, INPUT_TOPICS, OUTPUT_TOPICS
from flows.edges.kafka.admin import topic_partitions
from flows.edges.kafka.changelog import ensure_fleet_topics
from flows.edges.kafka.compacted import publish, read_compacted
from flows.edges.kafka.errors import KafkaUnavailableError
from flows.edges.kafka.producer import produce_file
from flows.fleet_core.names import TABLE_NAMES, TABLES
from flows.recovery import resume_epoch
from flows.sim import SimConfig, write_files
from tests.integration.conftest import KafkaClusters
from tests.integration.kafka_io import ROOT, end_offsets, finish, flow_env
from tests.integration.test_fleet_processes import (
    _dumps,
    _files,
    _run,
    _start,
    _start_until_snapshot,
)
from tests.support.fleet import fleet_records, shuffled
from tests.support.kafka import reset_topics

pytestmark = pytest.mark.integration


def restore(data: Path, recovery: Path, *args: str) -> tuple[int, list[str]]:
    """Run `python -m state.restore`; return its exit code and stderr lines."""
    done = subprocess.run(
        [sys.executable, "-m", "state.restore", str(data), "--recovery", str(recovery), *args],
        cwd=ROOT,
        env=flow_env(data),
        capture_output=True,
        timeout=120,
    )
    return done.returncode, done.stderr.decode().splitlines()


def table(data: Path) -> bytes:
    """`python -m state.query DATA list`: every row of the vessel's table, key order."""
    cmd = [sys.executable, "-m", "state.query", str(data), "list"]
    return subprocess.run(cmd, cwd=ROOT, env=flow_env(data), capture_output=True, check=True).stdout


def fresh_topics(brokers: str) -> None:
    """Empty contract topics, once every broker lists them (producing may follow at once)."""
    reset_topics(brokers)
    deadline = time.monotonic() + 30
    while True:
        try:
            topic_partitions(brokers, INPUT_TOPICS + OUTPUT_TOPICS, 10.0)
            return
        except KafkaUnavailableError:
            assert time.monotonic() < deadline, "the contract's topics never showed up"
            time.sleep(0.2)


def epoch(recovery: Path) -> int | None:
    """`resume_epoch`, None while the flow is still creating its recovery partition."""
    try:
        return resume_epoch(recovery) if recovery.is_dir() else None
    except sqlite3.OperationalError:
        return None


def vessel_run(
    data: Path, brokers: str, recovery: Path | None = None, snapshot_s: int = 1
) -> subprocess.Popen[bytes]:
    """The vessel flow in Kafka mode (in and out), to the end of its input."""
    cmd = [sys.executable, "-m", "bytewax.run", "flows.vessel"]
    if recovery is not None:
        cmd += ["-r", str(recovery), "-s", str(snapshot_s), "-b", "0"]
    env = flow_env(data, input="kafka", output="kafka", brokers=brokers, kafka_stop_at_end="1")
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def test_a_vessel_table_restored_from_its_topic_resumes_to_the_uninterrupted_table(
    kafka_clusters: KafkaClusters, tmp_path: Path
) -> None:
    brokers = kafka_clusters.vessel_brokers
    records, _ = write_files(SimConfig(seed=31, containers=800, hours=48.0), tmp_path / "sim")
    fresh_topics(brokers)
    produce_file(records, brokers)
    finish(vessel_run(tmp_path / "baseline", brokers))
    expected = table(tmp_path / "baseline")
    assert expected.count(b"\n") == 800

    # The same input on clean topics, killed once the topic is ahead of a snapshot.
    fresh_topics(brokers)
    produce_file(records, brokers)
    data, recovery = tmp_path / "crashed", tmp_path / "recovery"
    proc = vessel_run(data, brokers, recovery, snapshot_s=5)
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, "the run ended before the kill"
        assert time.monotonic() < deadline, "the run never committed a snapshot"
        at = epoch(recovery)
        if at is not None and at >= 2:  # epoch 1's snapshot is durable
            at_snapshot = end_offsets(brokers, CONTAINER_STATE.topic)
            time.sleep(random.uniform(1.0, 2.0))
            # Still that snapshot, and rows written since it: kill now.
            if epoch(recovery) == at and (
                end_offsets(brokers, CONTAINER_STATE.topic) > at_snapshot
            ):
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.stderr is not None
    proc.stderr.close()

    code, lines = restore(data, recovery, "--brokers", brokers)
    assert code == 2 and len(lines) == 1 and "still exists" in lines[0], lines
    shutil.rmtree(data / "state")
    code, lines = restore(data, recovery, "--brokers", brokers)
    assert code == 0 and len(lines) == 1, lines
    assert (
        lines[0].startswith("coldwake: restored ") and "rows of container-state from " in lines[0]
    )

    finish(vessel_run(data, brokers, recovery))
    assert table(data) == expected


def test_a_missing_or_empty_topic_and_a_dead_cluster_are_one_line(
    kafka_clusters: KafkaClusters, tmp_path: Path
) -> None:
    brokers = kafka_clusters.vessel_brokers
    fresh_topics(brokers)
    data, recovery = tmp_path / "data", tmp_path / "recovery"
    sim = {"sim_containers": "20", "sim_hours": "2"}
    env = flow_env(data, output="kafka", brokers=brokers, **sim)
    cmd = [
        sys.executable,
        "-m",
        "bytewax.run",
        "flows.vessel",
        "-r",
        str(recovery),
        "-s",
        "1",
        "-b",
        "0",
    ]
    finish(subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE))
    shutil.rmtree(data / "state")
    try:
        fresh_topics(brokers)  # every topic empty
        code, lines = restore(data, recovery, "--brokers", brokers)
        assert code == 2 and len(lines) == 1, lines
        assert f"{CONTAINER_STATE.topic} on {brokers} is empty" in lines[0]
        admin = admin_client(brokers)
        for future in admin.delete_topics([CONTAINER_STATE.topic]).values():
            future.result(timeout=30)
        code, lines = restore(data, recovery, "--brokers", brokers)
        assert code == 2 and len(lines) == 1, lines
        assert f"{CONTAINER_STATE.topic} on {brokers} is missing" in lines[0]
        started = time.monotonic()
        code, lines = restore(data, recovery, "--brokers", "127.0.0.1:1", "--timeout", "2")
        assert code == 2 and len(lines) == 1 and "no Kafka broker answered" in lines[0], lines
        assert time.monotonic() - started < 2 + 15  # the timeout and start-up, never a hang
    finally:
        fresh_topics(brokers)  # the contract's topics exist, empty, for the next test
    assert not (data / "state" / "container-state").exists()  # nothing written on failure


def test_the_fleet_store_restored_from_the_snapshot_resumes_to_the_uninterrupted_dumps(
    kafka_clusters: KafkaClusters, tmp_path: Path
) -> None:
    records = fleet_records(8, containers=3000)
    inputs = _files(shuffled(records, random.Random(8)), tmp_path / "in")
    _run(tmp_path / "baseline", inputs, workers=2)
    expected = _dumps(tmp_path / "baseline")

    data, recovery = tmp_path / "crashed", tmp_path / "recovery"
    procs = _start_until_snapshot(data, inputs, recovery, epoch, 4)
    for p in procs:
        p.send_signal(signal.SIGKILL)
        p.wait()
        assert p.stderr is not None
        p.stderr.close()
    shutil.rmtree(data / "state" / "fleet")

    # The changelog topics hold rows written after the snapshot (here: the final ones).
    shore = kafka_clusters.shore_brokers
    ensure_fleet_topics(shore, 30.0, fresh=True)
    final = [(t.topic, row[0].encode(), row[1]) for t in TABLES for row in _rows(expected[t.name])]
    publish(shore, final, 30.0)
    try:
        code, lines = restore(data, recovery, "--brokers", shore)
        assert code == 0 and len(lines) == 2, lines
        assert lines[0].startswith("coldwake: restored ") and "into 8 shards" in lines[0]
        assert " rows ahead of the snapshot" in lines[1] and "republished" in lines[1]
        restored = _dumps(data)
        assert restored != expected  # the snapshot is older than the end
        # The topics are back at the snapshot: what the restored shards hold.
        for t in TABLES:
            rows = read_compacted(shore, t.topic, 30.0).rows
            assert {k.decode(): v for k, v in rows.items()} == dict(_rows(restored[t.name]))
    finally:
        ensure_fleet_topics(shore, 30.0, fresh=True)

    log = "".join(finish(p) for p in _start(data, inputs, workers=3, recovery=recovery))
    assert log.count("rolled back 0 rows") == 8, log  # nothing to take back: no undo log
    assert _dumps(data) == expected
    assert set(expected) == set(TABLE_NAMES)


def _rows(dump: bytes) -> list[tuple[str, bytes]]:
    """`(key, JSON)` of `state.query dump` lines (values are kept byte for byte)."""
    out = []
    for line in dump.splitlines():
        key = orjson.loads(line)["key"]
        start = line.index(b',"value":') + len(b',"value":')
        out.append((key, line[start:-1]))
    return out
