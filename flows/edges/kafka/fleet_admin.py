"""The fleet source's clients of the shore cluster, and its offsets, asked in bulk.

Shared by the slots (`fleet_source`) and the vessel-loss check (`vessel_gaps`); also the
one way both say something in the log.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Final

from confluent_kafka import Consumer, IsolationLevel, KafkaError, KafkaException
from confluent_kafka import TopicPartition as KafkaTopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from flows.config import KafkaSettings
from flows.edges.kafka.errors import stop

Part = tuple[str, int]
EARLIEST: Final[OffsetSpec] = OffsetSpec.earliest()  # type: ignore[no-untyped-call]
LATEST: Final[OffsetSpec] = OffsetSpec.latest()  # type: ignore[no-untyped-call]


def note(line: str) -> None:
    """One line of the fleet's log on stderr."""
    print(f"coldwake-fleet: {line}", file=sys.stderr, flush=True)


def quiet_admin(cfg: KafkaSettings) -> AdminClient:
    """An AdminClient for metadata and offsets that logs nothing of its own: an
    unreachable cluster is one line, not buried under connection-refused lines."""
    return AdminClient(
        {
            "bootstrap.servers": cfg.brokers,
            "log_level": 0,
            "socket.connection.setup.timeout.ms": int(cfg.timeout_s * 1000),
        }
    )


def slot_consumer(cfg: KafkaSettings, on_error: Callable[[KafkaError], None]) -> Consumer:
    """The consumer of one slot of the fleet source."""
    return Consumer(
        {
            "bootstrap.servers": cfg.brokers,
            "group.id": cfg.group_id,
            "enable.auto.commit": False,
            # Never skip records silently: an offset the log no longer has is an
            # error event, reported as a GAP line.
            "auto.offset.reset": "error",
            # MirrorMaker 2 copies in transactions: read only what it committed.
            "isolation.level": "read_committed",
            # The end-of-partition event carries the fetch position, which moves past
            # transaction markers that no message ever reports.
            "enable.partition.eof": True,
            "socket.connection.setup.timeout.ms": int(cfg.timeout_s * 1000),
            # One queue for all of a slot's partitions; SLOTS of them per process.
            "queued.max.messages.kbytes": 8192,
            "fetch.max.bytes": 8 << 20,
            "log_level": 3,
            "error_cb": on_error,
        }
    )


def list_offsets(
    admin: AdminClient,
    parts: list[Part],
    spec: OffsetSpec,
    timeout_s: float,
    committed: bool = True,
) -> tuple[dict[Part, int], dict[Part, str]]:
    """One offset per topic-partition (earliest, or the last stable one), in bulk.

    One request per leader, whatever the number of partitions. Returns the offsets
    found and, apart, why the others are missing (a topic created a moment ago may
    have no leader yet). With `committed=False` the latest offset is the high
    watermark, past any transaction still open.
    """
    if not parts:
        return {}, {}
    futures = admin.list_offsets(
        {KafkaTopicPartition(t, p): spec for t, p in parts},
        # The last stable offset: what a read_committed consumer can reach without
        # waiting for a transaction still open (MirrorMaker writes in transactions).
        isolation_level=(
            IsolationLevel.READ_COMMITTED if committed else IsolationLevel.READ_UNCOMMITTED
        ),
        request_timeout=timeout_s,
    )
    found: dict[Part, int] = {}
    failed: dict[Part, str] = {}
    for tp, future in futures.items():
        try:
            found[(tp.topic, tp.partition)] = future.result(timeout_s).offset
        except (KafkaException, TimeoutError) as exc:
            failed[(tp.topic, tp.partition)] = str(exc) or type(exc).__name__
    return found, failed


def offsets_at_start(
    admin: AdminClient, cfg: KafkaSettings, parts: list[Part], spec: OffsetSpec
) -> dict[Part, int]:
    """Offsets of all `parts`, retried until the timeout (new topics get leaders);
    stops the run when some are still missing then."""
    deadline = time.monotonic() + cfg.timeout_s
    found: dict[Part, int] = {}
    while True:
        wait = max(deadline - time.monotonic(), 0.1)
        got, failed = list_offsets(admin, parts, spec, wait)
        found |= got
        if not failed:
            return found
        if time.monotonic() >= deadline:
            (topic, partition), why = next(iter(sorted(failed.items())))
            stop(
                f"no offsets for {len(failed)} fleet topic-partitions such as "
                f"{topic}[{partition}] from {cfg.brokers} within {cfg.timeout_s:g} s "
                f"({why}); check the shore cluster, or raise COLDWAKE_KAFKA_TIMEOUT_S"
            )
        parts = sorted(failed)
        time.sleep(0.2)
