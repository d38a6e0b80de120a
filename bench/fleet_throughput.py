"""Throughput of the fleet flow from a file backlog: 1 worker, 2 workers, 2 processes.

    python -m bench.fleet_throughput [--vessels 50] [--reefers 500] [--days 3]
        [--seconds 60] [--backlog DIR]

Writes (or reuses) a synthetic backlog of vessel outputs (`bench.fleet_backlog`: per
vessel a fix every 15 min; per reefer and 15-minute window a `reefer.window` and a
container-state row; alerts, revisions, late records, dead letters), then runs the
real `python -m bytewax.run flows.fleet` on all of it with `-w 1`, `-w 2` and two
processes of one worker (`-i 0/1 -a ...`), each with a fresh data dir, and a bare
Bytewax flow (`orjson.loads` per record into a `stateful_map` keyed by container, or
vessel) on the same files with `-w 1` and `-w 2`: the baseline to compare figures
across machines with.

Each run is time-boxed: it is stopped (SIGINT) at its first progress line SECONDS or
more after its first one, so it measures the first part of the backlog only. Its rate
comes from the flow's own progress lines on stderr (`progress: N vessel records`,
every second, per process; the bare flow prints the same), between its first line
and its last (start-up excluded), summed over processes. The count is taken as
records are decoded, a few 1 MB batches at a time, ahead of the keyed stages by at
most what Bytewax holds in flight. A run that reaches the end of the backlog is
measured from its first line to its exit. Peak RSS per process is its VmHWM, polled
until the stop. Figures, never asserts.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from bench.common import ROOT
from bench.fleet_backlog import Backlog, ensure
from deploy.kafka.ports import free_ports

TARGET_RATE: Final = 100_000  # vessel records/s on one worker
TARGET_SCALING: Final = 1.7  # from 1 to 2 workers
PROGRESS_S: Final = 1.0
BARE_1: Final = "bare bytewax: orjson.loads, stateful_map"
BARE_2: Final = "bare bytewax, -w 2"
FLEET_1: Final = "flows.fleet -w 1"
FLEET_2: Final = "flows.fleet -w 2"
FLEET_P: Final = "flows.fleet -i 0/1 (2 processes x 1)"
PROGRESS: Final = re.compile(rb"coldwake: progress: ([\d,]+) vessel records")

BARE_FLOW: Final = """
import sys
import time
from pathlib import Path

import bytewax.operators as op
import orjson
from bytewax.connectors.files import DirSource
from bytewax.dataflow import Dataflow
from bytewax.outputs import DynamicSink, StatelessSinkPartition

class _Null(StatelessSinkPartition):
    def write_batch(self, items): pass

class Null(DynamicSink):
    def build(self, step_id, worker_index, worker_count): return _Null()

seen = [0, time.monotonic(), 0]  # records, time and records of the last line

def parse(line):
    seen[0] += 1
    if seen[0] % 1000 == 0 and time.monotonic() - seen[1] >= {every}:
        now = time.monotonic()
        rate = (seen[0] - seen[2]) / (now - seen[1])
        print(f"coldwake: progress: {{seen[0]:,}} vessel records ({{rate:,.0f}}/s)",
              file=sys.stderr, flush=True)
        seen[1], seen[2] = now, seen[0]
    return orjson.loads(line)

def count(n, record):
    n = (n or 0) + 1
    return n, n

flow = Dataflow("bare")
lines = op.input("in", flow, DirSource(Path({path!r}), "*.jsonl", batch_size=2000))
records = op.map("parse", lines, parse)
keyed = op.key_on("key", records, lambda r: r.get("container_id") or r.get("vessel_id", ""))
op.output("out", op.stateful_map("count", keyed, count), Null())
"""


@dataclass(slots=True)
class _Proc:
    """One running process: its progress lines `(time, records)`, stderr tail, VmHWM."""

    popen: subprocess.Popen[bytes]
    lines: list[tuple[float, int]] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)
    hwm_kb: int = 0
    exited: float | None = None  # when it ended by itself
    reader: threading.Thread | None = None

    def poll_hwm(self) -> None:
        """Note the process's peak RSS so far (VmHWM), while it still runs."""
        try:
            status = Path(f"/proc/{self.popen.pid}/status").read_text()
        except OSError:
            return
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                self.hwm_kb = max(self.hwm_kb, int(line.split()[1]))

    def read(self) -> None:
        """Reader thread: collect progress lines and the last lines of stderr."""
        assert self.popen.stderr is not None
        for raw in self.popen.stderr:
            found = PROGRESS.search(raw)
            if found is not None:
                self.lines.append((time.monotonic(), int(found[1].replace(b",", b""))))
                self.poll_hwm()
            self.tail = [*self.tail[-40:], raw.decode(errors="replace").rstrip()]


