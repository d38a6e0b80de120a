"""Latency of the query API under a bounded load, while the vessel flow writes its table.

    python -m bench.api_latency [--containers 100000] [--hours 1] [--rate 2000] [--seconds 30]

1. Runs `python -m bytewax.run flows.vessel` on the simulator alone (`--containers`
   reefers, `--hours`): its wall time is the baseline.
2. Runs it again from scratch and, once its table holds rows, starts `python -m state.api`
   on that data dir and sends a paced load of single-key gets (`--rate` per second,
   keys drawn from the rows, kept-alive connections), then prefix pages of 100 rows,
   for `--seconds` each. Prints achieved rate, p50/p99/max latency per kind, errors,
   and the flow's slow-down under the load. Figures, never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from bench.common import ROOT
from state.reader import TableReader
from state.table import table_path

_READY: Final = re.compile(rb"http://127\.0\.0\.1:(\d+)")


def _flow(data: Path, containers: int, hours: float) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLDWAKE_")}
    env |= {"COLDWAKE_DATA_DIR": str(data), "COLDWAKE_SIM_CONTAINERS": str(containers),
            "COLDWAKE_SIM_HOURS": str(hours), "COLDWAKE_PROGRESS_S": "0"}  # fmt: skip
    cmd = [sys.executable, "-m", "bytewax.run", "flows.vessel"]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip


def _api(data: Path) -> tuple[subprocess.Popen[bytes], int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLDWAKE_")}
    cmd = [sys.executable, "-m", "state.api", "--data", str(data), "--port", "0"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stderr is not None
    line = proc.stderr.readline()
    found = _READY.search(line)
    if found is None:
        sys.exit(f"the API did not start: {line.decode()}{proc.stderr.read().decode()}")
    return proc, int(found[1])


async def _one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> int:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = int(re.search(rb"(?i)content-length: *(\d+)", head)[1])  # type: ignore[index]
    await reader.readexactly(length)
    return status


async def _load(port: int, paths: list[str], rate: float, seconds: float) -> dict[str, Any]:
    """Send `rate` requests/s for `seconds` over a pool of connections; latency figures."""
    pool = 16
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(pool)]
    free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for conn in conns:
        free.put_nowait(conn)
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def request(path: str) -> None:
        conn = await free.get()
        started = time.perf_counter()
        try:
            status = await _one(*conn, path)
            statuses[status] = statuses.get(status, 0) + 1
        finally:
            latencies.append(time.perf_counter() - started)
            free.put_nowait(conn)

    tasks = []
    begin = time.perf_counter()
    n = 0
    while (elapsed := time.perf_counter() - begin) < seconds:
        due = int(elapsed * rate) + 1
        while n < due:
            tasks.append(asyncio.create_task(request(paths[n % len(paths)])))
            n += 1
        await asyncio.sleep(0.001)
    await asyncio.gather(*tasks)
    took = time.perf_counter() - begin
    for _, writer in conns:
        writer.close()
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    return {"rate": len(ms) / took, "p50": ms[len(ms) // 2], "p99": ms[int(len(ms) * 0.99)],
            "max": ms[-1], "statuses": dict(sorted(statuses.items()))}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.api_latency", description=__doc__)
    parser.add_argument("--containers", type=int, default=100_000)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        alone = Path(work) / "alone"
        started = time.perf_counter()
        if _flow(alone, args.containers, args.hours).wait():
            sys.exit("the vessel flow failed")
        baseline = time.perf_counter() - started
        print(f"vessel flow alone: {baseline:.1f} s ({args.containers:,} containers, "
              f"{args.hours:g} h)", flush=True)  # fmt: skip

        data = Path(work) / "loaded"
        started = time.perf_counter()
        flow = _flow(data, args.containers, args.hours)
        while not table_path(data).exists() or _rows(data) < 1000:
            time.sleep(0.2)
        keys = _keys(alone)
        api, port = _api(data)
        gets = [f"/api/tables/container-state/rows/{k}" for k in keys]
        random.Random(7).shuffle(gets)
        prefixes = sorted({k[:4] for k in keys})
        pages = [f"/api/tables/container-state/rows?prefix={p}&limit=100" for p in prefixes]
        try:
            got = asyncio.run(_load(port, gets, args.rate, args.seconds))
            paged = asyncio.run(_load(port, pages, args.rate / 10, args.seconds / 3))
            writing = flow.poll() is None
            flow.wait()
            loaded = time.perf_counter() - started
        finally:
            api.terminate()
            api.wait()
    print(f"vessel flow under load: {loaded:.1f} s ({(loaded / baseline - 1) * 100:+.1f} %; "
          "target: slower by less than 10 %)")  # fmt: skip
    print(f"  (the flow {'was still' if writing else 'had stopped'} writing when the load ended)")
    for name, r in (("single-key gets", got), ("prefix pages of 100", paged)):
        print(f"{name}: {r['rate']:,.0f} req/s achieved, p50 {r['p50']:.1f} ms, p99 "
              f"{r['p99']:.1f} ms, max {r['max']:.1f} ms, answers by status {r['statuses']} "
              "(404: a container the flow has not written yet)")  # fmt: skip
    print(
        f"target: p99 < 5 ms for gets at {args.rate:,.0f} req/s; "
        f"{os.cpu_count()} CPUs shared by the flow, the API and this client"
    )


def _rows(data: Path) -> int:
    try:
        with TableReader(table_path(data)) as table:
            return table.count()
    except Exception:  # not created yet
        return 0


def _keys(data: Path) -> list[str]:
    with TableReader(table_path(data)) as table:
        return [key for key, _ in table.items()]


if __name__ == "__main__":
    main()
