"""The crew queries the container-state table while the flow is writing it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.integration.kafka_io import ROOT, finish, flow_env, start_flow

pytestmark = pytest.mark.integration


def _query(data_dir: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "state.query", str(data_dir), *args],
        cwd=ROOT, env=flow_env(data_dir), capture_output=True, timeout=30,
    )  # fmt: skip


def test_state_query_reads_the_table_while_the_flow_runs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = start_flow(data, sim_containers="400", sim_hours="96")
    seen_while_running: list[int] = []
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        result = _query(data, "count")
        if result.returncode == 0 and proc.poll() is None:
            seen_while_running.append(int(result.stdout))
        time.sleep(0.2)
    finish(proc)
    assert seen_while_running and max(seen_while_running) > 0, "no read while running"
    assert seen_while_running == sorted(seen_while_running)  # the table only grows

    listed = [orjson.loads(line) for line in _query(data, "list").stdout.splitlines()]
    assert len(listed) == 400
    one = listed[0]["container_id"]
    got = orjson.loads(_query(data, "get", one).stdout)
    assert got["container_id"] == one and "open_alerts" in got and got["ts"].endswith("Z")
