"""Ship to shore over MirrorMaker 2 and the link proxy: drain rates, link bytes, latency.

    python -m bench.mirror_throughput [--containers 2000] [--hours 72] [--vessel-nodes 3]
        [--satellite-records 20000] [--latency-s 20] [--latency-rate 20] [--keep]

Starts ``up --vessels 1 --vessel-nodes K`` (deploy.kafka: one vessel cluster, the
shore, Toxiproxy and MirrorMaker 2) in a temporary directory and stops it at the end,
whatever happens (``--vessel-nodes 1`` starts faster; a smaller ``--containers`` or
``--hours`` makes a smaller backlog). The simulator's records for CONTAINERS reefers
over HOURS are written meanwhile. Then, printing progress lines as it goes:

1. Backlog, unthrottled link. Once MirrorMaker's task runs, the link goes down; the
   vessel flow (``flows.vessel``, file in, Kafka out: the real producers, lz4)
   processes the simulated leg into the vessel's output topics, and the simulator's
   position fixes are produced to ``vessel.position`` (mirrored too). Counted on the
   vessel: records and payload bytes (key + value) per mirrored topic. The link comes
   up; the time until ``mirror status`` shows nothing waiting gives records/s and
   MB/s, next to the target (a 3-day backlog of a 2,000-reefer vessel crosses in under
   60 s).
2. Satellite link (512 kbit/s, 600 ms). The link goes to ``satellite``; then a
   contiguous slice from the middle of every backlog partition (SATELLITE_RECORDS in
   all, in the same proportions) is produced again, with the flow's producer settings,
   in about a second (changing the link's mode while data flows would let a chunk
   through unthrottled). The time from the first record produced to nothing waiting
   gives payload bytes/s and compressed bytes/s (the growth of the vessel's log
   segments: the lz4 batches that cross the link) as a share of the link's rate
   (target: at least 80 % as payload; compressed, the payload exceeds the link's rate,
   so the share of lz4 batches is the one to hold against it). Toxiproxy counts no
   bytes, so what crosses is inferred from the segments: fetch requests and framing,
   and TCP, are not in it.
3. Link bytes per reading: the vessel's log segments of the mirrored topics after
   step 1 (one replica of each partition), divided by the simulator's readings.
4. Latency, link up: records carrying their production time go to ``reefer.alerts``
   at LATENCY_RATE per second for LATENCY_S seconds; a ``read_committed`` consumer
   ashore reads them from ``<vessel>.reefer.alerts``: p50/p99 of arrival - production.

The Kafka JVMs get the full JIT (``COLDWAKE_KAFKA_JVM_OPTS=-XX:TieredStopAtLevel=4``
unless that variable is set). Drain times are sampled with ``mirror status`` every
half second or so (each call reads MirrorMaker's offsets ashore), and include
MirrorMaker's reconnection once the link returns. Figures, never asserts; they depend
heavily on the machine and what else runs on it.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.common import ROOT
from bench.mirror_measure import (
    MB,
    TARGET_DRAIN_S,
    TARGET_SATELLITE_SHARE,
    Drain,
    Held,
    latency,
    leaders,
    percentile,
    produce_again,
    read_vessel,
    say,
    segment_bytes,
    wait_task_running,
    waiting,
    watch_drain,
)
from deploy.kafka import commands, mirroring
from deploy.kafka.errors import LauncherError
from deploy.kafka.jars import JVM_OPTS_ENV
from deploy.kafka.layout import STATE_FILE, Deployment
from deploy.kafka.link import SATELLITE_LATENCY_MS, SATELLITE_RATE_KB_S
from deploy.kafka.mirror import mirrored_topics, shore_topic
from flows.contract import ALERTS, POSITION, TELEMETRY
from flows.edges.kafka.producer import produce_file
from tests.support.kafka import kill_strays


@contextmanager
def child(cmd: list[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    """A child process (stderr piped, as text) that is killed if still running on exit."""
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def split_input(records: Path, positions: Path) -> int:
    """Write the position fixes of ``records`` to ``positions``; return the reading count.

    Readings are counted as the other benchmarks count them: lines of type
    ``reefer.telemetry`` (duplicates and late copies included, as the vessel gets them).
    """
    readings = 0
    with records.open("rb") as f, positions.open("wb") as out:
        for line in f:
            if b'"reefer.telemetry"' in line:
                readings += 1
            elif b'"vessel.position"' in line:
                out.write(line)
    return readings


def run_flow(env: dict[str, str]) -> tuple[float, str]:
    """Run ``flows.vessel`` to its end, echoing its progress; return (seconds, summary)."""
    started = time.monotonic()
    summary = ""
    with child([sys.executable, "-m", "bytewax.run", "flows.vessel"], env) as proc:
        assert proc.stderr is not None
        tail: list[str] = []
        for raw in proc.stderr:
            line = raw.rstrip()
            tail = [*tail[-30:], line]
            if line.startswith("coldwake: "):
                say(f"  flow: {line.removeprefix('coldwake: ')}")
                if "input ended" in line:
                    summary = line.removeprefix("coldwake: ")
        if proc.wait() != 0:
            sys.exit("flows.vessel failed:\n" + "\n".join(tail))
    return time.monotonic() - started, summary


# -- what the vessel holds -----------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.mirror_throughput",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--containers", type=int, default=2000, help="reefers (default 2000)")
    parser.add_argument(
        "--hours", type=float, default=72.0, help="hours of the simulated leg (default 72)"
    )
    parser.add_argument(
        "--vessel-nodes", type=int, default=3, help="nodes of the vessel cluster (default 3)"
    )
    parser.add_argument(
        "--satellite-records",
        type=int,
        default=20_000,
        help="records of the satellite backlog (default 20000, about 25 s of link)",
    )
    parser.add_argument(
        "--latency-s", type=float, default=20.0, help="seconds of the latency run (default 20)"
    )
    parser.add_argument(
        "--latency-rate", type=float, default=20.0, help="records/s of it (default 20)"
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=300.0, help="give up draining after (default 300 s)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="           launcher: %(message)s")

    os.environ.setdefault(JVM_OPTS_ENV, "-XX:TieredStopAtLevel=4")
    work = Path(tempfile.mkdtemp(prefix="coldwake-mirror-bench-"))
    home = work / "kafka"
    say(
        f"mirror_throughput: {args.containers} reefers x {args.hours:g} h, vessel of "
        f"{args.vessel_nodes} node(s), satellite backlog {args.satellite_records:,} records, "
        f"latency {args.latency_rate:g}/s for {args.latency_s:g} s; "
        f"{JVM_OPTS_ENV}={os.environ[JVM_OPTS_ENV]}; in {work}"
    )
    sim_cmd = [sys.executable, "-m", "flows.sim", "--out", str(work), "--seed", "7",
               "--containers", str(args.containers), "--hours", str(args.hours)]  # fmt: skip
    try:
        with child(sim_cmd) as sim:
            say("simulating the leg while the clusters start")
            dep = commands.up(home, vessels=1, vessel_nodes=args.vessel_nodes).deployment
            say("clusters, link and MirrorMaker up")
            assert sim.stderr is not None
            sim_err = sim.stderr.read()
            if sim.wait() != 0:
                sys.exit(f"flows.sim failed:\n{sim_err[-2000:]}")
        say(f"simulator: {sim_err.strip().splitlines()[-1] if sim_err.strip() else '(silent)'}")
        run(dep, work, args)
    finally:
        if (home / STATE_FILE).exists():
            say("stopping everything (down)")
            stopped = commands.down(home, timeout=20.0)
            strays = kill_strays(home)
            say(
                f"stopped {len(stopped)} processes"
                + (f"; killed strays {strays}" if strays else "")
            )
        if args.keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
        say("done")


def run(dep: Deployment, work: Path, args: argparse.Namespace) -> None:
    """The four measurements on a running deployment."""
    home = dep.home
    vessel = dep.vessels[0]
    mirror = dep.mirror(vessel.name)
    topics = mirrored_topics(mirror.raw)
    nodes = len(vessel.brokers)

    # 1. The backlog of a leg, made while the link is down, as MirrorMaker runs.
    say("waiting for MirrorMaker's task to run (exactly-once), as it would before an outage")
    say(f"  running after {wait_task_running(home):.1f} s")
    mirroring.set_link_mode(home, vessel.name, "down")
    records = work / "records.jsonl"
    positions = work / "positions.jsonl"
    readings = split_input(records, positions)
    fixes, _ = produce_file(positions, vessel.bootstrap)
    say(f"link down; {fixes:,} position fixes produced to {POSITION}; running the vessel flow")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "COLDWAKE_INPUT": f"file:{records}",
        "COLDWAKE_OUTPUT": "kafka",
        "COLDWAKE_BROKERS": vessel.bootstrap,
        "COLDWAKE_DATA_DIR": str(work / "data"),
        "COLDWAKE_PROGRESS_S": "15",
    }
    flow_s, summary = run_flow(env)
    say(f"flow done in {flow_s:.0f} s; reading the vessel's backlog")
    held = read_vessel(vessel.bootstrap, topics, args.satellite_records)
    disk = segment_bytes(vessel, topics)
    disk_by_topic = {t: sum(v for (tt, _), v in disk.items() if tt == t) for t in topics}
    try:
        left, _ = waiting(home)
        say(f"mirror status before the link returns: {left:,} waiting")
    except LauncherError as e:
        say(f"mirror status failed: {e}")
    mirroring.set_link_mode(home, vessel.name, "up")
    started = time.monotonic()
    say(f"link up: draining {held.total_records:,} records (timeout {args.drain_timeout:.0f} s)")
    unthrottled = watch_drain(home, held.total_records, started, args.drain_timeout)

    # 2. A smaller backlog over the satellite profile. The link is slowed first, then the
    # backlog is produced on the vessel in about a second: a mode change made while data
    # flows lets a chunk through unthrottled (Toxiproxy passes the packet in hand when
    # its toxics change), which would flatter the figures.
    mirroring.set_link_mode(home, vessel.name, "satellite")
    time.sleep(5.0)  # MirrorMaker's idle fetches now cross the slow link
    before = segment_bytes(vessel, topics)
    started = time.monotonic()
    produce_again(vessel.bootstrap, held.sample)
    produced_s = time.monotonic() - started
    after = segment_bytes(vessel, topics)
    sat_payload = sum(len(k or b"") + len(v or b"") for _, _, k, v in held.sample)
    sat_delta = {tp: after.get(tp, 0) - before.get(tp, 0) for tp in after}
    sat_bytes = sum(sat_delta.values())
    per_proxy = max(SATELLITE_RATE_KB_S // nodes, 1) * 1000
    link_rate = per_proxy * nodes
    by_leader: dict[int, int] = {}
    for tp, leader in leaders(vessel.bootstrap, topics).items():
        by_leader[leader] = by_leader.get(leader, 0) + sat_delta.get(tp, 0)
    best_s = max(by_leader.values(), default=0) / per_proxy
    say(
        f"satellite backlog: {len(held.sample):,} records, {sat_payload / MB:.2f} MB payload, "
        f"{sat_bytes / MB:.2f} MB of lz4 batches; per vessel node (leader): "
        + ", ".join(f"{n}: {b / MB:.2f} MB" for n, b in sorted(by_leader.items()))
        + f"; produced in {produced_s:.1f} s over a satellite link"
    )
    sat_timeout = max(120.0, 4 * sat_bytes / link_rate + 60)
    satellite = watch_drain(home, len(held.sample), started, sat_timeout)

    # 4. Latency with the link up.
    mirroring.set_link_mode(home, vessel.name, "up")
    time.sleep(3.0)
    say(f"latency: {args.latency_rate:g} records/s to {ALERTS.topic} for {args.latency_s:g} s")
    delays = latency(
        vessel.bootstrap,
        dep.shore.bootstrap,
        shore_topic(mirror, ALERTS.topic),
        args.latency_s,
        args.latency_rate,
    )

    report(
        args, nodes, readings, summary, held, disk_by_topic, unthrottled,
        (satellite, sat_payload, sat_bytes, link_rate, best_s), delays,
    )  # fmt: skip


def report(
    args: argparse.Namespace,
    nodes: int,
    readings: int,
    summary: str,
    held: Held,
    disk: dict[str, int],
    unthrottled: Drain,
    sat: tuple[Drain, int, int, int, float],
    delays: list[float],
) -> None:
    """Print the figures."""
    print()
    print(
        f"=== mirror throughput: {args.containers:,} reefers x {args.hours:g} h, vessel of "
        f"{nodes} node(s), 1 MirrorMaker (1 task), 2 cores shared with whatever else runs"
    )
    print(f"flow: {summary}")
    print()
    print("1. backlog on the vessel, link unthrottled")
    print(f"   {'topic':<24} {'records':>10} {'payload MB':>11} {'on disk MB':>11} {'ratio':>6}")
    for t in held.records:
        ratio = held.payload[t] / disk[t] if disk[t] else 0.0
        print(
            f"   {t:<24} {held.records[t]:>10,} {held.payload[t] / MB:>11.2f} "
            f"{disk[t] / MB:>11.2f} {ratio:>5.1f}x"
        )
    total_disk = sum(disk.values())
    print(
        f"   {'all':<24} {held.total_records:>10,} {held.total_payload / MB:>11.2f} "
        f"{total_disk / MB:>11.2f} {held.total_payload / max(total_disk, 1):>5.1f}x"
    )
    d = unthrottled
    if d.seconds is not None:
        print(
            f"   drained in {d.seconds:.1f} s (target < {TARGET_DRAIN_S:.0f} s): "
            f"{d.total / d.seconds:,.0f} records/s, {held.total_payload / MB / d.seconds:.2f} MB/s "
            f"payload, {total_disk / MB / d.seconds:.2f} MB/s of lz4 batches"
        )
    else:
        print(f"   NOT drained after {args.drain_timeout:.0f} s: {d.left:,} records still waiting")
    if d.first is not None:
        print(f"   first records seen ashore {d.first:.1f} s after the link came up")
    if d.steady is not None:
        secs, share = d.steady
        print(
            f"   10%->90% of it: {share * d.total / secs:,.0f} records/s, "
            f"{share * held.total_payload / MB / secs:.2f} MB/s payload (reconnection excluded)"
        )
    print()
    drain_s, payload, batches, link_rate, best_s = sat
    print(
        f"2. satellite profile ({SATELLITE_RATE_KB_S * 8} kbit/s, {2 * SATELLITE_LATENCY_MS} ms "
        f"round trip; Toxiproxy caps each of the {nodes} node proxies at "
        f"{link_rate // nodes:,} B/s, {link_rate:,} B/s in all)"
    )
    print(
        f"   backlog: {drain_s.total:,} records, {payload / MB:.2f} MB payload, "
        f"{batches / MB:.2f} MB of lz4 batches ({payload / max(batches, 1):.1f}x); "
        f"the busiest node proxy alone needs {best_s:.1f} s"
    )
    if drain_s.seconds is not None:
        s = drain_s.seconds
        print(
            f"   drained in {s:.1f} s: payload {payload / s:,.0f} B/s = "
            f"{payload / s / link_rate:.0%} of the link (target >= "
            f"{TARGET_SATELLITE_SHARE:.0%}); lz4 batches {batches / s:,.0f} B/s = "
            f"{batches / s / link_rate:.0%} of the link"
        )
    else:
        print(f"   NOT drained in time: {drain_s.left:,} records still waiting")
    if drain_s.steady is not None:
        secs, share = drain_s.steady
        print(
            f"   10%->90% of it (by records): payload {share * payload / secs:,.0f} B/s = "
            f"{share * payload / secs / link_rate:.0%}; lz4 batches {share * batches / secs:,.0f}"
            f" B/s = {share * batches / secs / link_rate:.0%} of the link"
        )
    print()
    outputs = sum(v for t, v in disk.items() if t != POSITION)
    print("3. link bytes per reading (lz4 batches in the vessel's log segments, one replica)")
    print(
        f"   {readings:,} readings ({TELEMETRY} lines of the simulator): outputs "
        f"{outputs / readings:.1f} B/reading, with {POSITION} {total_disk / readings:.1f} "
        f"B/reading; payload {held.total_payload / readings:.1f} B/reading before compression"
    )
    print()
    print(
        f"4. latency, link up: {len(delays)} records at {args.latency_rate:g}/s, vessel "
        f"{ALERTS.topic} -> shore (read_committed)"
    )
    if delays:
        print(
            f"   arrival - production: p50 {percentile(delays, 0.5):.0f} ms, p99 "
            f"{percentile(delays, 0.99):.0f} ms, max {max(delays):.0f} ms"
        )
    else:
        print("   nothing arrived")


if __name__ == "__main__":
    main()
