"""Shared by the benchmarks: simulated input, and timing a child process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def simulate(work: Path, containers: int, hours: float) -> Path:
    """Write the simulator's records (seed 7) under `work`; return records.jsonl.

    The simulator runs in its own process: what it holds in memory would otherwise
    count in the peak RSS of every child forked from here.
    """
    cmd = [sys.executable, "-m", "flows.sim", "--out", str(work), "--seed", "7",
           "--containers", str(containers), "--hours", str(hours)]  # fmt: skip
    subprocess.run(cmd, cwd=ROOT, check=True, stderr=subprocess.DEVNULL)
    return work / "records.jsonl"


def run_measured(cmd: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Run a command to its end; return wall seconds, its peak RSS in MB, and its stderr."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{err[-2000:]}")
    return wall, usage.ru_maxrss // 1024, err


def flow_summary(stderr: str) -> str:
    """The flow's own closing count line."""
    line = next((line for line in stderr.splitlines() if "input ended" in line), "")
    return line.removeprefix("coldwake: ")
