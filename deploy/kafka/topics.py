"""The contract's topics as the vessel cluster holds them: partitions, replicas, retention.

Names come from :mod:`flows.contract`; partition counts and retention are decided here.

Retention. The link to shore may be down for a week, and nothing may be lost while it
is: MirrorMaker 2 can only copy ashore what the vessel still has. Every contract topic
therefore keeps records for 14 days (twice the longest outage we plan for, so a link
that comes back late still finds its backlog, and so does a resync after it) and is
never trimmed by size (``retention.bytes=-1``): on board, disk is what to watch, not
time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from flows.contract import OUTPUTS, POSITION, TELEMETRY

DAY_MS: Final = 24 * 60 * 60 * 1000
RETENTION_MS: Final = 14 * DAY_MS
OUTPUT_PARTITIONS: Final = 3
REPLICATION_FACTOR: Final = 3
MIN_INSYNC_REPLICAS: Final = 2


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic to create.

    Attributes:
        name: Topic name.
        partitions: Number of partitions.
        replication_factor: Replicas per partition.
        config: Topic-level configs, e.g. ``{"cleanup.policy": "compact"}``.
    """

    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str] = field(default_factory=dict)


def contract_topics(
    telemetry_partitions: int = 6,
    position_partitions: int = 3,
    replication_factor: int = REPLICATION_FACTOR,
) -> list[TopicSpec]:
    """The contract's topics as the vessel cluster holds them.

    Replication factor 3 with ``min.insync.replicas=2`` (both capped by the cluster's
    size: ``replication_factor``); 14 days' retention and no size limit (see the module
    docstring); compacted outputs (the container-state table) get
    ``cleanup.policy=compact``. Batches are kept as the producer compressed them
    (``compression.type=producer``), so compressed batches are what MirrorMaker 2 reads
    and what crosses the link.
    """
    base = {
        "min.insync.replicas": str(min(MIN_INSYNC_REPLICAS, replication_factor)),
        "retention.ms": str(RETENTION_MS),
        "retention.bytes": "-1",
        "compression.type": "producer",
    }

    def spec(name: str, partitions: int, compacted: bool = False) -> TopicSpec:
        policy = "compact" if compacted else "delete"
        return TopicSpec(name, partitions, replication_factor, {**base, "cleanup.policy": policy})

    return [
        spec(TELEMETRY, telemetry_partitions),
        spec(POSITION, position_partitions),
        *(spec(o.topic, OUTPUT_PARTITIONS, o.compacted) for o in OUTPUTS),
    ]
