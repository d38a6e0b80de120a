"""Every public name of the event contract, defined once: topics, outputs, alert kinds.

Everything else (sinks, the Kafka launcher, the summary, the simulator's labels)
refers to these constants instead of spelling a name again. Pure: imports nothing
of the project.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# -- inputs ------------------------------------------------------------------------

TELEMETRY: Final = "reefer.telemetry"
POSITION: Final = "vessel.position"
#: Input topics in tie-break order: a fix and a reading with the same time take the fix first.
INPUT_TOPICS: Final = (POSITION, TELEMETRY)

# -- outputs -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Output:
    """One output of the vessel flow.

    Attributes:
        name: The output's short name (`alerts`); also the key of `Outputs.records`.
        topic: Its Kafka topic, keyed as the contract says.
        file: Its local JSONL file under the data dir's `out/`, or None when the
            output is kept locally as a RocksDB table instead.
        compacted: Whether the topic is a compacted changelog (a KTable).
    """

    name: str
    topic: str
    file: str | None
    compacted: bool = False


ALERTS: Final = Output("alerts", "reefer.alerts", "alerts.jsonl")
WINDOWS: Final = Output("windows", "reefer.windows", "windows.jsonl")
LATE: Final = Output("late", "reefer.late", "late.jsonl")
DLQ: Final = Output("dlq", "reefer.dlq", "dlq.jsonl")
CONTAINER_STATE: Final = Output("container-state", "reefer.container-state", None, True)

#: Every output, in the order the flow emits them within a batch.
OUTPUTS: Final = (ALERTS, WINDOWS, LATE, DLQ, CONTAINER_STATE)
#: The outputs written as local JSONL files.
FILE_OUTPUTS: Final = tuple(o for o in OUTPUTS if o.file is not None)
OUTPUT_TOPICS: Final = tuple(o.topic for o in OUTPUTS)

#: Where the local outputs and stores live inside the data dir.
OUT_DIR: Final = "out"
STATE_DIR: Final = "state"

# -- output record types -----------------------------------------------------------

ALERT_TYPE: Final = "reefer.alert"
WINDOW_TYPE: Final = "reefer.window"
DEAD_LETTER_TYPE: Final = "dead_letter"

# -- alert kinds -------------------------------------------------------------------

EXCURSION: Final = "temperature_excursion"
POWER_LOSS: Final = "power_loss"
SILENT: Final = "sensor_silent"
FAULT: Final = "sensor_fault"
DOOR: Final = "door_open_at_sea"
ATMOSPHERE: Final = "atmosphere_out_of_range"
POWER_UNSTABLE: Final = "power_unstable"
#: Every alert kind, in the order the summary lists them.
ALERT_KINDS: Final = (EXCURSION, POWER_LOSS, SILENT, FAULT, DOOR, ATMOSPHERE, POWER_UNSTABLE)

#: Alert record states: a retracted alert was raised on evidence later readings disproved.
OPEN: Final = "open"
CLOSED: Final = "closed"
RETRACTED: Final = "retracted"

#: One output record: (message key, JSON value).
Keyed = tuple[str, bytes]
#: What the output sinks take: (output name, [record, ...]).
OutputBatch = tuple[str, list[Keyed]]
