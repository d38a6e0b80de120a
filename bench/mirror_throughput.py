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
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import orjson
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from bench.common import ROOT
from deploy.kafka import commands, mirroring
from deploy.kafka.errors import LauncherError
from deploy.kafka.jars import JVM_OPTS_ENV
from deploy.kafka.layout import STATE_FILE, Deployment
from deploy.kafka.link import SATELLITE_LATENCY_MS, SATELLITE_RATE_KB_S
from deploy.kafka.mirror import mirrored_topics, shore_topic
from deploy.kafka.parts import Cluster
from flows.contract import ALERTS, POSITION, TELEMETRY
from flows.edges.kafka.producer import produce_file
from tests.support.kafka import kill_strays

TARGET_DRAIN_S: Final = 60.0
TARGET_SATELLITE_SHARE: Final = 0.80
MB: Final = 1e6
_T0: Final = time.monotonic()

TP = tuple[str, int]


def say(line: str) -> None:
    """A progress line, stamped with the seconds since the start."""
    print(f"[{time.monotonic() - _T0:6.1f} s] {line}", flush=True)


# -- the input -------------------------------------------------------------------------


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


@dataclass(slots=True)
class Held:
    """Records and payload bytes per topic, and records kept for a later backlog."""

    records: dict[str, int] = field(default_factory=dict)
    payload: dict[str, int] = field(default_factory=dict)
    sample: list[tuple[str, int, bytes | None, bytes | None]] = field(default_factory=list)

    @property
    def total_records(self) -> int:
        return sum(self.records.values())

    @property
    def total_payload(self) -> int:
        return sum(self.payload.values())


def _consumer(bootstrap: str, **conf: object) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "coldwake-bench-mirror",  # assign() only: no membership, no commits
            "enable.auto.commit": False,
            "log_level": 3,
            **conf,
        }
    )


def read_vessel(bootstrap: str, topics: list[str], sample: int) -> Held:
    """Read every record of ``topics``: count records and key + value bytes per topic.

    Also keeps ``sample`` records in all, a contiguous slice from the middle of each
    partition in proportion to its size, for the satellite backlog.
    """
    consumer = _consumer(bootstrap, **{"enable.partition.eof": True})
    held = Held()
    try:
        md = consumer.list_topics(timeout=30).topics
        marks = {
            (t, p): consumer.get_watermark_offsets(TopicPartition(t, p), timeout=30)
            for t in topics
            for p in md[t].partitions
        }
        total = sum(high - low for low, high in marks.values())
        keep: dict[TP, tuple[int, int]] = {}
        for tp, (low, high) in marks.items():
            n = round(sample * (high - low) / max(total, 1))
            first = low + (high - low - n) // 2
            keep[tp] = (first, first + n)
        for t in topics:
            held.records[t] = held.payload[t] = 0
        pending = {tp for tp, (low, high) in marks.items() if high > low}
        consumer.assign([TopicPartition(t, p, marks[(t, p)][0]) for t, p in pending])
        deadline = time.monotonic() + 600
        while pending and time.monotonic() < deadline:
            for msg in consumer.consume(10_000, 1.0):
                topic, partition, err = msg.topic(), msg.partition(), msg.error()
                assert topic is not None and partition is not None
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        pending.discard((topic, partition))
                        continue
                    raise RuntimeError(f"reading {topic}[{partition}]: {err}")
                key, value = msg.key(), msg.value()
                held.records[topic] += 1
                held.payload[topic] += len(key or b"") + len(value or b"")
                first, end = keep[(topic, partition)]
                if first <= (msg.offset() or 0) < end:
                    held.sample.append((topic, partition, key, value))
        if pending:
            raise RuntimeError(f"{sorted(pending)} not read to the end in 600 s")
    finally:
        consumer.close()
    return held


def segment_bytes(vessel: Cluster, topics: list[str]) -> dict[TP, int]:
    """Bytes of the log segments (``*.log``) of every partition, one replica each.

    Every replica holds the same batches (followers copy them as they are), so each
    partition counts once: the largest of its replicas (a follower may lag a moment).
    """
    found: dict[TP, int] = {}
    pattern = re.compile(rf"^({'|'.join(re.escape(t) for t in topics)})-(\d+)$")
    for broker in vessel.brokers:
        if not broker.data_dir.is_dir():
            continue
        for d in broker.data_dir.iterdir():
            m = pattern.match(d.name)
            if m is None:
                continue
            size = sum(f.stat().st_size for f in d.glob("*.log"))
            tp = (m[1], int(m[2]))
            found[tp] = max(found.get(tp, 0), size)
    return found


def leaders(bootstrap: str, topics: list[str]) -> dict[TP, int]:
    """The leader node of every partition of ``topics``."""
    consumer = _consumer(bootstrap)
    try:
        md = consumer.list_topics(timeout=30).topics
        return {(t, p): md[t].partitions[p].leader for t in topics for p in md[t].partitions}
    finally:
        consumer.close()


