"""Fleet tables converge: the same record set gives the same tables, however it arrives.

Random fleets (transshipments, revised windows, alerts opened, closed, retracted or
seen only closed, late records, dead letters, records that do not decode) are fed
in random orders, with random duplicates, over 1, 2 or 4 stage-1 and stage-2
instances, with stage-2 messages reordered, and resumed from a snapshot with other
instance counts. Every run's tables, and the compacted view of every run's change
stream, must equal those of one in-order run on one instance (and, for the
hand-made fleet, the rows written out in `test_fleet_scenario`).
"""

from __future__ import annotations

import pickle
import random
from typing import Any

import orjson
import pytest

from flows.fleet_core.deltas import Delta
from flows.fleet_core.local import LocalFleet, Tables, compacted, run
from tests.support.fleet import CONTAINERS, VESSELS, at, fleet_records, shuffled
from tests.unit.test_fleet_scenario import EXPECTED, RECORDS


def _fleet(records: list[tuple[str, bytes]], parts: tuple[int, int]) -> LocalFleet:
    fleet = LocalFleet.of(*parts)
    for topic, raw in records:
        fleet.push(topic, raw)
    return fleet


SEEDS = range(6)
PARTS = ((1, 1), (2, 2), (4, 4), (1, 4), (4, 1), (2, 4))


def test_a_random_fleet_fills_every_table():
    """The random fleets are not vacuous: every table has rows, and rows change."""
    seen: set[str] = set()
    for seed in SEEDS:
        fleet = _fleet(fleet_records(seed), (1, 1))
        tables = fleet.tables()
        seen.update(tables)
        assert len(tables) >= 5, seed
        assert len(fleet.changes) > sum(len(rows) for rows in tables.values())
        assert any(v is None for _, _, v in fleet.changes)  # rows were deleted
        assert len(fleet.undecodable) == 2
    assert sorted(seen) == sorted(EXPECTED)


@pytest.mark.parametrize("seed", SEEDS)
def test_any_order_duplicates_and_split_give_identical_tables(seed):
    records = fleet_records(seed)
    reference = run(records)
    rng = random.Random(1000 + seed)
    for trial in range(25):
        parts = PARTS[trial % len(PARTS)]
        fleet = _fleet(shuffled(records, rng), parts)
        assert fleet.tables() == reference, (trial, parts)
        assert compacted(fleet.changes) == reference, (trial, parts)


@pytest.mark.parametrize("seed", SEEDS)
def test_batches_of_any_size_give_identical_tables(seed):
    """Stage 1 netting a batch's deltas and stage 2 encoding a row once per batch."""
    records = fleet_records(seed)
    reference = run(records)
    rng = random.Random(2000 + seed)
    for trial in range(10):
        fleet = LocalFleet.of(*PARTS[trial % len(PARTS)])
        stream = shuffled(records, rng)
        while stream:
            size = rng.choice((1, 7, 50, 1000))
            fleet.push_batch(stream[:size])
            stream = stream[size:]
        assert fleet.tables() == reference, trial
        assert compacted(fleet.changes) == reference, trial


def test_the_hand_made_fleet_in_any_order_gives_the_rows_written_out_by_hand():
    rng = random.Random(7)
    for trial in range(60):
        fleet = _fleet(shuffled(RECORDS, rng), PARTS[trial % len(PARTS)])
        assert fleet.tables() == EXPECTED, trial
        assert compacted(fleet.changes) == EXPECTED, trial


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_a_vessel_offline_for_days_lands_in_the_same_rows(seed):
    records = fleet_records(seed)
    offline = VESSELS[1]
    backlog = [r for r in records if offline.encode() in r[1]]
    assert backlog
    rest = [r for r in records if r not in backlog]
    assert run(rest + backlog, 2, 2) == run(records)


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_stage_two_messages_in_any_order(seed):
    """Stage 2 sums: reordering the messages between the stages changes nothing."""
    records = fleet_records(seed)
    rng = random.Random(seed)
    fleet = LocalFleet.of(2, 4)
    messages: list[tuple[str, list[Delta]]] = []
    for topic, raw in shuffled(records, rng):
        messages.extend(fleet.entities(topic, raw))
    rng.shuffle(messages)
    for rid, deltas in messages:
        fleet.rows(rid, deltas)
    assert fleet.tables() == run(records)
    assert compacted(fleet.changes) == run(records)


def _tables_of(topic: list[tuple[str, str, bytes | None]]) -> Tables:
    return compacted(topic)


@pytest.mark.parametrize("seed", SEEDS)
def test_resume_from_a_snapshot_with_other_instance_counts(seed):
    """A crash after a snapshot: the state comes back (pickled), the input is replayed
    from the snapshot in another order over other instance counts, and the rows
    written since the snapshot are re-emitted; the topic ends equal to the tables."""
    records = fleet_records(seed)
    rng = random.Random(seed)
    stream = shuffled(records, rng)
    snap_at, crash_at = sorted(rng.sample(range(len(stream)), 2))
    fleet = LocalFleet.of(2, 2)
    topic: list[tuple[str, str, bytes | None]] = []
    for i, (t, raw) in enumerate(stream[:crash_at]):
        if i == snap_at:
            snapshot = pickle.dumps(fleet)
            written_before = len(fleet.changes)
        fleet.push(t, raw)
    topic.extend(fleet.changes)
    written_since = {f"{table}:{key}" for table, key, _ in fleet.changes[written_before:]}

    resumed = pickle.loads(snapshot).resized(4, 1)
    replay = stream[snap_at:]
    rng.shuffle(replay)
    resumed.resync(sorted(written_since))
    for t, raw in replay:
        resumed.push(t, raw)
    topic.extend(resumed.changes)
    reference = run(records)
    assert resumed.tables() == reference
    assert _tables_of(topic) == reference


def test_without_a_resync_a_replay_in_another_order_leaves_a_stale_row():
    """Why `resync` exists: rev 0 of a window is written, then the run crashes; the
    replay brings rev 1 first, so rev 0 is a no-op and its row is never deleted."""
    window: dict[str, Any] = {
        "type": "reefer.window",
        "container_id": CONTAINERS[0],
        "vessel_id": VESSELS[0],
    }
    window |= {"window_start": at(0), "window_end": at(15), "count": 1, "out_of_range": 0}
    window |= {"temp_mean": 3.0, "setpoint_c": 3.0, "lat": None, "lon": None}
    rev0 = (f"{VESSELS[0]}.reefer.windows", orjson.dumps(window | {"revision": 0}))
    rev1 = (f"{VESSELS[0]}.reefer.windows", orjson.dumps(window | {"setpoint_c": -18.0}))
    rev1 = (rev1[0], orjson.dumps(orjson.loads(rev1[1]) | {"revision": 1}))
    fleet = LocalFleet.of()
    snapshot = pickle.dumps(fleet)
    fleet.push(*rev0)  # written to the topic, then the crash
    topic = list(fleet.changes)
    for resync in (False, True):
        resumed = pickle.loads(snapshot)
        if resync:
            resumed.resync(sorted({f"{t}:{k}" for t, k, _ in topic}))
        resumed.push(*rev1)
        resumed.push(*rev0)
        stale = "2026-11-26T00:00:00Z|chilled" in _tables_of(topic + resumed.changes)["cargo"]
        assert stale is not resync
        assert "2026-11-26T00:00:00Z|chilled" not in resumed.tables()["cargo"]
