"""kill -9 of the real `python -m bytewax.run flows.vessel`, then resume: same outputs."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest

from flows.contract import FILE_OUTPUTS
from flows.sim import SimConfig, write_files
from state.reader import TableReader
from state.table import table_path
from tests.integration.kafka_io import finish, start_flow

pytestmark = pytest.mark.integration


def _outputs(data_dir: Path) -> dict[str, bytes]:
    files = {str(o.file): (data_dir / "out" / str(o.file)).read_bytes() for o in FILE_OUTPUTS}
    with TableReader(table_path(data_dir)) as table:
        files["table"] = b"\n".join(k.encode() + b"=" + v for k, v in table.items())
        files["table-count"] = str(table.count()).encode()
    return files


def _kill_three_times_then_finish(tmp_path: Path, **settings: str) -> None:
    finish(start_flow(tmp_path / "baseline", None, **settings))
    expected = _outputs(tmp_path / "baseline")
    assert expected["alerts.jsonl"] and expected["windows.jsonl"] and expected["dlq.jsonl"]

    # Kill at three random points of progress: when windows.jsonl has reached a random
    # share of its final size (it is truncated back on each resume, then grows again).
    seed = random.randrange(1 << 30)
    shares = sorted(random.Random(seed).uniform(0.05, 0.95) for _ in range(3))
    crashed, recovery = tmp_path / "crashed", tmp_path / "recovery"
    windows = crashed / "out" / "windows.jsonl"
    for share in shares:
        proc = start_flow(crashed, recovery, **settings)
        target = share * len(expected["windows.jsonl"])
        while not (windows.exists() and windows.stat().st_size >= target):
            if proc.poll() is not None:
                pytest.fail(f"run ended before reaching {share:.0%} (seed {seed})")
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finish(start_flow(crashed, recovery, **settings))

    got = _outputs(crashed)
    for name, content in expected.items():
        assert got[name] == content, f"{name} differs after kills at {shares} (seed {seed})"


def test_file_input_killed_three_times_gives_the_same_outputs(tmp_path: Path) -> None:
    records, _ = write_files(SimConfig(seed=11, containers=420, hours=48.0), tmp_path / "sim")
    assert sum(1 for _ in records.open("rb")) >= 100_000
    _kill_three_times_then_finish(tmp_path, input=f"file:{records}")


def test_simulator_input_killed_three_times_gives_the_same_outputs(tmp_path: Path) -> None:
    # The quickstart's own job: `python -m bytewax.run flows.vessel -r DIR -s 1 -b 0`.
    _kill_three_times_then_finish(tmp_path, sim_containers="300", sim_seed="21")
