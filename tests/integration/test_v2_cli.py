"""The real job, `python -m bytewax.run flows.vessel`, as contract version 2 tells a user to run it.

A data dir that is not a writable directory and a window length that does not divide
a day stop it at start with one line and exit 2; a fresh run leaves nothing of an
earlier one; a file run resumed after lines were appended loses no window; a resume
with a changed analytic setting is refused with one line naming it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.builders import BOX, OTHER, reading

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
OUTPUTS = ("alerts.jsonl", "windows.jsonl", "late.jsonl", "dlq.jsonl")
THIRD = "TGHU9999995"


def _write(path: Path, lines: list[bytes], mode: str = "wb") -> Path:
    with path.open(mode) as f:
        f.write(b"".join(line + b"\n" for line in lines))
    return path


def _job(
    data_dir: Path, *args: str, recovery: Path | None = None, **settings: str
) -> subprocess.CompletedProcess[str]:
    """Run the job to its end with COLDWAKE_<NAME> settings (and nothing else of ours)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLDWAKE_")}
    env.update(PYTHONPATH=str(ROOT), COLDWAKE_DATA_DIR=str(data_dir), COLDWAKE_PROGRESS_S="0")
    env.update({f"COLDWAKE_{k.upper()}": v for k, v in settings.items()})
    cmd = [sys.executable, "-m", "bytewax.run", "flows.vessel", *args]
    if recovery is not None:
        cmd += ["-r", str(recovery), "-s", "1", "-b", "0"]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stderr


def _one_line(proc: subprocess.CompletedProcess[str], starts: str) -> str:
    """The single stderr line of a job refused at start with exit 2."""
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith(starts), lines[0]
    assert "Traceback" not in proc.stderr and "panic" not in proc.stderr
    return lines[0]


def _table(data_dir: Path) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "state.query", str(data_dir), "list"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return [orjson.loads(line) for line in proc.stdout.splitlines()]


@pytest.fixture
def small_input(tmp_path: Path) -> Path:
    """BOX every 5 minutes for 20 minutes: windows, nothing else."""
    return _write(tmp_path / "in.jsonl", [reading(m) for m in range(0, 21, 5)])


# -- 1, 2: bad settings stop the job at start ----------------------------------------------


@pytest.mark.parametrize("blocked", ["data", "data/..", "out", "state"])
def test_a_data_dir_that_is_not_a_writable_directory_is_one_line_and_exit_2(
    tmp_path: Path, small_input: Path, blocked: str
) -> None:
    """A file where the data dir (`data`), a parent of it, its `out/` or `state/` should be."""
    data_dir = tmp_path / "data"
    if blocked == "data/..":
        file = tmp_path / "file"
        data_dir = file / "data"
    elif blocked == "data":
        file = data_dir
    else:
        data_dir.mkdir()
        file = data_dir / blocked
    file.write_text("not a directory")
    proc = _job(data_dir, input=f"file:{small_input}")
    line = _one_line(proc, f"coldwake: configuration error: COLDWAKE_DATA_DIR={str(data_dir)!r}")
    assert "writable directory" in line
    assert file.read_text() == "not a directory"


@pytest.mark.parametrize("value", ["1e13", "7", "0", "-15", "2880"])
def test_a_window_length_that_does_not_divide_a_day_is_one_line_and_exit_2(
    tmp_path: Path, small_input: Path, value: str
) -> None:
    proc = _job(tmp_path / "data", input=f"file:{small_input}", window_min=value)
    line = _one_line(proc, f"coldwake: configuration error: COLDWAKE_WINDOW_MIN={value!r}")
    assert "1440" in line  # says what is allowed


# -- 3: a fresh run leaves nothing of an earlier one ---------------------------------------


def test_a_fresh_run_starts_every_output_and_the_table_empty(tmp_path: Path) -> None:
    data_dir, out = tmp_path / "data", tmp_path / "data" / "out"
    earlier = _write(
        tmp_path / "earlier.jsonl",
        [reading(0, container_id=THIRD), reading(5, container_id=THIRD), b"not json"],
    )
    _ok(_job(data_dir, input=f"file:{earlier}"))
    assert [row["container_id"] for row in _table(data_dir)] == [THIRD]
    assert (out / "windows.jsonl").read_bytes() and (out / "dlq.jsonl").read_bytes()
    for name in ("alerts.jsonl", "dlq.jsonl", "late.jsonl"):
        with (out / name).open("ab") as f:
            f.write(b'{"junk": "from an earlier run"}\n')

    # Two containers, in range, in order: windows, and no alert, late record or dead letter.
    now = _write(
        tmp_path / "now.jsonl", [reading(m, container_id=c) for m in (0, 5) for c in (BOX, OTHER)]
    )
    _ok(_job(data_dir, input=f"file:{now}"))
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    for name in ("alerts.jsonl", "dlq.jsonl", "late.jsonl"):
        assert (out / name).read_bytes() == b"", name
    windows = [orjson.loads(line) for line in (out / "windows.jsonl").read_bytes().splitlines()]
    assert [(w["container_id"], w["count"]) for w in windows] == [(OTHER, 2), (BOX, 2)]
    assert [row["container_id"] for row in _table(data_dir)] == [OTHER, BOX]


