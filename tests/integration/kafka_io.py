"""Helpers for the Kafka integration tests: reading topics, running the flow."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
from confluent_kafka import Consumer, KafkaException, TopicPartition

from flows.contract import CONTAINER_STATE, FILE_OUTPUTS, OUTPUTS

ROOT = Path(__file__).resolve().parents[2]
Records = dict[str, list[bytes]]


def read_topic(bootstrap: str, topic: str, timeout: float = 60.0) -> list[bytes]:
    """Every value in a topic up to its current end, partition by partition."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "coldwake-test",
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        values: list[bytes] = []
        for p in sorted(meta.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, p, low)])
            deadline = time.monotonic() + timeout
            offset = low
            while offset < high:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{topic}[{p}] not read to {high} in time")
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                if msg.error():
                    raise KafkaException(msg.error())
                value, at = msg.value(), msg.offset()
                assert value is not None and at is not None
                values.append(value)
                offset = at + 1
        return values
    finally:
        consumer.close()


def end_offsets(bootstrap: str, topic: str) -> int:
    """How many records a topic holds (sum of its partitions' end offsets)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "coldwake-test", "log_level": 3}
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in meta.partitions
        )
    finally:
        consumer.close()


def kafka_outputs(bootstrap: str) -> Records:
    """The flow's Kafka outputs under the output names."""
    return {o.name: read_topic(bootstrap, o.topic) for o in OUTPUTS}


def local_outputs(data_dir: Path) -> Records:
    return {
        o.name: (data_dir / "out" / str(o.file)).read_bytes().splitlines() for o in FILE_OUTPUTS
    }


def flow_env(data_dir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLDWAKE_")}
    env.update(COLDWAKE_DATA_DIR=str(data_dir), COLDWAKE_PROGRESS_S="0", PYTHONPATH=str(ROOT))
    env.update({f"COLDWAKE_{k.upper()}": v for k, v in settings.items()})
    return env


def start_flow(
    data_dir: Path, recovery: Path | None = None, workers: int | str = 1, **settings: str
) -> subprocess.Popen[bytes]:
    """Start `python -m bytewax.run flows.vessel` with COLDWAKE_<NAME> settings."""
    cmd = [sys.executable, "-m", "bytewax.run", "flows.vessel", "-w", str(workers)]
    if recovery is not None:
        cmd += ["-r", str(recovery), "-s", "1", "-b", "0"]
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=flow_env(data_dir, **settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def finish(proc: subprocess.Popen[bytes], timeout: float = 300) -> str:
    """Wait for a flow; fail with its stderr unless it exited 0."""
    _, err = proc.communicate(timeout=timeout)
    text = err.decode(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    return text


def identity(name: str, value: bytes) -> bytes:
    """What makes an output record the same record when it is written again."""
    obj = orjson.loads(value)
    if name == "alerts":
        return f"{obj['alert_id']}|{obj['state']}".encode()
    if name == "windows":
        return f"{obj['container_id']}|{obj['window_start']}".encode()
    if name == "dlq":
        return orjson.dumps([obj["raw"], obj["error"]])
    if name == "late":
        return value
    return str(obj["container_id"]).encode()  # rows


def distinct(name: str, values: list[bytes]) -> dict[bytes, bytes]:
    """Records by identity; asserts that any repeat is an exact replay of the first."""
    out: dict[bytes, bytes] = {}
    for value in values:
        key = identity(name, value)
        if name != CONTAINER_STATE.name:
            assert out.setdefault(key, value) == value, (
                f"{name}: {key!r} differs on replay: {out[key]!r} vs {value!r}"
            )
        else:
            out[key] = value  # the table's latest row wins
    return out
