"""The whole vessel dataflow in-process: 1 and 2 workers, one file or several partitions."""

from __future__ import annotations

import zlib
from pathlib import Path

import orjson
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import cluster_main, run_main

from flows.config import Settings, load
from flows.contract import FILE_OUTPUTS, POSITION
from flows.dataflow import build
from flows.events import Telemetry, parse
from flows.sim import SimConfig, generate, write_files
from flows.vessel import edges
from state.reader import TableReader
from state.table import table_path

SIM = SimConfig(
    seed=3,
    vessels=2,
    containers=40,
    hours=12.0,
    malformed_rate=0.01,
    duplicate_rate=0.01,
    late_rate=0.01,
)


@pytest.fixture(scope="module")
def lines() -> list[bytes]:
    return list(generate(SIM))


def _split_like_kafka(lines: list[bytes], out: Path, partitions: int = 3) -> list[Path]:
    """Positions in one file, telemetry spread over files by container (like keyed topics)."""
    files: list[list[bytes]] = [[] for _ in range(partitions + 1)]
    for line in lines:
        record = parse(line, "x")
        if isinstance(record, Telemetry):
            files[1 + zlib.crc32(record.container_id.encode()) % partitions].append(line)
        elif b'"' + POSITION.encode() + b'"' in line:
            files[0].append(line)
        else:
            files[1 + zlib.crc32(line) % partitions].append(line)
    paths = []
    for i, content in enumerate(files):
        path = out / f"part-{i}.jsonl"
        path.write_bytes(b"".join(line + b"\n" for line in content))
        paths.append(path)
    return paths


def _flow(settings: Settings) -> Dataflow:
    return build(*edges(settings), settings)


def _run(paths: list[Path], data_dir: Path, workers: int) -> dict[str, list[bytes]]:
    settings = load(
        {
            "COLDWAKE_INPUT": "file:" + ",".join(map(str, paths)),
            "COLDWAKE_DATA_DIR": str(data_dir),
            "COLDWAKE_PROGRESS_S": "0",
        }
    )
    flow = _flow(settings)
    if workers == 1:
        run_main(flow)
    else:
        cluster_main(flow, [], 0, worker_count_per_proc=workers)
    out = {o.name: (data_dir / "out" / str(o.file)).read_bytes().splitlines() for o in FILE_OUTPUTS}
    with TableReader(table_path(data_dir)) as table:
        out["table"] = [k.encode() + b"=" + v for k, v in table.items()]
    return out


def test_one_file_runs_end_to_end(lines: list[bytes], tmp_path: Path) -> None:
    source = tmp_path / "records.jsonl"
    source.write_bytes(b"".join(line + b"\n" for line in lines))
    out = _run([source], tmp_path / "data", 1)
    alerts = [orjson.loads(a) for a in out["alerts"]]
    assert {a["kind"] for a in alerts} >= {"temperature_excursion", "power_loss"}
    assert len(out["dlq"]) == sum(
        isinstance(parse(x, "x"), type(None)) or type(parse(x, "x")).__name__ == "DeadLetter"
        for x in lines
    )
    assert all(orjson.loads(d)["source"].startswith(f"{source}:") for d in out["dlq"])
    assert len(out["table"]) == 2 * 40  # every container has a row
    assert out["windows"] and out["late"]


def test_one_and_two_workers_give_identical_outputs(lines: list[bytes], tmp_path: Path) -> None:
    paths = _split_like_kafka(lines, tmp_path)
    one = _run(paths, tmp_path / "one", 1)
    two = _run(paths, tmp_path / "two", 2)
    assert one == two  # byte-identical files and table, in the same order
    assert len(one["alerts"]) > 10


def test_partitioned_input_gives_the_same_results_as_one_file(
    lines: list[bytes], tmp_path: Path
) -> None:
    source = tmp_path / "records.jsonl"
    source.write_bytes(b"".join(line + b"\n" for line in lines))
    single = _run([source], tmp_path / "single", 1)
    split = _run(_split_like_kafka(lines, tmp_path), tmp_path / "split", 2)
    for name in ("alerts", "windows", "late"):
        assert sorted(single[name]) == sorted(split[name]), name
    assert single["table"] == split["table"]
    # Dead letters are the same records, named by the file they came from.
    assert sorted(orjson.loads(d)["raw"] for d in single["dlq"]) == sorted(
        orjson.loads(d)["raw"] for d in split["dlq"]
    )


def test_simulator_input_gives_the_same_outputs_as_its_file(tmp_path: Path) -> None:
    sim_env = {
        "COLDWAKE_SIM_SEED": "4",
        "COLDWAKE_SIM_CONTAINERS": "30",
        "COLDWAKE_SIM_HOURS": "10",
        "COLDWAKE_SIM_VESSELS": "2",
        "COLDWAKE_DATA_DIR": str(tmp_path / "sim"),
        "COLDWAKE_PROGRESS_S": "0",
    }
    settings = load(sim_env)
    cluster_main(_flow(settings), [], 0, worker_count_per_proc=2)
    sim = {o.name: (tmp_path / "sim" / "out" / str(o.file)).read_bytes() for o in FILE_OUTPUTS}

    records, _ = write_files(settings.sim, tmp_path / "files")
    from_file = _run([records], tmp_path / "file", 1)
    for name in ("alerts", "windows", "late"):
        assert sim[name].splitlines() == from_file[name], name
    assert len(sim["alerts"]) > 0
