"""A simulated fleet's stores, written by the real flows, for the dashboard's tests.

Four simulated vessels are planned for 12 h; the present is `NOW`, 7.5 h in, so many
failures are still going on. One vessel, `LINK_DOWN`, lost its link at
`LINK_DOWN_AT`: the shore holds nothing of it after that. The vessel flow runs on board
(file mode, every vessel in one run); its outputs, split by vessel into the shore
topics MirrorMaker would fill (`<vessel>.reefer.alerts`, …), are what the fleet flow
reads ashore, with a recovery dir so that a later run resumes on appended records.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson

from flows.contract import ALERTS, CONTAINER_STATE, DLQ, LATE, POSITION, WINDOWS
from flows.sim import SimConfig, write_files
from flows.timestamps import parse_ts
from tests.integration.kafka_io import ROOT, finish, flow_env, start_flow

SIM = SimConfig(seed=21, vessels=4, containers=25, hours=12, fault_rate=0.5)
#: The simulated vessels (seed 21), and the one whose link goes down half way.
VESSELS = ("IMO9832080", "IMO9876012", "IMO9275012", "IMO9609770")
NOW = "2026-11-20T07:30:00Z"
LINK_DOWN = "IMO9876012"
LINK_DOWN_AT = "2026-11-20T04:30:00Z"


@dataclass(frozen=True, slots=True)
class SimulatedFleet:
    """Where the fleet's pieces are.

    Attributes:
        vessel: The vessel flow's data dir (all four vessels' outputs and table).
        shore: The fleet flow's input files, one per vessel and topic.
        fleet: The fleet flow's data dir (the API serves it).
        recovery: The fleet flow's recovery dir.
    """

    vessel: Path
    shore: Path
    fleet: Path
    recovery: Path

    def run_fleet_flow(self) -> str:
        """Run (or resume) the fleet flow over the shore files; its stderr."""
        cmd = [sys.executable, "-m", "bytewax.run", "flows.fleet"]
        cmd += ["-r", str(self.recovery), "-s", "1", "-b", "0"]
        env = flow_env(self.fleet, input=f"file:{self.shore}")
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        return finish(proc)

    def append(self, vessel: str, topic: str, record: dict[str, object]) -> None:
        """Append one record to a vessel's shore topic (as MirrorMaker would)."""
        with (self.shore / f"{vessel}.{topic}.jsonl").open("ab") as f:
            f.write(orjson.dumps(record) + b"\n")


def _cut(lines: Iterable[bytes]) -> list[bytes]:
    """The simulated input up to NOW, and nothing of LINK_DOWN after LINK_DOWN_AT."""
    now, cut = parse_ts(NOW), parse_ts(LINK_DOWN_AT)
    kept = []
    for line in lines:
        try:
            obj = orjson.loads(line)
            ts = parse_ts(obj["ts"])
        except (orjson.JSONDecodeError, TypeError, KeyError, ValueError):
            kept.append(line)  # a malformed record: the vessel flow dead-letters it
            continue
        if ts <= (cut if obj.get("vessel_id") == LINK_DOWN else now):
            kept.append(line)
    return kept


def _container_states(vessel_dir: Path) -> list[bytes]:
    """The vessel flow's container-state rows, from its table (`state.query dump`)."""
    done = subprocess.run(
        [sys.executable, "-m", "state.query", str(vessel_dir), "dump", "container-state"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    return [orjson.dumps(orjson.loads(line)["value"]) for line in done.stdout.splitlines()]


def build(tmp: Path) -> SimulatedFleet:
    """Simulate, run the vessel flow, split its outputs ashore, run the fleet flow."""
    records, _ = write_files(SIM, tmp / "sim")
    cut = tmp / "sim" / "received.jsonl"
    cut.write_bytes(b"".join(line + b"\n" for line in _cut(records.read_bytes().splitlines())))
    vessel_dir = tmp / "vessel"
    finish(start_flow(vessel_dir, input=f"file:{cut}"))

    out = vessel_dir / "out"
    by_topic: dict[str, list[bytes]] = {
        ALERTS.topic: (out / str(ALERTS.file)).read_bytes().splitlines(),
        WINDOWS.topic: (out / str(WINDOWS.file)).read_bytes().splitlines(),
        LATE.topic: (out / str(LATE.file)).read_bytes().splitlines(),
        CONTAINER_STATE.topic: _container_states(vessel_dir),
        POSITION: [
            line for line in cut.read_bytes().splitlines() if b'"type":"vessel.position"' in line
        ],
    }
    shore = tmp / "shore"
    shore.mkdir()
    for topic, lines in by_topic.items():
        for vessel in VESSELS:
            mine = [line for line in lines if orjson.loads(line).get("vessel_id") == vessel]
            (shore / f"{vessel}.{topic}.jsonl").write_bytes(b"".join(x + b"\n" for x in mine))
    # Dead letters name no vessel: ashore they count under the stand-in topic.
    (shore / f"{DLQ.topic}.jsonl").write_bytes((out / str(DLQ.file)).read_bytes())
    fleet = SimulatedFleet(vessel_dir, shore, tmp / "fleet", tmp / "recovery")
    fleet.run_fleet_flow()
    return fleet
