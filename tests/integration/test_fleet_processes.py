"""`python -m bytewax.run flows.fleet` as real processes: the dumps of every table are
byte-identical however the records arrive and however many workers and processes
compute them, and across `kill -9` and a resume with another worker count."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from deploy.kafka.ports import free_ports
from flows.fleet_core.names import DEAD_LETTERS_FILE, TABLE_NAMES
from flows.recovery import committed_epoch
from tests.integration.kafka_io import ROOT, finish, flow_env
from tests.support.fleet import VESSELS, arrivals, fleet_records, shuffled
from tests.unit.test_fleet_scenario import BAD, EXPECTED, RECORDS

pytestmark = pytest.mark.integration

Records = list[tuple[str, bytes]]


def _files(records: Records, directory: Path) -> Path:
    """One `<topic>.jsonl` per topic, records in their order."""
    directory.mkdir(parents=True)
    by_topic: dict[str, list[bytes]] = {}
    for topic, raw in records:
        by_topic.setdefault(topic, []).append(raw)
    for topic, raws in by_topic.items():
        (directory / f"{topic}.jsonl").write_bytes(b"".join(r + b"\n" for r in raws))
    return directory


def _start(
    data: Path, inputs: Path, workers: int, processes: int = 1, recovery: Path | None = None
) -> list[subprocess.Popen[bytes]]:
    """Start the fleet flow: `processes` processes of `workers` workers each."""
    cmd = [sys.executable, "-m", "bytewax.run", "flows.fleet", "-w", str(workers)]
    if recovery is not None:
        cmd += ["-r", str(recovery), "-s", "1", "-b", "0"]
    env = flow_env(data, input=f"file:{inputs}")
    if processes == 1:
        return [subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE)]
    addresses = ";".join(f"127.0.0.1:{p}" for p in free_ports(processes))
    return [
        subprocess.Popen(
            [*cmd, "-i", str(i), "-a", addresses], cwd=ROOT, env=env, stderr=subprocess.PIPE
        )
        for i in range(processes)
    ]


def _run(data: Path, inputs: Path, workers: int = 1, processes: int = 1) -> str:
    return "".join(finish(p) for p in _start(data, inputs, workers, processes))


def _dumps(data: Path) -> dict[str, bytes]:
    """`python -m state.query DATA dump TABLE` of every fleet table."""
    out: dict[str, bytes] = {}
    for table in TABLE_NAMES:
        done = subprocess.run(
            [sys.executable, "-m", "state.query", str(data), "dump", table],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            check=True,
        )
        out[table] = done.stdout
    return out


def test_the_hand_made_fleet_dumps_the_rows_computed_by_hand(tmp_path: Path) -> None:
    inputs = _files(RECORDS + RECORDS + BAD, tmp_path / "in")
    log = _run(tmp_path / "data", inputs, workers=2)
    assert "starting afresh" in log
    for table in TABLE_NAMES:
        lines = [
            b'{"key":' + orjson.dumps(key) + b',"value":' + row + b"}\n"
            for key, row in sorted(EXPECTED.get(table, {}).items(), key=lambda kv: kv[0].encode())
        ]
        assert _dumps(tmp_path / "data")[table] == b"".join(lines), table
    letters = (tmp_path / "data" / "out" / DEAD_LETTERS_FILE).read_bytes().splitlines()
    # The directory's telemetry file is not a topic the fleet reads: it is left out.
    assert [orjson.loads(x)["source"] for x in letters] == ["IMO9778791.reefer.windows"]


def test_order_replays_workers_and_processes_give_byte_identical_dumps(tmp_path: Path) -> None:
    records = fleet_records(5, containers=300)
    rng = random.Random(5)
    in_order = _files(arrivals(records), tmp_path / "in-order")
    offline = _files(arrivals(records + records[::3], offline=VESSELS[2]), tmp_path / "offline")
    mixed = _files(shuffled(records, rng), tmp_path / "shuffled")

    _run(tmp_path / "w1", in_order, workers=1)
    expected = _dumps(tmp_path / "w1")
    assert all(expected[t].count(b"\n") >= 3 for t in TABLE_NAMES), expected
    _run(tmp_path / "w2", offline, workers=2)
    assert _dumps(tmp_path / "w2") == expected
    _run(tmp_path / "p2w2", mixed, workers=2, processes=2)
    assert _dumps(tmp_path / "p2w2") == expected


def _start_until_snapshot(
    data: Path,
    inputs: Path,
    recovery: Path,
    epoch: Callable[[Path], int | None],
    at_least: int,
) -> list[subprocess.Popen[bytes]]:
    """2 processes x 2 workers with a new 4-partition recovery dir, running once `epoch`
    of it reaches `at_least` and a random moment more (ready to be killed)."""
    recovery.mkdir()
    subprocess.run(
        [sys.executable, "-m", "bytewax.recovery", str(recovery), "4"], cwd=ROOT, check=True
    )
    procs = _start(data, inputs, workers=2, processes=2, recovery=recovery)
    deadline = time.monotonic() + 120
    while (epoch(recovery) or 0) < at_least:  # snapshots are committed: kill a bit later
        assert all(p.poll() is None for p in procs), "the run ended before the kill"
        assert time.monotonic() < deadline, "the run never committed a snapshot"
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 1.0))
    assert all(p.poll() is None for p in procs), "the run ended before the kill"
    return procs


def test_kill_9_of_one_process_then_a_resume_with_other_workers(tmp_path: Path) -> None:
    records = fleet_records(8, containers=3000)
    inputs = _files(shuffled(records, random.Random(8)), tmp_path / "in")
    _run(tmp_path / "baseline", inputs, workers=2)
    expected = _dumps(tmp_path / "baseline")

    data, recovery = tmp_path / "crashed", tmp_path / "recovery"
    procs = _start_until_snapshot(data, inputs, recovery, committed_epoch, 3)
    procs[1].send_signal(signal.SIGKILL)
    procs[1].wait()
    try:
        procs[0].wait(timeout=20)  # its peer is gone: it stops too
    except subprocess.TimeoutExpired:
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait()
    for p in procs:
        assert p.stderr is not None
        p.stderr.close()

    log = "".join(finish(p) for p in _start(data, inputs, workers=3, recovery=recovery))
    assert "resuming" in log
    assert log.count("rolled back") == 8, log  # every shard rolls back to the snapshot
    assert _dumps(data) == expected


@pytest.mark.parametrize(
    ("settings", "line"),
    [
        (
            {},
            "coldwake: configuration error: COLDWAKE_FLEET_BROKERS is not set: the fleet flow "
            "reads the shore cluster, e.g. COLDWAKE_FLEET_BROKERS=127.0.0.1:9192 (or set "
            "COLDWAKE_INPUT=file:PATH)",
        ),
        (
            {"fleet_brokers": "127.0.0.1:1", "kafka_timeout_s": "2"},
            "coldwake: no Kafka broker answered at 127.0.0.1:1 within 2 s",
        ),
    ],
)
def test_a_bad_setting_or_a_dead_cluster_stops_the_job_with_one_line(
    tmp_path: Path, settings: dict[str, str], line: str
) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "bytewax.run", "flows.fleet"],
        cwd=ROOT,
        env=flow_env(tmp_path, **settings),
        capture_output=True,
        timeout=60,
    )
    lines = done.stderr.decode().splitlines()
    assert done.returncode == 2
    assert len(lines) == 1 and lines[0].startswith(line), lines
    assert time.monotonic() - started < 30
