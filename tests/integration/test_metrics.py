"""`/metrics` of real `python -m bytewax.run` runs, parsed with prometheus-client's parser,
against what each run said in its summary and wrote in its outputs.

The flows run under `tests.support.linger`, which keeps the process (and so its
metrics server) alive after the flow returns, until the test has scraped it.
"""

from __future__ import annotations

import random
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from flows.contract import ALERT_KINDS, ALERTS, DLQ, INPUT_TOPICS, LATE, WINDOWS
from flows.edges.kafka.admin import topic_partitions
from flows.edges.kafka.producer import produce_file
from flows.events import DeadLetter, parse
from flows.fleet_core.names import DEAD_LETTERS_FILE, TABLE_NAMES
from flows.recovery import committed_epoch
from flows.sim import SimConfig
from flows.sim.emit import write_files
from tests.integration.conftest import KafkaClusters
from tests.integration.kafka_io import ROOT, flow_env
from tests.integration.test_fleet_processes import _dumps, _files
from tests.support.fleet import fleet_records, shuffled
from tests.support.kafka import reset_topics
from tests.support.linger import LINGER_MARK
from tests.unit.test_fleet_scenario import BAD

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
_SERVED = re.compile(r"coldwake: metrics at http://127\.0\.0\.1:(\d+)/metrics")


