"""Throughput of the vessel flow over the real vessel cluster, next to a bare consumer.

    python -m bench.kafka_throughput [--containers 2000] [--hours 84] [--brokers B]

Without --brokers it starts the local clusters (deploy.kafka) in a temporary directory
and stops them at the end. It produces about 1M simulated records, then prints
readings/s of: a bare confluent-kafka consumer + `orjson.loads` draining both input
topics (the practical limit on this machine), and `flows.vessel` with Kafka in and out
on one worker; plus the flow's peak RSS. Figures, never asserts.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import orjson
from confluent_kafka import Consumer, TopicPartition

from bench.common import ROOT, flow_summary, run_measured, simulate
from deploy.kafka import commands
from deploy.kafka.jars import JVM_OPTS_ENV
from flows.contract import INPUT_TOPICS
from flows.edges.kafka.admin import topic_partitions
from flows.edges.kafka.producer import produce_file
from tests.support.kafka import reset_topics


def bare_consume(brokers: str) -> tuple[int, float]:
    """Drain both input topics with one consumer and orjson.loads; (records, seconds)."""
    consumer = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": "coldwake-bench",
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    parts = [
        TopicPartition(*_split(name), 0) for name in topic_partitions(brokers, INPUT_TOPICS, 30)
    ]
    ends = {
        (tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in parts
    }
    remaining = sum(ends.values())
    consumer.assign(parts)
    started = time.perf_counter()
    count = 0
    loads = orjson.loads
    while count < remaining:
        for msg in consumer.consume(5000, 1.0):
            if msg.error() is None:
                count += 1
                try:  # noqa: SIM105 (suppress() would add its own cost to the timing)
                    loads(msg.value() or b"")
                except orjson.JSONDecodeError:
                    pass
    seconds = time.perf_counter() - started
    consumer.close()
    return count, seconds


def _split(name: str) -> tuple[str, int]:
    topic, _, rest = name.partition("[")
    return topic, int(rest.rstrip("]"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--containers", type=int, default=2000)
    parser.add_argument("--hours", type=float, default=84.0)
    parser.add_argument("--brokers", help="an existing vessel cluster (its topics are reset)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="coldwake-kbench-"))
    home = work / "kafka"
    brokers = args.brokers
    if brokers is None:
        # Throughput figures want the JVM's full JIT; the launcher's default (C1 only)
        # suits short tests.
        os.environ.setdefault(JVM_OPTS_ENV, "-XX:TieredStopAtLevel=4")
        print(f"starting the local clusters ({os.environ[JVM_OPTS_ENV]})…", flush=True)
        brokers = commands.up(home).deployment.vessel.bootstrap
    try:
        records = simulate(work, args.containers, args.hours)
        reset_topics(brokers)
        sent, took = produce_file(records, brokers)
        readings = sum(1 for line in records.open("rb") if b'"reefer.telemetry"' in line)
        print(
            f"input: {sent:,} records ({readings:,} readings) produced in {took:.1f} s "
            f"({sent / took:,.0f}/s)",
            flush=True,
        )

        count, bare_s = bare_consume(brokers)
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "COLDWAKE_INPUT": "kafka",
            "COLDWAKE_OUTPUT": "kafka",
            "COLDWAKE_BROKERS": brokers,
            "COLDWAKE_KAFKA_STOP_AT_END": "1",
            "COLDWAKE_DATA_DIR": str(work / "data"),
            "COLDWAKE_PROGRESS_S": "10",
        }
        flow_s, flow_rss, err = run_measured(
            [sys.executable, "-m", "bytewax.run", "flows.vessel"], env
        )

        print(f"{'what (1 worker)':<48} {'readings/s':>12} {'wall s':>8} {'peak RSS':>9}")
        print(
            f"{'bare consumer + orjson.loads (records/s)':<48} {count / bare_s:>12,.0f} "
            f"{bare_s:>8.1f}"
        )
        print(
            f"{'flows.vessel, Kafka in and out':<48} {readings / flow_s:>12,.0f} "
            f"{flow_s:>8.1f} {flow_rss:>6} MB"
        )
        ratio = (readings / flow_s) / (count / bare_s)
        print(f"{'flows.vessel / bare consumer':<48} {ratio:>12.0%}")
        print(f"flow's own count: {flow_summary(err)}")
    finally:
        if args.brokers is None:
            commands.down(home)


if __name__ == "__main__":
    main()
