"""A random fleet's vessel records, as the fleet flow reads them (for fleet tests).

`fleet_records(seed)` draws, for six vessels over four days: fixes, container states
(transshipments: a container's states name two vessels), windows with revisions
(some closed by two vessel flows for one start), alerts opened, closed, retracted
or seen only closed (some moved between vessels while open), late records, dead
letters, and two records that do not decode. Each record once; `arrivals` orders
them as they would arrive ashore, one vessel's link down for three days.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import orjson
from bytewax.testing import TestingSink, TestingSource, cluster_main, run_main

from flows.contract import ALERT_KINDS
from flows.events import with_check_digit
from flows.fleet_core.local import Tables, compacted
from flows.fleet_core.names import FleetBatch
from flows.fleet_core.tables import Change
from flows.fleet_dataflow import FleetSinks, build
from flows.timestamps import format_ts, parse_ts

SPAN_MIN = 4 * 24 * 60

#: Six vessels; the fourth writes to the unprefixed stand-in topics.
VESSELS = ("IMO9778791", "IMO9531129", "IMO9811000", "IMO9700001", "IMO9321483", "IMO9074729")
CONTAINERS = tuple(
    with_check_digit(f"{owner}U{serial:06d}")
    for owner, serial in (("MSK", 1), ("ONE", 22), ("TRI", 333), ("CAI", 4444), ("HLX", 55))
)
SETPOINTS = (-18.0, -10.0, 3.0, 10.0, 13.3)
BASE = parse_ts("2026-11-26T00:00:00Z")
MIN = 60_000_000


def at(minutes: int) -> str:
    return format_ts(BASE + minutes * MIN)


def _place(rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.2:
        return {"lat": None, "lon": None}
    return {"lat": rng.choice((-33.9, 0.0, 4.99, 52.5, 90.0)), "lon": rng.uniform(-180, 180)}


def _topic(vessel: str, suffix: str) -> str:
    return suffix if vessel == VESSELS[3] else f"{vessel}.{suffix}"  # one on stand-in topics


def container_ids(n: int) -> tuple[str, ...]:
    """`n` valid container ids: the five of `CONTAINERS`, then `COLU0000001`…"""
    extra = (f"COLU{serial:06d}" for serial in range(1, max(0, n - len(CONTAINERS)) + 1))
    more = tuple(with_check_digit(cid) for cid in extra)
    return (CONTAINERS + more)[:n]


def fleet_records(seed: int, containers: int = len(CONTAINERS)) -> list[tuple[str, bytes]]:
    """A random fleet's vessel records, each once, for this many containers."""
    rng = random.Random(seed)
    out: list[tuple[str, bytes]] = []
    for v in VESSELS:
        for _ in range(rng.randint(0, 3)):
            fix: dict[str, Any] = {
                "type": "vessel.position",
                "vessel_id": v,
                "ts": at(rng.randrange(SPAN_MIN)),
            }
            fix |= {"lat": rng.uniform(-90, 90), "lon": rng.uniform(-180, 180), "sog_kn": 3.0}
            out.append((_topic(v, "vessel.position"), orjson.dumps(fix)))
    for cid in container_ids(containers):
        setpoint = rng.choice(SETPOINTS)
        aboard = rng.sample(VESSELS, 2)
        for _ in range(rng.randint(1, 3)):  # states, some on another vessel, some tied
            v, ts = rng.choice(aboard), at(rng.choice((600, 600, rng.randrange(SPAN_MIN))))
            state: dict[str, Any] = {"container_id": cid, "vessel_id": v, "ts": ts, "temp_c": 1.5}
            out.append((_topic(v, "reefer.container-state"), orjson.dumps(state)))
        starts = rng.sample(range(0, SPAN_MIN, 15), rng.randint(1, 5))
        # A flow's revisions may name another vessel (one flow, several vessels), and
        # two flows may close a window of the same start (moved within a window).
        for origin, start in [(rng.choice(aboard), s) for s in starts + starts[:1]]:
            for revision in range(rng.randint(1, 3)):
                v, count = rng.choice(aboard), rng.randint(1, 9)
                window: dict[str, Any] = {
                    "type": "reefer.window",
                    "container_id": cid,
                    "vessel_id": v,
                }
                window |= {"window_start": at(start), "window_end": at(start + 15)}
                window |= {"count": count, "out_of_range": rng.choice((0, 0, count))}
                window |= {"temp_mean": round(setpoint + rng.uniform(-4, 4), 3)}
                window |= {"setpoint_c": rng.choice((setpoint, setpoint + 25.0))}
                window |= _place(rng) | {"revision": revision}
                out.append((_topic(origin, "reefer.windows"), orjson.dumps(window)))
        for n in range(rng.randint(0, 3)):
            v, started = rng.choice(aboard), rng.randrange(SPAN_MIN - 80)
            alert: dict[str, Any] = {"type": "reefer.alert", "alert_id": f"{cid}{n:021d}"}
            alert |= {"kind": rng.choice(ALERT_KINDS), "container_id": cid, "vessel_id": v}
            alert |= {"started_at": at(started), "opened_at": at(started + 30)}
            alert |= {"closed_at": None, "detail": {"n": n}} | _place(rng)
            ending = rng.choice(("open", "closed", "retracted", "closed only"))
            if ending != "closed only":
                out.append((_topic(v, "reefer.alerts"), orjson.dumps(alert | {"state": "open"})))
            if ending != "open":
                end = "retracted" if ending == "retracted" else "closed"
                closed = {"state": end, "closed_at": at(started + rng.randint(1, 80))}
                closed["vessel_id"] = rng.choice(aboard)  # moved while open
                out.append(
                    (_topic(rng.choice(aboard), "reefer.alerts"), orjson.dumps(alert | closed))
                )
        for _ in range(rng.randint(0, 2)):
            v = rng.choice(aboard)
            late: dict[str, Any] = {"type": "reefer.telemetry", "container_id": cid, "vessel_id": v}
            late |= {"ts": at(rng.randrange(SPAN_MIN)), "setpoint_c": setpoint, "temp_c": 1.0}
            late |= {"power_kw": 1.0, "late_by_s": rng.randint(1, 900)}
            out.append((_topic(v, "reefer.late"), orjson.dumps(late)))
    for v in VESSELS:
        for offset in rng.sample(range(20), rng.randint(0, 2)):
            dead: dict[str, Any] = {"type": "dead_letter", "error": "not valid JSON (empty record)"}
            dead |= {"source": f"reefer.telemetry[0]@{offset}", "raw": "", "raw_encoding": "utf-8"}
            out.append((_topic(v, "reefer.dlq"), orjson.dumps(dead)))
    out.append((f"{VESSELS[0]}.reefer.windows", b"not json"))
    out.append((f"{VESSELS[1]}.reefer.alerts", b'{"type":"reefer.alert","state":"gone"}'))
    return list(dict.fromkeys(out))


