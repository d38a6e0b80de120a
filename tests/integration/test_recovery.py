"""kill -9 of the real `python -m bytewax.run flows.vessel`, then resume: same outputs."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.simulator import SimConfig, write_files
from flows.sinks import LOCAL_FILES
from state.store import TableReader, table_path

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _env(data_dir: Path, records: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLDWAKE_")}
    env.update(
        COLDWAKE_INPUT=f"file:{records}",
        COLDWAKE_DATA_DIR=str(data_dir),
        COLDWAKE_PROGRESS_S="0",
        PYTHONPATH=str(ROOT),
    )
    return env


def _start(data_dir: Path, records: Path, recovery: Path | None) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "bytewax.run", "flows.vessel"]
    if recovery is not None:
        cmd += ["-r", str(recovery), "-s", "1", "-b", "0"]
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=_env(data_dir, records),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _finish(proc: subprocess.Popen[bytes]) -> None:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-3000:]


def _outputs(data_dir: Path) -> dict[str, bytes]:
    files = {name: (data_dir / "out" / name).read_bytes() for name in LOCAL_FILES.values()}
    with TableReader(table_path(data_dir)) as table:
        files["table"] = b"\n".join(k.encode() + b"=" + v for k, v in table.items())
        files["table-count"] = str(table.count()).encode()
    return files


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    path, _ = write_files(SimConfig(seed=11, containers=420, hours=48.0), out)
    assert sum(1 for _ in path.open("rb")) >= 100_000
    return path


def test_kill_9_three_times_then_resume_gives_the_same_outputs(
    records: Path, tmp_path: Path
) -> None:
    _finish(_start(tmp_path / "baseline", records, None))
    expected = _outputs(tmp_path / "baseline")
    assert expected["alerts.jsonl"] and expected["windows.jsonl"] and expected["dlq.jsonl"]

    # Kill at three random points of progress: when windows.jsonl has reached a random
    # share of its final size (it is truncated back on each resume, then grows again).
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    shares = sorted(rng.uniform(0.05, 0.95) for _ in range(3))
    crashed, recovery = tmp_path / "crashed", tmp_path / "recovery"
    windows = crashed / "out" / "windows.jsonl"
    for share in shares:
        proc = _start(crashed, records, recovery)
        target = share * len(expected["windows.jsonl"])
        while not (windows.exists() and windows.stat().st_size >= target):
            if proc.poll() is not None:
                pytest.fail(f"run ended before reaching {share:.0%} (seed {seed})")
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    _finish(_start(crashed, records, recovery))

    got = _outputs(crashed)
    for name, content in expected.items():
        assert got[name] == content, f"{name} differs after kills at {shares} (seed {seed})"