@dataclass(frozen=True, slots=True)
class Measured:
    """One time-boxed run: its rate and what it is made of."""

    rate: float | None  # vessel records/s, summed over processes
    span_s: float  # the longest measured span of its processes
    read: int  # records its processes had read when stopped
    rss_mb: list[int]  # peak RSS per process
    finished: bool  # every process reached the end of the backlog
    load: float  # 1-minute load average when it stopped


def span(lines: Sequence[tuple[float, int]]) -> tuple[float, int] | None:
    """`(seconds, records)` from the first progress line to the last, or None (< 2)."""
    if len(lines) < 2:
        return None
    return lines[-1][0] - lines[0][0], lines[-1][1] - lines[0][1]


def _stop(procs: list[_Proc]) -> None:
    for proc in procs:
        if proc.popen.poll() is None:
            proc.poll_hwm()
            proc.popen.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 20
    for proc in procs:
        try:
            proc.popen.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.popen.kill()
            proc.popen.wait()


def run_timed(cmds: list[list[str]], env: dict[str, str], seconds: float, total: int) -> Measured:
    """Start these processes together; stop them about `seconds` after the first
    progress line; measure their summed rate. Exits with their stderr if one fails."""
    out, err = subprocess.DEVNULL, subprocess.PIPE
    procs = [_Proc(subprocess.Popen(c, cwd=ROOT, env=env, stdout=out, stderr=err)) for c in cmds]
    for proc in procs:
        proc.reader = threading.Thread(target=proc.read, daemon=True)
        proc.reader.start()
    started = time.monotonic()
    try:
        while True:
            time.sleep(0.1)
            for proc in procs:
                proc.poll_hwm()
                if proc.exited is None and proc.popen.poll() is not None:
                    proc.exited = time.monotonic()
                    if proc.popen.returncode != 0:
                        _stop(procs)
                        tail = "\n".join(proc.tail)
                        sys.exit(f"{' '.join(proc.popen.args)} failed:\n{tail}")  # type: ignore[arg-type]
            if all(p.exited is not None for p in procs):
                break
            firsts = [p.lines[0][0] for p in procs if p.lines]
            if not firsts:
                if time.monotonic() - started > 600:
                    sys.exit(f"no progress line in 600 s from {' '.join(cmds[0])}")
                continue
            after = min(firsts) + seconds
            if all(p.exited is not None or (p.lines and p.lines[-1][0] >= after) for p in procs):
                break
            if time.monotonic() > after + seconds:  # a process that stopped logging
                break
    finally:
        load = os.getloadavg()[0]
        _stop(procs)
    for proc in procs:
        assert proc.reader is not None
        proc.reader.join(5)
    finished = all(p.exited is not None for p in procs)
    rate: float | None
    if finished and all(p.lines for p in procs):
        # Ran to the end: from the first progress line to the last exit, all of it.
        t0, t1 = min(p.lines[0][0] for p in procs), max(p.exited or 0.0 for p in procs)
        took, rate = t1 - t0, (total - sum(p.lines[0][1] for p in procs)) / (t1 - t0)
    else:
        spans = [span(p.lines) for p in procs]
        took = max((s[0] for s in spans if s is not None), default=0.0)
        rate = None if None in spans else sum(s[1] / s[0] for s in spans if s is not None)
    read = total if finished else sum(p.lines[-1][1] for p in procs if p.lines)
    return Measured(rate, took, read, [p.hwm_kb // 1024 for p in procs], finished, load)


def fleet(backlog: Backlog, work: Path, workers: int, processes: int, seconds: float) -> Measured:
    """`flows.fleet` on the backlog: `processes` processes of `workers` workers each."""
    data = Path(tempfile.mkdtemp(prefix="data-", dir=work))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "COLDWAKE_INPUT": f"file:{backlog.path}",
        "COLDWAKE_DATA_DIR": str(data),
        "COLDWAKE_PROGRESS_S": str(PROGRESS_S),
    }
    cmd = [sys.executable, "-m", "bytewax.run", "flows.fleet", "-w", str(workers)]
    cmds = [cmd]
    if processes > 1:
        addresses = ";".join(f"127.0.0.1:{p}" for p in free_ports(processes))
        cmds = [[*cmd, "-i", str(i), "-a", addresses] for i in range(processes)]
    return run_timed(cmds, env, seconds, backlog.total)


def bare(backlog: Backlog, work: Path, workers: int, seconds: float) -> Measured:
    """The bare Bytewax flow (`BARE_FLOW`) on the backlog's files."""
    script = work / "bare.py"
    script.write_text(BARE_FLOW.format(path=str(backlog.path), every=PROGRESS_S))
    cmd = [sys.executable, "-m", "bytewax.run", str(script), "-w", str(workers)]
    return run_timed([cmd], {**os.environ, "PYTHONPATH": f"{work}:{ROOT}"}, seconds, backlog.total)


def code_version() -> str:
    """The commit measured, and whether `flows/` or `state/` had local changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, check=True)
        return done.stdout.decode().strip()

    try:
        head, dirty = (
            git("rev-parse", "--short", "HEAD"),
            git("status", "--porcelain", "flows", "state"),
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    return head + (" + local changes in flows/ or state/" if dirty else "")


def row(what: str, m: Measured, total: int, note: str = "") -> str:
    """One line of the table."""
    rate = "n/a" if m.rate is None else f"{m.rate:,.0f}"
    rss = " + ".join(str(r) for r in m.rss_mb)
    read = "all" if m.finished else f"{m.read / total:.1%}"
    return (
        f"{what:<40} {rate:>10} {m.span_s:>7.1f} {read:>6} {rss + ' MB':>14} {m.load:>5.1f}  {note}"
    ).rstrip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vessels", type=int, default=50)
    parser.add_argument("--reefers", type=int, default=500)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0, help="measuring time per run")
    parser.add_argument("--backlog", type=Path, help="the backlog's directory (reused)")
    args = parser.parse_args()
    size = f"{args.vessels}x{args.reefers}x{args.days}"
    path = args.backlog or Path(tempfile.gettempdir()) / f"coldwake-fleet-backlog-{size}"

    began = time.perf_counter()
    backlog = ensure(path, args.vessels, args.reefers, args.days)
    kinds = ", ".join(f"{kind} {n:,}" for kind, n in backlog.records.items())
    print(
        f"backlog: {backlog.total:,} vessel records, {backlog.size / 1e6:,.0f} MB in "
        f"{backlog.path} ({args.vessels} vessels x {args.reefers} reefers x {args.days} days: "
        f"{kinds}; {time.perf_counter() - began:.0f} s to write or find)\n"
        "  container-state: one row per reefer and window, a stand-in for the vessel's "
        "compacted topic (one per change)",
        flush=True,
    )
    print(
        f"time-boxed: every run reads the whole backlog but is stopped about "
        f"{args.seconds:g} s after its first progress line; its rate is measured over\n"
        "  that span (start-up excluded), i.e. over the first part of the backlog only "
        "(column 'read'); later parts, with more state, may run slower.",
        flush=True,
    )

    code = code_version()
    work = Path(tempfile.mkdtemp(prefix="coldwake-fbench-"))
    runs: list[tuple[str, Measured]] = []

    def measure(what: str, m: Measured) -> Measured:
        runs.append((what, m))
        print(f"  {row(what, m, backlog.total)}", flush=True)
        return m

    try:
        base = measure(BARE_1, bare(backlog, work, 1, args.seconds))
        one = measure(FLEET_1, fleet(backlog, work, 1, 1, args.seconds))
        two = measure(FLEET_2, fleet(backlog, work, 2, 1, args.seconds))
        pair = measure(FLEET_P, fleet(backlog, work, 1, 2, args.seconds))
        base2 = measure(BARE_2, bare(backlog, work, 2, args.seconds))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def scaling(m: Measured, of: Measured, target: bool = True) -> str:
        if m.rate is None or of.rate is None:
            return "n/a"
        ok = "met" if m.rate >= TARGET_SCALING * of.rate else "NOT met"
        goal = f" (target >= {TARGET_SCALING}x: {ok})" if target else ""
        return f"{m.rate / of.rate:.2f}x of -w 1{goal}"

    met = one.rate is not None and one.rate >= TARGET_RATE
    notes = {
        FLEET_1: f"target >= {TARGET_RATE:,}/s: {'met' if met else 'NOT met'}",
        FLEET_2: scaling(two, one),
        FLEET_P: scaling(pair, one),
        BARE_2: scaling(base2, base, target=False),
    }
    print()
    print(
        f"{'what (vessel records/s)':<40} {'records/s':>10} {'span s':>7} {'read':>6} "
        f"{'peak RSS/proc':>14} {'load':>5}"
    )
    for what, m in runs:
        print(row(what, m, backlog.total, notes.get(what, "")))
    print(
        f"\n{os.cpu_count()} CPUs; load = 1-minute load average at the stop (other work on "
        f"the machine slows every figure); {time.perf_counter() - began:.0f} s in all; "
        f"code {code}"
    )


if __name__ == "__main__":
    main()
