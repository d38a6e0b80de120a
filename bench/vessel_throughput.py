"""Throughput of the vessel flow on one worker, file in, local out, next to its baselines.

    python -m bench.vessel_throughput [--containers 2000] [--hours 44]

Prints readings/s of: the whole `python -m bytewax.run flows.vessel` process; a bare
Bytewax `stateful_map` keyed by container over the same lines; `orjson.loads` alone;
and the flow's peak RSS. Figures, never asserts.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import orjson

from bench.common import ROOT, flow_summary, run_measured, simulate

BARE_FLOW = """
import orjson

from bench.common import ROOT, flow_summary, run_measured, simulate
import bytewax.operators as op
from bytewax.connectors.files import FileSource
from bytewax.dataflow import Dataflow
from bytewax.outputs import DynamicSink, StatelessSinkPartition

class _Null(StatelessSinkPartition):
    def write_batch(self, items): pass

class Null(DynamicSink):
    def build(self, step_id, worker_index, worker_count): return _Null()

def reading(line):
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return obj if type(obj) is dict and obj.get("container_id") else None

def count(n, reading):
    n = (n or 0) + 1
    return n, n

flow = Dataflow("bare")
lines = op.input("in", flow, FileSource({path!r}, batch_size=2000))
readings = op.filter_map("parse", lines, reading)
keyed = op.key_on("key", readings, lambda obj: obj["container_id"])
op.output("out", op.stateful_map("count", keyed, count), Null())
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--containers", type=int, default=2000)
    parser.add_argument("--hours", type=float, default=44.0)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="coldwake-bench-"))
    t = time.perf_counter()
    records = simulate(work, args.containers, args.hours)
    with records.open("rb") as f:
        count = readings = 0
        for line in f:
            count += 1
            readings += b'"reefer.telemetry"' in line
    print(
        f"input: {count:,} records, {readings:,} readings from {args.containers:,} "
        f"containers ({time.perf_counter() - t:.1f} s to simulate) in {records}",
        flush=True,
    )

    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "COLDWAKE_INPUT": f"file:{records}",
        "COLDWAKE_DATA_DIR": str(work / "data"),
        "COLDWAKE_PROGRESS_S": "0",
    }
    flow_s, flow_rss, err = run_measured([sys.executable, "-m", "bytewax.run", "flows.vessel"], env)
    # Bytewax's FileSource dies on a non-UTF-8 line, so the baseline reads a copy without.
    clean = work / "records-utf8.jsonl"
    with records.open("rb") as f, clean.open("wb") as out:
        out.writelines(line for line in f if line.isascii())
    bare_py = work / "bare.py"
    bare_py.write_text(BARE_FLOW.format(path=str(clean)))
    bare_s, bare_rss, _ = run_measured(
        [sys.executable, "-m", "bytewax.run", str(bare_py)], {**env, "PYTHONPATH": f"{work}:{ROOT}"}
    )

    # Last, so that the lines held in memory do not count in the children's peak RSS
    # (a forked child starts out sharing the parent's pages).
    lines = records.read_bytes().splitlines()
    t = time.perf_counter()
    for line in lines:
        try:  # noqa: SIM105 (suppress() would add its own cost to the timing)
            orjson.loads(line)
        except orjson.JSONDecodeError:
            pass
    loads = len(lines) / (time.perf_counter() - t)

    print(f"{'what (1 worker)':<44} {'readings/s':>12} {'wall s':>8} {'peak RSS':>9}")
    print(
        f"{'flows.vessel, file in, local out':<44} {readings / flow_s:>12,.0f} "
        f"{flow_s:>8.1f} {flow_rss:>6} MB"
    )
    print(
        f"{'bare bytewax stateful_map by container':<44} {readings / bare_s:>12,.0f} "
        f"{bare_s:>8.1f} {bare_rss:>6} MB"
    )
    print(f"{'orjson.loads alone (records/s)':<44} {loads:>12,.0f}")
    print(f"flow's own count: {flow_summary(err)}")


if __name__ == "__main__":
    main()
