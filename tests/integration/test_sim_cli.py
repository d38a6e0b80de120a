"""The simulator's command line: both files written, a bad setting in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from flows.sim import SimConfig, generate, labels, load_labels

ROOT = Path(__file__).resolve().parents[2]


def test_cli_writes_both_files(tmp_path: Path) -> None:
    args = ["--seed", "3", "--containers", "5", "--hours", "6", "--malformed-rate", "0.05"]
    done = subprocess.run(
        [sys.executable, "-m", "flows.sim", "--out", str(tmp_path), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "records" in done.stderr
    cfg = SimConfig(seed=3, containers=5, hours=6.0, malformed_rate=0.05)
    assert (tmp_path / "records.jsonl").read_bytes() == b"".join(
        line + b"\n" for line in generate(cfg)
    )
    assert load_labels(tmp_path / "labels.jsonl") == labels(cfg)


def test_cli_rejects_a_bad_setting_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "flows.sim", "--out", str(tmp_path), "--late-rate", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "late_rate must be in [0, 1]" in done.stderr
    assert not (tmp_path / "records.jsonl").exists()
