"""Time to restore a vessel's container-state table of 100k rows from its topic.

    python -m bench.restore_time [--containers 100000] [--brokers B]

Without --brokers it starts the local clusters (deploy.kafka) in a temporary directory
and stops them at the end. The vessel flow reads a simulated quarter hour of that many
containers from a file and writes `reefer.container-state` (and the other outputs) to
the cluster, with a recovery directory; then its `state/` is deleted and
`python -m state.restore` rebuilds the table from the topic. Prints the restore's wall
time (a fresh process, start-up included; target: under 10 s) and where it goes
(reading the topic, the recovery snapshot, writing the table). Figures, never asserts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, run_measured, simulate
from deploy.kafka import commands
from flows.contract import CONTAINER_STATE
from flows.edges.kafka.compacted import read_compacted
from state.reader import TableReader
from state.restore import known_containers
from state.store import TableWriter
from state.table import table_path
from tests.support.kafka import reset_topics

TARGET_S = 10.0


def _timed(what: str, seconds: float, note: str = "") -> None:
    print(f"  {what:<46} {seconds:>7.2f} s  {note}", flush=True)


def _measure(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """Run a command; return wall and CPU seconds, peak RSS in MB and its stderr."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read().decode().strip()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        sys.exit(f"{' '.join(cmd)} failed: {err}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024, err


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--containers", type=int, default=100_000)
    parser.add_argument("--brokers", help="an existing vessel cluster (its topics are reset)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="coldwake-restore-bench-"))
    home = work / "kafka"
    brokers = args.brokers
    if brokers is None:
        print("starting the local clusters…", flush=True)
        brokers = commands.up(home).deployment.vessel.bootstrap
    try:
        reset_topics(brokers)  # first: the simulation gives the cluster time to list them
        records = simulate(work, args.containers, 0.25)
        data, recovery = work / "data", work / "recovery"
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "COLDWAKE_INPUT": f"file:{records}",
            "COLDWAKE_OUTPUT": "kafka",
            "COLDWAKE_BROKERS": brokers,
            "COLDWAKE_DATA_DIR": str(data),
            "COLDWAKE_PROGRESS_S": "0",
        }
        cmd = [sys.executable, "-m", "bytewax.run", "flows.vessel", "-r", str(recovery)]
        # Snapshots are rare: each pickles the detect state of every container.
        flow_s, _, _ = run_measured([*cmd, "-s", "60", "-b", "0"], env)
        with TableReader(table_path(data)) as reader:
            rows = reader.count()
        print(f"flow: {rows:,} container-state rows in {flow_s:.1f} s; deleting its state/")
        shutil.rmtree(data / "state")

        restore = [sys.executable, "-m", "state.restore", str(data), "--recovery", str(recovery)]
        wall, cpu, rss, line = _measure(restore, env)
        print(line.removeprefix("coldwake: "))
        verdict = "within" if wall < TARGET_S else "over"
        print(
            f"restore, the whole process: {wall:.2f} s wall ({verdict} the {TARGET_S:g} s "
            f"target), {cpu:.2f} s CPU, peak RSS {rss} MB; load average {os.getloadavg()[0]:.1f} "
            f"on {os.cpu_count()} CPUs"
        )

        # Where the time goes, each part again in this process.
        print("where it goes:")
        t0 = time.perf_counter()
        topic = read_compacted(brokers, CONTAINER_STATE.topic, 30.0)
        t1 = time.perf_counter()
        _timed(f"read {CONTAINER_STATE.topic} to its end", t1 - t0, f"{topic.records:,} records")
        known = known_containers(recovery)
        t2 = time.perf_counter()
        _timed("read and unpickle the detect snapshot", t2 - t1, f"{len(known or ()):,} containers")
        shutil.rmtree(data / "state")
        with TableWriter(table_path(data)) as writer:
            writer.apply(1, [(k.decode(), v) for k, v in topic.rows.items()])
        _timed("write the table (one batch) and close it", time.perf_counter() - t2)
    finally:
        if args.brokers is None:
            commands.down(home)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
