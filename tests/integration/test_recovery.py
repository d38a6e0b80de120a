"""kill -9 of the real `python -m bytewax.run flows.vessel`, then resume: same outputs."""

from __future__ import annotations

import itertools
import random
import signal
import time
from pathlib import Path

import orjson
import pytest

from flows.contract import FILE_OUTPUTS
from flows.events import Telemetry, parse
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


def _backlog_and_far_future(records: Path, out: Path) -> Path:
    """The same records, but one container's readings from about 10:00 to 14:00 arrive at
    14:00 (a buffered backlog, in order, behind the vessel's clock), cut inside one of its
    15-minute windows so that the window is revised; and a reading dated 2099 comes in
    the middle (a controller with a dead clock battery)."""
    lines = records.read_bytes().splitlines()
    parsed = [parse(x, "x") for x in lines]
    readings = [r for r in parsed if isinstance(r, Telemetry)]
    box, t0 = readings[0].container_id, readings[0].ts
    hour, window = 3_600_000_000, 900_000_000
    own = [r.ts for r in readings if r.container_id == box and r.ts - t0 >= 10 * hour]
    cut = next(b for a, b in itertools.pairwise(own) if a // window == b // window)

    def moved(r: object) -> bool:
        return isinstance(r, Telemetry) and r.container_id == box and cut <= r.ts < t0 + 14 * hour

    held = [x for x, r in zip(lines, parsed, strict=True) if moved(r)]
    rest = [x for x, r in zip(lines, parsed, strict=True) if not moved(r)]
    after = [r for r in parsed if not moved(r)]
    at_14 = next(
        i for i, r in enumerate(after) if isinstance(r, Telemetry) and r.ts - t0 >= 14 * hour
    )
    future = orjson.loads(held[0])
    future["ts"] = "2099-01-01T00:00:00Z"
    mixed = [*rest[:at_14], *held, *rest[at_14:]]
    mixed.insert(len(mixed) // 2, orjson.dumps(future))
    path = out / "backlog.jsonl"
    path.write_bytes(b"".join(x + b"\n" for x in mixed))
    return path


def test_a_backlog_and_a_far_future_reading_survive_kill_9_exactly(tmp_path: Path) -> None:
    records, _ = write_files(SimConfig(seed=5, containers=300, hours=40.0), tmp_path / "sim")
    path = _backlog_and_far_future(records, tmp_path)
    _kill_three_times_then_finish(tmp_path, input=f"file:{path}")
    out = tmp_path / "baseline" / "out"
    windows = [orjson.loads(x) for x in (out / "windows.jsonl").read_bytes().splitlines()]
    assert max(w["revision"] for w in windows) >= 1  # the backlog revised windows
    dead = [orjson.loads(x) for x in (out / "dlq.jsonl").read_bytes().splitlines()]
    assert any(d["error"].startswith("ts: 2099-01-01T00:00:00Z was more than") for d in dead)
