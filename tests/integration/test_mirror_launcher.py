"""A mirrored deployment comes up every time, leaves no process behind, and says what it lacks.

``up --vessels 2 --vessel-nodes 1`` starts 6 processes (2 vessel nodes, the shore, the
link proxy, 2 MirrorMakers). One up/down cycle takes about 20 s on 2 cores (up 16-19 s,
down ~1 s), so the test runs 5 cycles (~100 s), not the issue's 20 (~7 min), to stay
within CI's budget; the first through the command line, the rest through the library.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.kafka import commands
from deploy.kafka.jars import lib_dir, require_java
from deploy.kafka.layout import STATE_FILE, Deployment
from deploy.kafka.mirroring import all_running
from deploy.kafka.processes import pids_naming
from tests.support.kafka import kill_strays

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CYCLES = 20  # the issue asks for 20; about 20 s each on 2 cores
PROCESSES = 6


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy.kafka", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_up_down_cycles_with_two_vessels_start_everything_and_leave_nothing(
    tmp_path: Path,
) -> None:
    home = tmp_path / "kafka"
    try:
        up = _cli("up", "--dir", str(home), "--vessels", "2", "--vessel-nodes", "1")
        assert up.returncode == 0, up.stderr
        dep = Deployment.load(home)
        assert up.stdout.splitlines() == [
            f"VESSEL_BROKERS={dep.cluster('vessel1').bootstrap}",
            f"VESSEL_BROKERS_VESSEL1={dep.cluster('vessel1').bootstrap}",
            f"VESSEL_BROKERS_VESSEL2={dep.cluster('vessel2').bootstrap}",
            f"SHORE_BROKERS={dep.shore.bootstrap}",
        ]
        assert all_running(dep)
        status = _cli("status", "--dir", str(home))
        assert status.returncode == 0, status.stdout
        down = _cli("down", "--dir", str(home))
        assert down.returncode == 0, down.stderr
        assert f"stopped {PROCESSES} process(es)" in down.stderr
        assert pids_naming(home) == []

        for cycle in range(2, CYCLES + 1):
            result = commands.up(home)
            assert not result.already_running, cycle
            assert all_running(result.deployment), cycle
            assert len(commands.down(home)) == PROCESSES, cycle
            assert pids_naming(home) == [], cycle
    finally:
        try:
            if (home / STATE_FILE).exists():
                commands.down(home, timeout=20.0)
        finally:
            strays = kill_strays(home)
        assert not strays, f"processes {strays} of {home} outlived down(); killed them"


def test_first_mirrored_run_without_go_is_one_clear_line_and_exit_2(tmp_path: Path) -> None:
    # The Kafka jars are cached, Toxiproxy is not, and there is no `go` to build it.
    java, mvn = require_java(), shutil.which("mvn")
    assert mvn is not None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "java").symlink_to(java)
    (bin_dir / "mvn").symlink_to(mvn)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / lib_dir().parent.name).symlink_to(lib_dir().parent)
    env = {**os.environ, "PATH": str(bin_dir), "COLDWAKE_KAFKA_CACHE": str(cache)}
    home = tmp_path / "kafka"

    result = subprocess.run(
        [sys.executable, "-m", "deploy.kafka", "up", "--dir", str(home), "--vessels", "1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr == (
        "error: go not found on PATH; install Go 1.23+ (needed once, to build Toxiproxy 2.12.0)\n"
    )
    assert pids_naming(home) == []