def _linger(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.linger", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _returned(proc: subprocess.Popen[bytes]) -> str:
    """The stderr of a lingering run, up to the line that says the flow returned 0."""
    assert proc.stderr is not None
    lines: list[str] = []
    while True:
        line = proc.stderr.readline().decode(errors="replace")
        assert line, "".join(lines)[-3000:]  # ended without returning: a crash
        if line.startswith(LINGER_MARK):
            assert line.split()[-1] == "0", "".join(lines)[-3000:]
            return "".join(lines)
        lines.append(line)


def _release(proc: subprocess.Popen[bytes]) -> None:
    assert proc.stdin is not None and proc.stderr is not None
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0
    proc.stderr.close()


def _scrape(log: str) -> Samples:
    """Every sample the run's metrics server shows, by name and labels."""
    found = _SERVED.search(log)
    assert found, log
    url = f"http://127.0.0.1:{found.group(1)}/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _get(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def _summary(log: str) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """The run's closing summary: its counts, and alerts by (kind, state)."""

    def number(label: str) -> int:
        found = re.search(rf"{label} ([\d,]+)", log)
        assert found, (label, log)
        return int(found.group(1).replace(",", ""))

    counts = {
        name: number(label)
        for name, label in [
            ("records", "input ended:"),
            ("readings", "readings"),
            ("positions", "positions"),
            ("duplicates", "duplicates"),
            ("late_readings", "late readings"),
            ("late_positions", "late positions"),
            ("dead_letters", "dead letters"),
            ("windows", "windows"),
        ]
    }
    alerts: dict[tuple[str, str], int] = {}
    for kind in ALERT_KINDS:
        row = re.search(rf"{kind}\s+([\d,]+) / ([\d,]+) / ([\d,]+)", log)
        assert row, (kind, log)
        for state, n in zip(("open", "closed", "retracted"), row.groups(), strict=True):
            alerts[(kind, state)] = int(n.replace(",", ""))
    return counts, alerts


def _lines(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().splitlines() if line.strip()]


def test_the_vessel_flows_metrics_equal_its_summary_and_outputs(tmp_path: Path) -> None:
    records, _ = write_files(SimConfig(seed=7, containers=200, hours=24), tmp_path / "sim")
    data = tmp_path / "data"
    env = flow_env(data, input=f"file:{records}", metrics_port="0")
    recovery = ["-r", str(tmp_path / "recovery"), "-s", "1", "-b", "0"]
    proc = _linger(["flows.vessel", *recovery], env)
    try:
        log = _returned(proc)
        samples, scraped_at = _scrape(log), time.time()
    finally:
        _release(proc)

    counts, alerts = _summary(log)
    out = data / "out"
    inputs = _lines(records)
    assert _get(samples, "coldwake_vessel_records_in_total") == counts["records"] == len(inputs)
    assert _get(samples, "coldwake_vessel_readings_total") == counts["readings"]
    assert _get(samples, "coldwake_vessel_positions_total") == counts["positions"]
    assert _get(samples, "coldwake_vessel_duplicates_total") == counts["duplicates"]
    late = {
        r: _get(samples, "coldwake_vessel_late_total", record=r) for r in ("reading", "position")
    }
    assert late == {"reading": counts["late_readings"], "position": counts["late_positions"]}
    assert sum(late.values()) == len(_lines(out / str(LATE.file)))
    dead = _get(samples, "coldwake_vessel_dead_letters_total")
    assert dead == counts["dead_letters"] == len(_lines(out / str(DLQ.file))) > 0
    windows = _get(samples, "coldwake_vessel_windows_total")
    assert windows == counts["windows"] == len(_lines(out / str(WINDOWS.file)))
    scraped = {
        (kind, state): _get(samples, "coldwake_vessel_alerts_total", kind=kind, state=state)
        for kind, state in alerts
    }
    assert scraped == alerts
    written = Counter(
        (obj["kind"], obj["state"]) for obj in map(orjson.loads, _lines(out / str(ALERTS.file)))
    )
    assert {key: written[key] for key in alerts} == alerts
    assert all(alerts[(kind, "open")] > 0 for kind in ALERT_KINDS)  # every kind was seen
    assert _get(samples, "coldwake_vessel_held_records") == 0
    assert _get(samples, "coldwake_vessel_merge_waiting_records") == 0

    # The vessel's event time is the latest ts of its records (the run had no clock jump).
    parsed = [parse(line, "in:") for line in inputs]
    ts = [r.ts for r in parsed if not isinstance(r, DeadLetter)]
    vessel = {r.vessel_id for r in parsed if not isinstance(r, DeadLetter)}.pop()
    assert _get(samples, "coldwake_vessel_event_time_seconds", vessel=vessel) == max(ts) / 1e6
    lag = _get(samples, "coldwake_vessel_watermark_lag_seconds", vessel=vessel)
    assert abs(lag - (scraped_at - max(ts) / 1e6)) < 5
    for step in ("detect", "table"):
        assert _get(samples, "coldwake_snapshot_duration_seconds_count", step=step) >= 1
    assert _get(samples, "process_cpu_seconds_total") > 0  # the default registry's own
    assert not any(name.startswith("coldwake_fleet_") for name, _ in samples)


def _consecutive_free_ports() -> int:
    """A port P such that P and P + 1 are free now."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise AssertionError("no two consecutive free ports")


def test_two_fleet_processes_serve_on_port_and_port_plus_one(tmp_path: Path) -> None:
    # BAD[1] is left out: its file's topic is not one the fleet reads.
    inputs = _files(fleet_records(5, containers=300) + BAD[:1], tmp_path / "in")
    data = tmp_path / "data"
    port = _consecutive_free_ports()
    env = flow_env(data, input=f"file:{inputs}", metrics_port=str(port))
    addresses = ";".join(f"127.0.0.1:{p}" for p in (port + 2, port + 3))
    procs = [
        _linger(["flows.fleet", "-w", "2", "-i", str(i), "-a", addresses], env) for i in (0, 1)
    ]
    try:
        logs = [_returned(p) for p in procs]
        scrapes = [_scrape(log) for log in logs]
    finally:
        for p in procs:
            _release(p)

    assert [_SERVED.search(log).group(1) for log in logs] == [str(port), str(port + 1)]  # type: ignore[union-attr]

    def total(name: str, **labels: str) -> float:
        return sum(_get(s, name, **labels) for s in scrapes)

    # Every line of every file is a vessel record; some do not decode (BAD[0] among them).
    lines = sum(len(_lines(f)) for f in inputs.iterdir())
    assert total("coldwake_fleet_records_in_total") == lines
    dead = total("coldwake_fleet_dead_letters_total")
    assert dead == len(_lines(data / "out" / DEAD_LETTERS_FILE)) > 0
    dumps = _dumps(data)
    for table in TABLE_NAMES:
        changes = total("coldwake_fleet_table_changes_total", table=table)
        # Every row the table ends with was written at least once.
        assert changes >= dumps[table].count(b"\n") > 0, table
    assert all(not any(n.startswith("coldwake_vessel_") for n, _ in s) for s in scrapes)


def test_a_resumed_fleet_run_counts_the_rows_it_rolled_back(tmp_path: Path) -> None:
    inputs = _files(shuffled(fleet_records(8, containers=1000), random.Random(8)), tmp_path / "in")
    data, recovery = tmp_path / "data", tmp_path / "recovery"
    recovery.mkdir()
    subprocess.run(
        [sys.executable, "-m", "bytewax.recovery", str(recovery), "1"], cwd=ROOT, check=True
    )
    args = ["flows.fleet", "-w", "2", "-r", str(recovery), "-s", "1", "-b", "0"]
    env = flow_env(data, input=f"file:{inputs}")
    crashed = subprocess.Popen(
        [sys.executable, "-m", "bytewax.run", *args], cwd=ROOT, env=env, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while (committed_epoch(recovery) or 0) < 2:
        assert crashed.poll() is None, "the run ended before the kill"
        assert time.monotonic() < deadline, "the run never committed a snapshot"
        time.sleep(0.05)
    time.sleep(0.5)  # rows written after the snapshot: the resume rolls them back
    assert crashed.poll() is None, "the run ended before the kill"
    crashed.send_signal(signal.SIGKILL)
    crashed.wait()

    proc = _linger(args, {**env, "COLDWAKE_METRICS_PORT": "0"})
    try:
        log = _returned(proc)
        samples = _scrape(log)
    finally:
        _release(proc)
    said = [int(n.replace(",", "")) for n in re.findall(r"rolled back ([\d,]+) rows", log)]
    assert len(said) == 8  # one line per shard
    assert _get(samples, "coldwake_fleet_rows_rolled_back_total") == sum(said) > 0
    assert _get(samples, "coldwake_snapshot_duration_seconds_count", step="tables") >= 1


def test_kafka_consumer_lag_per_input_partition_drains_to_zero(
    kafka_clusters: KafkaClusters, tmp_path: Path
) -> None:
    """A live run (no stop at end) catches up with a backlog: each input partition's lag
    shows the backlog, then 0, and the records taken in are the records produced."""
    brokers = kafka_clusters.vessel_brokers
    reset_topics(brokers)
    records, _ = write_files(SimConfig(seed=3, containers=500, hours=24), tmp_path / "sim")
    produced, _ = produce_file(records, brokers)
    env = flow_env(tmp_path / "data", input="kafka", brokers=brokers, metrics_port="0", idle_s="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bytewax.run", "flows.vessel"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        log = ""
        while not _SERVED.search(log):
            line = proc.stderr.readline().decode()
            assert line, log
            log += line
        partitions = {
            (name.split("[")[0], name.split("[")[1].rstrip("]"))
            for name in topic_partitions(brokers, INPUT_TOPICS, 10)
        }
        most, deadline = 0.0, time.monotonic() + 120
        while True:
            samples = _scrape(log)
            lags = {
                (labels["topic"], labels["partition"]): value
                for (name, frozen), value in samples.items()
                if name == "coldwake_kafka_consumer_lag"
                for labels in [dict(frozen)]
            }
            most = max([most, *lags.values()])
            taken = samples.get(("coldwake_vessel_records_in_total", frozenset()), 0)
            if taken == produced and set(lags) == partitions and not any(lags.values()):
                break
            assert time.monotonic() < deadline, (taken, produced, lags)
            assert proc.poll() is None, log
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert most > 0  # the backlog showed before it was read


def test_a_taken_metrics_port_stops_the_run_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "bytewax.run", "flows.vessel"],
            cwd=ROOT,
            env=flow_env(tmp_path, sim_hours="1", metrics_port=str(port)),
            capture_output=True,
            timeout=60,
        )
    lines = done.stderr.decode().splitlines()
    assert done.returncode == 2, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        f"coldwake: configuration error: COLDWAKE_METRICS_PORT={port}: cannot serve metrics "
        f"on 127.0.0.1:{port} (process 0)"
    ), lines
