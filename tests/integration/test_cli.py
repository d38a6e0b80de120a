"""The job's command line as a user meets it: one line for a bad setting, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_job_stops_at_start_with_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bytewax.run", "flows.vessel"],
        cwd=ROOT,
        capture_output=True,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(ROOT),
            "COLDWAKE_DATA_DIR": str(tmp_path),
            "COLDWAKE_DOOR_SPEED_KN": "fast",
        },
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines() == [
        "coldwake: configuration error: COLDWAKE_DOOR_SPEED_KN='fast' is not valid: "
        "knots from 0 to 50, e.g. 2.0"
    ]