# -- 4: appended input, resumed: no window lost --------------------------------------------

# BOX and OTHER every 5 minutes; OTHER without power at 30 and 35 (power_loss opens), back
# at 40. The first part ends at 35, inside the window 12:30-12:45.
FIRST = [
    reading(m, container_id=c, power_kw=0.0 if (c, m) in ((OTHER, 30), (OTHER, 35)) else 2.5)
    for m in range(0, 36, 5)
    for c in (BOX, OTHER)
]
APPENDED = [reading(m, container_id=c) for m in range(40, 81, 5) for c in (BOX, OTHER)]


def _latest(windows: bytes) -> dict[tuple[str, str], dict[str, Any]]:
    """Each window at its highest revision, less the revision: what a consumer keeps."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for line in windows.splitlines():
        w = orjson.loads(line)
        key = (w["container_id"], w["window_start"])
        if key not in latest or w["revision"] > latest[key]["revision"]:
            latest[key] = w
    return {key: {k: v for k, v in w.items() if k != "revision"} for key, w in latest.items()}


def test_a_resumed_file_run_with_appended_lines_loses_no_window(tmp_path: Path) -> None:
    whole = _write(tmp_path / "whole.jsonl", FIRST + APPENDED)
    _ok(_job(tmp_path / "whole", input=f"file:{whole}"))
    expected = (tmp_path / "whole" / "out" / "windows.jsonl").read_bytes()
    assert all(orjson.loads(line)["revision"] == 0 for line in expected.splitlines())

    grown, data_dir, recovery = tmp_path / "grown.jsonl", tmp_path / "data", tmp_path / "rec"
    _write(grown, FIRST)
    _ok(_job(data_dir, input=f"file:{grown}", recovery=recovery))
    _write(grown, APPENDED, mode="ab")
    _ok(_job(data_dir, input=f"file:{grown}", recovery=recovery))
    windows = (data_dir / "out" / "windows.jsonl").read_bytes()

    assert _latest(windows) == _latest(expected)
    # The window the first part ended in was emitted by its end, then again, whole.
    revised = [
        (w["container_id"], w["window_start"], w["count"], w["revision"])
        for w in map(orjson.loads, windows.splitlines())
        if w["window_start"] == "2026-11-26T12:30:00Z"
    ]
    assert sorted(revised) == [
        (OTHER, "2026-11-26T12:30:00Z", 2, 0),
        (OTHER, "2026-11-26T12:30:00Z", 3, 1),
        (BOX, "2026-11-26T12:30:00Z", 2, 0),
        (BOX, "2026-11-26T12:30:00Z", 3, 1),
    ]
    # The power loss that opened before the split closes after it, as in one run.
    alerts = (data_dir / "out" / "alerts.jsonl").read_bytes()
    assert alerts == (tmp_path / "whole" / "out" / "alerts.jsonl").read_bytes()
    assert [(a["state"], a["closed_at"]) for a in map(orjson.loads, alerts.splitlines())] == [
        ("open", None),
        ("closed", "2026-11-26T12:40:00Z"),
    ]
    assert _table(data_dir) == _table(tmp_path / "whole")

    # Nothing new: the run says so, exits 0 and leaves the outputs as they are.
    err = _ok(_job(data_dir, input=f"file:{grown}", recovery=recovery))
    assert "already complete" in err, err
    assert (data_dir / "out" / "windows.jsonl").read_bytes() == windows


# -- 5: a resume with a changed analytic setting is refused --------------------------------


def test_a_resume_with_a_changed_window_length_is_refused_with_one_line(
    tmp_path: Path, small_input: Path
) -> None:
    data_dir, recovery = tmp_path / "data", tmp_path / "rec"
    _ok(_job(data_dir, input=f"file:{small_input}", recovery=recovery))
    before = {name: (data_dir / "out" / name).read_bytes() for name in OUTPUTS}

    proc = _job(data_dir, input=f"file:{small_input}", recovery=recovery, window_min="5")
    line = _one_line(proc, "coldwake: configuration error: COLDWAKE_WINDOW_MIN=")
    assert "15" in line  # the value the recovery state was made with
    assert {name: (data_dir / "out" / name).read_bytes() for name in OUTPUTS} == before

    # Refused, not damaged: the same resume with the setting it was made with still works.
    assert "already complete" in _ok(_job(data_dir, input=f"file:{small_input}", recovery=recovery))
