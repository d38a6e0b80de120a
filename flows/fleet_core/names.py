"""Every public name of the fleet flow, defined once: its input kinds and its tables.

The fleet reads the vessel flow's outputs (and the vessels' `vessel.position`) as
MirrorMaker 2 copies them ashore: `<alias>.<topic>` (`IMO9778791.reefer.alerts`),
the alias being the vessel id without dots (`deploy.kafka.mirror`). Until that
lands, the vessel flow's own unprefixed topics on the shore cluster stand in.
`input_kind` tells which kind of record a topic carries, from its suffix alone.

Each fleet table is a KTable: a local store under the data dir's `state/` (named by
`FleetTable.name`, which the stage-2 deltas also carry) and a compacted topic on
the shore cluster (`FleetTable.topic`). Pure: imports only `flows.contract`.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Final

from flows.contract import ALERTS, CONTAINER_STATE, DLQ, LATE, POSITION, WINDOWS

# -- inputs ------------------------------------------------------------------------

#: Input kinds: the vessel output's short name (`flows.contract.Output.name`), or
#: `position` for the vessel's position fixes.
ALERTS_IN: Final = ALERTS.name
WINDOWS_IN: Final = WINDOWS.name
STATE_IN: Final = CONTAINER_STATE.name
LATE_IN: Final = LATE.name
DLQ_IN: Final = DLQ.name
POSITION_IN: Final = "position"

#: Input kind -> the vessel topic that carries it (the suffix of its shore topic).
INPUT_TOPICS: Final[dict[str, str]] = {
    ALERTS_IN: ALERTS.topic,
    WINDOWS_IN: WINDOWS.topic,
    STATE_IN: CONTAINER_STATE.topic,
    LATE_IN: LATE.topic,
    DLQ_IN: DLQ.topic,
    POSITION_IN: POSITION,
}
_KIND_OF_SUFFIX: Final = {topic: kind for kind, topic in INPUT_TOPICS.items()}

#: Every shore topic the fleet reads: a vessel topic, alone or behind mirror prefixes.
INPUT_PATTERN: Final = re.compile(
    r"(?:[^.]+\.)*(?:" + "|".join(re.escape(t) for t in INPUT_TOPICS.values()) + r")"
)

#: What every fleet source yields: `(topic, record bytes)` pairs, a batch at a time.
FleetBatch = list[tuple[str, bytes]]

#: The vessel a dead letter is counted under when its topic has no mirror prefix
#: (the stand-in topics): not a valid vessel id, so it never names a real vessel.
UNKNOWN_VESSEL: Final = "?"


def input_kind(topic: str) -> tuple[str, str] | None:
    """`(kind, alias)` of a shore topic, or None when the fleet does not read it.

    `alias` is the last mirror prefix (the cluster the record was first written on:
    MirrorMaker 2 prepends one alias per hop), or "" for an unprefixed topic.
    """
    for suffix, kind in _KIND_OF_SUFFIX.items():
        if topic == suffix:
            return kind, ""
        if topic.endswith(suffix) and topic[-len(suffix) - 1] == ".":
            prefix = topic[: -len(suffix) - 1]
            alias = prefix.rpartition(".")[2]
            return (kind, alias) if alias else None
    return None


#: The fleet's own dead letters (records it cannot read), under the data dir's `out/`:
#: the contract's `dead_letter` records, `source` naming the topic.
DEAD_LETTERS_OUT: Final = "dlq"
DEAD_LETTERS_FILE: Final = "fleet-dlq.jsonl"

# -- tables ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FleetTable:
    """One fleet table.

    Attributes:
        name: Its short name: the local store's name and the deltas' `table`.
        topic: Its compacted Kafka topic on the shore cluster.
        key: What its row key is, for the docs and `state.query`.
    """

    name: str
    topic: str
    key: str


CONTAINER_STATES: Final = FleetTable("container-state", "fleet.container-state", "container_id")
VESSELS: Final = FleetTable("vessels", "fleet.vessels", "vessel_id")
OPEN_ALERTS: Final = FleetTable("open-alerts", "fleet.open-alerts", "alert_id")
CARGO: Final = FleetTable("cargo", "fleet.cargo", "hour|band")
GRID: Final = FleetTable("grid", "fleet.grid", "hour|lat_min|lon_min")
HOURLY: Final = FleetTable("hourly", "fleet.hourly", "vessel_id|hour")
CONTAINER_WINDOWS: Final = FleetTable(
    "container-windows", "fleet.container-windows", "container_id|window_start|origin"
)
CONTAINER_ALERTS: Final = FleetTable(
    "container-alerts", "fleet.container-alerts", "container_id|alert_id"
)

#: Every fleet table, in the order the docs list them.
TABLES: Final = (
    CONTAINER_STATES, VESSELS, OPEN_ALERTS, CARGO, GRID, HOURLY, CONTAINER_WINDOWS, CONTAINER_ALERTS
)  # fmt: skip
#: The upsert tables: each row is one entity's latest version, as JSON (a `ROW` delta).
UPSERT_TABLES: Final = frozenset(
    t.name for t in (CONTAINER_STATES, OPEN_ALERTS, CONTAINER_WINDOWS, CONTAINER_ALERTS)
)
TABLE_NAMES: Final = tuple(t.name for t in TABLES)
TABLE_TOPICS: Final = tuple(t.topic for t in TABLES)

#: Setpoint bands of `fleet.cargo`: frozen <= -10 °C < chilled <= +10 °C < warm.
FROZEN: Final = "frozen"
CHILLED: Final = "chilled"
WARM: Final = "warm"
BANDS: Final = (FROZEN, CHILLED, WARM)


# -- shards ------------------------------------------------------------------------

#: Each fleet data dir keeps its tables in this many RocksDB shards
#: (`state/fleet/shard-NN`), one sink partition each: up to this many workers write
#: in parallel. Fixed, so that a resume with another worker count finds its shards.
SHARDS: Final = 8


def shard_of(key: str) -> int:
    """The shard (0 .. SHARDS-1) a row key lives in, in every table: CRC-32 of its UTF-8.

    Writers and readers (`state`, the query API) route a key with this one function.
    """
    return zlib.crc32(key.encode()) % SHARDS
