"""Measuring a mirrored vessel for `bench.mirror_throughput`: what waits, drains, and how fast."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import orjson
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from deploy.kafka import mirroring
from deploy.kafka.errors import LauncherError
from deploy.kafka.parts import Cluster
from flows.contract import ALERTS

TARGET_DRAIN_S: Final = 60.0
TARGET_SATELLITE_SHARE: Final = 0.80
MB: Final = 1e6
_T0: Final = time.monotonic()

TP = tuple[str, int]


def say(line: str) -> None:
    """A progress line, stamped with the seconds since the start."""
    print(f"[{time.monotonic() - _T0:6.1f} s] {line}", flush=True)


# -- the input -------------------------------------------------------------------------


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
