"""The local Kafka launcher gives tests and developers clusters that behave like the vessel's.

Runs real brokers (``kafka_clusters`` fixture); 35-60 s on 2 cores once the jars are
cached.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

# ConfigResource is public API, but confluent_kafka.admin lists no __all__ for mypy.
from confluent_kafka.admin import AdminClient, ConfigResource  # type: ignore[attr-defined]

from deploy.kafka.admin import create_topics
from deploy.kafka.jars import require_java
from deploy.kafka.layout import Deployment
from deploy.kafka.topics import TopicSpec
from tests.integration.conftest import KafkaClusters
from tests.support.builders import reading

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

Delivery = tuple[KafkaError | None, Message]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy.kafka", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _produce(
    bootstrap: str, topic: str, records: list[tuple[bytes, bytes]], **conf: object
) -> list[Delivery]:
    """Produce with acks=all and return every delivery report."""
    reports: list[Delivery] = []
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "message.timeout.ms": 30000,
            **conf,
        }
    )
    for key, value in records:
        producer.produce(topic, value, key, on_delivery=lambda err, msg: reports.append((err, msg)))
    assert producer.flush(60) == 0, "records still queued after 60 s"
    return reports


def _position(msg: Message) -> tuple[int, int]:
    partition, offset = msg.partition(), msg.offset()
    assert partition is not None and offset is not None
    return partition, offset


def _read_back(
    bootstrap: str, delivered: list[Message], timeout: float = 30.0
) -> dict[tuple[int, int], tuple[bytes | None, bytes | None]]:
    """Fetch the records at the delivered positions: ``(partition, offset) -> (key, value)``."""
    topic = delivered[0].topic()
    assert topic is not None
    wanted = {_position(m) for m in delivered}
    first: dict[int, int] = {}
    for p, o in wanted:
        first[p] = min(o, first.get(p, o))
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "launcher-test-reader",  # assign() only: no group membership, no commits
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, p, o) for p, o in first.items()])
    got: dict[tuple[int, int], tuple[bytes | None, bytes | None]] = {}
    deadline = time.monotonic() + timeout
    try:
        while not wanted <= got.keys() and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            got[_position(msg)] = (msg.key(), msg.value())
    finally:
        consumer.close()
    return {pos: got[pos] for pos in wanted if pos in got}


def _recorded_pids(home: Path) -> dict[str, int | None]:
    return {b.name: b.pid for b in Deployment.load(home).brokers}


def test_vessel_round_trips_a_reading_with_acks_all(kafka_clusters: KafkaClusters) -> None:
    value = reading(0, temp=-18.3)  # a valid reading, from the shared test builder

    reports = _produce(kafka_clusters.vessel_brokers, "reefer.telemetry", [(b"MSKU1234565", value)])

    assert [err for err, _ in reports] == [None]
    assert list(_read_back(kafka_clusters.vessel_brokers, [reports[0][1]]).values()) == [
        (b"MSKU1234565", value)
    ]


def test_contract_topics_are_replicated_retained_and_compacted(
    kafka_clusters: KafkaClusters,
) -> None:
    admin = AdminClient({"bootstrap.servers": kafka_clusters.vessel_brokers})
    expected_partitions = {
        "reefer.telemetry": 6,
        "vessel.position": 3,
        "reefer.alerts": 3,
        "reefer.windows": 3,
        "reefer.container-state": 3,
        "reefer.dlq": 3,
        "reefer.late": 3,
    }

    topics = admin.list_topics(timeout=10).topics
    configs = {
        res.name: {k: v.value for k, v in fut.result(timeout=10).items()}
        for res, fut in admin.describe_configs(
            [ConfigResource("topic", t) for t in expected_partitions]
        ).items()
    }

    for name, partitions in expected_partitions.items():
        assert name in topics, f"{name} missing"
        assert len(topics[name].partitions) == partitions, name
        for p in topics[name].partitions.values():
            assert len(p.replicas) == 3 and sorted(p.isrs) == sorted(p.replicas), (name, p.id)
        cfg = configs[name]
        assert cfg["min.insync.replicas"] == "2", name
        # A week-long shore outage with a 2x margin, and never trimmed by size.
        assert cfg["retention.ms"] == str(14 * 24 * 3600 * 1000), name
        assert cfg["retention.bytes"] == "-1", name
        policy = "compact" if name == "reefer.container-state" else "delete"
        assert cfg["cleanup.policy"] == policy, name


def test_shore_takes_topics_created_by_the_launcher(kafka_clusters: KafkaClusters) -> None:
    create_topics(
        kafka_clusters.shore_brokers, [TopicSpec("launcher-test.shore", 2, 1)], timeout=30
    )

    reports = _produce(kafka_clusters.shore_brokers, "launcher-test.shore", [(b"k", b"ashore")])

    assert [err for err, _ in reports] == [None]
    assert list(_read_back(kafka_clusters.shore_brokers, [reports[0][1]]).values()) == [
        (b"k", b"ashore")
    ]


def test_up_on_running_clusters_changes_nothing(kafka_clusters: KafkaClusters) -> None:
    pids_before = _recorded_pids(kafka_clusters.dir)

    result = _cli("up", "--dir", str(kafka_clusters.dir))

    assert result.returncode == 0, result.stderr
    assert "already running" in result.stderr
    assert result.stdout.splitlines() == [
        f"VESSEL_BROKERS={kafka_clusters.vessel_brokers}",
        f"SHORE_BROKERS={kafka_clusters.shore_brokers}",
    ]
    assert _recorded_pids(kafka_clusters.dir) == pids_before


def test_acks_all_writes_go_on_while_a_vessel_broker_is_dead(
    kafka_clusters: KafkaClusters,
) -> None:
    records = [(f"MSKU{i:07d}".encode(), f"reading {i}".encode()) for i in range(60)]
    kafka_clusters.kill_broker("vessel", 2)
    try:
        down = _cli("status", "--dir", str(kafka_clusters.dir))
        assert down.returncode == 1
        assert "vessel broker 2  down" in down.stdout

        # Two of three replicas remain: min.insync.replicas=2 is still met, so every
        # acks=all write must be acknowledged and readable, whichever broker led it.
        reports = _produce(kafka_clusters.vessel_brokers, "reefer.telemetry", records)

        assert [err for err, _ in reports if err is not None] == []
        back = _read_back(kafka_clusters.vessel_brokers, [m for _, m in reports])
        assert sorted(back.values()) == sorted(records)
    finally:
        kafka_clusters.start_broker("vessel", 2)

    up = _cli("status", "--dir", str(kafka_clusters.dir))
    assert up.returncode == 0, up.stdout
    assert "vessel broker 2  up" in up.stdout


def test_producing_to_a_missing_topic_fails_instead_of_creating_it(
    kafka_clusters: KafkaClusters,
) -> None:
    topic = "reefer.telemetri"  # a typo must not silently create a topic
    errors: list[KafkaError | None] = []
    try:
        # The client asks for auto-creation; only the brokers' setting refuses it.
        reports = _produce(
            kafka_clusters.vessel_brokers,
            topic,
            [(b"k", b"v")],
            **{
                "allow.auto.create.topics": True,
                "topic.metadata.propagation.max.ms": 2000,
                "message.timeout.ms": 10000,
            },
        )
        errors = [err for err, _ in reports]
    except KafkaException as e:  # the client may already know the topic is missing
        errors = [e.args[0]]

    assert len(errors) == 1 and errors[0] is not None
    assert errors[0].code() in {KafkaError._UNKNOWN_TOPIC, KafkaError.UNKNOWN_TOPIC_OR_PART}
    admin = AdminClient({"bootstrap.servers": kafka_clusters.vessel_brokers})
    assert topic not in admin.list_topics(timeout=10).topics


def test_missing_java_is_one_clear_line_and_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path / "empty-bin")}

    result = _cli("up", "--dir", str(tmp_path / "kafka"), env=env)

    assert result.returncode == 2
    assert result.stderr == "error: java not found on PATH; install a Java 17 JDK\n"


def test_first_run_without_maven_is_one_clear_line_and_exit_2(tmp_path: Path) -> None:
    java = require_java()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "java").symlink_to(java)
    env = {**os.environ, "PATH": str(bin_dir), "COLDWAKE_KAFKA_CACHE": str(tmp_path / "cold-cache")}

    result = _cli("up", "--dir", str(tmp_path / "kafka"), env=env)

    assert result.returncode == 2
    assert result.stderr.startswith("error: mvn not found on PATH; install Maven")
    assert len(result.stderr.splitlines()) == 1