def _event_minute(raw: bytes) -> int:
    """When a record happened, in minutes after BASE (0 for one that does not decode)."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return 0
    for name in ("ts", "window_end", "closed_at", "opened_at"):
        if isinstance(obj, dict) and isinstance(obj.get(name), str):
            return (parse_ts(obj[name]) - BASE) // MIN
    return 0


def arrivals(
    records: list[tuple[str, bytes]], offline: str | None = None, delay_min: int = 3 * 24 * 60
) -> list[tuple[str, bytes]]:
    """The records in the order they reach the shore: by event time, except that
    `offline`'s records arrive `delay_min` later (its link was down)."""

    def arrival(record: tuple[str, bytes]) -> int:
        late = offline is not None and offline.encode() in record[1]
        return _event_minute(record[1]) + (delay_min if late else 0)

    return sorted(records, key=arrival)


def shuffled(records: list[tuple[str, bytes]], rng: random.Random) -> list[tuple[str, bytes]]:
    """The records in a random order, some of them two or three times (replays)."""
    copies = [r for r in records for _ in range(rng.choice((1, 1, 1, 2, 3)))]
    rng.shuffle(copies)
    return copies


def batches(records: list[tuple[str, bytes]], rng: random.Random | None = None) -> list[FleetBatch]:
    """The records cut into reads: one per record, or of random sizes (1 to 50)."""
    out: list[FleetBatch] = []
    i = 0
    while i < len(records):
        n = rng.randint(1, 50) if rng is not None else 1
        out.append(records[i : i + n])
        i += n
    return out


@dataclass(frozen=True, slots=True)
class FleetRun:
    """What one in-memory fleet run wrote: its table changes and dead letters."""

    changes: list[Change]
    dead_letters: list[dict[str, Any]]

    def tables(self) -> Tables:
        """The tables as a compacted changelog (and the store) ends up holding them."""
        return compacted(self.changes)


def run_fleet_in_memory(reads: list[FleetBatch], workers: int = 1) -> FleetRun:
    """Run the real fleet dataflow on these reads with in-memory sinks."""
    changes: list[tuple[str, Change]] = []
    letters: list[tuple[str, list[tuple[str, bytes]]]] = []  # (output, [(key, value)])
    sinks = FleetSinks(TestingSink(changes), TestingSink(letters))
    flow = build(TestingSource(reads), sinks, None)
    if workers == 1:
        run_main(flow)
    else:
        cluster_main(flow, [], 0, worker_count_per_proc=workers)
    dead = [orjson.loads(value) for _, keyed in letters for _, value in keyed]
    return FleetRun([change for _, change in changes], dead)