def produce_again(
    bootstrap: str, records: list[tuple[str, int, bytes | None, bytes | None]]
) -> None:
    """Produce records to their own partitions with the flow's producer settings."""
    failures: list[str] = []

    def report(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "compression.type": "lz4",
            "log_level": 3,
        }
    )
    for topic, partition, key, value in records:
        while True:
            try:
                producer.produce(topic, value, key, partition=partition, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(120) or failures:
        raise RuntimeError(f"backlog not acknowledged; first failure: {failures[:1]}")


# -- draining ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Drain:
    """How a backlog crossed.

    Attributes:
        total: Records in the backlog.
        seconds: Seconds until nothing waited; None if it did not drain in time.
        left: Records still waiting at the end.
        first: Seconds until ``mirror status`` first saw a record copied.
        steady: (seconds from 10 % to 90 % copied, share of ``total`` copied then).
    """

    total: int
    seconds: float | None
    left: int
    first: float | None
    steady: tuple[float, float] | None


def waiting(home: Path) -> tuple[int, list[str]]:
    """Records waiting to cross (from ``mirror status``), and its problem lines."""
    [st] = mirroring.mirror_status(home, ages=False)
    return sum(p.waiting for p in st.partitions), st.failed + st.gaps


def wait_task_running(home: Path, timeout: float = 120.0) -> float:
    """Wait until MirrorMaker's task runs exactly-once (it needs the vessel); return seconds."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            [st] = mirroring.mirror_status(home, ages=False)
        except LauncherError:
            time.sleep(1.0)
            continue
        states = {state for state, _ in st.tasks.values()}
        if st.transactional_ids and states == {"RUNNING"}:
            return time.monotonic() - started
        time.sleep(1.0)
    raise SystemExit(f"MirrorMaker's task not running after {timeout:.0f} s")


def watch_drain(home: Path, total: int, started: float, timeout: float) -> Drain:
    """Poll ``mirror status`` until nothing waits; times count from ``started``."""
    timeline: list[tuple[float, int]] = []
    last_report = time.monotonic()
    left = total
    while True:
        try:
            left, problems = waiting(home)
        except LauncherError as e:  # a slow answer on a loaded machine: ask again
            say(f"  mirror status failed ({e}); asking again")
            time.sleep(1.0)
            continue
        now = time.monotonic() - started
        timeline.append((now, total - left))
        for line in problems:
            say(f"  {line}")
        if left == 0:
            break
        if now > timeout:
            say(f"  gave up after {now:.0f} s: {left:,} records still waiting")
            break
        if time.monotonic() - last_report >= 5.0:
            last_report = time.monotonic()
            say(f"  {now:5.1f} s: {total - left:,} copied, {left:,} waiting")
        time.sleep(0.3)
    seconds = timeline[-1][0] if left == 0 else None
    if seconds is not None:
        say(f"  drained in {seconds:.1f} s")

    def first_at(share: float) -> tuple[float, int] | None:
        return next(((t, done) for t, done in timeline if done >= share * total and done), None)

    first, at10, at90 = first_at(0.0), first_at(0.1), first_at(0.9)
    steady = None
    if at10 is not None and at90 is not None and at90[0] > at10[0]:
        steady = (at90[0] - at10[0], (at90[1] - at10[1]) / total)
    return Drain(total, seconds, left, None if first is None else first[0], steady)


# -- latency -------------------------------------------------------------------------


def latency(vessel: str, shore: str, shore_alerts: str, seconds: float, rate: float) -> list[float]:
    """Produce timestamped records to the vessel's alerts; arrival - production ashore, in ms."""
    consumer = _consumer(shore, **{"isolation.level": "read_committed", "fetch.wait.max.ms": 50})
    parts = consumer.list_topics(shore_alerts, timeout=30).topics[shore_alerts].partitions
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(shore_alerts, p), 30)[1] for p in parts
    }
    consumer.assign([TopicPartition(shore_alerts, p, end) for p, end in ends.items()])
    consumer.poll(1.0)
    producer = Producer(
        {
            "bootstrap.servers": vessel,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,  # as the flow's sink
            "compression.type": "lz4",
            "log_level": 3,
        }
    )
    run = os.urandom(4).hex()
    delays: list[float] = []
    sent = 0
    started = time.time()
    last_report = started
    while True:
        now = time.time()
        producing = now - started < seconds
        if producing and sent < (now - started) * rate:
            value = orjson.dumps({"bench": run, "seq": sent, "produced": time.time()})
            producer.produce(ALERTS.topic, value, f"BENCH{sent % 97:07d}".encode())
            sent += 1
        producer.poll(0)
        msg = consumer.poll(0.005)
        if msg is not None and msg.error() is None:
            arrived = time.time()
            try:
                doc = orjson.loads(msg.value() or b"")
            except orjson.JSONDecodeError:
                doc = None
            if isinstance(doc, dict) and doc.get("bench") == run:
                delays.append((arrived - float(doc["produced"])) * 1000)
        if now - last_report >= 5.0:
            last_report = now
            say(f"  {now - started:4.0f} s: {sent} produced, {len(delays)} arrived ashore")
        if not producing and (len(delays) >= sent or now - started > seconds + 15):
            break
    producer.flush(10)
    consumer.close()
    if len(delays) < sent:
        say(f"  {sent - len(delays)} of {sent} records not ashore 15 s after the last one")
    return delays


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


# -- the run -------------------------------------------------------------------------


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
