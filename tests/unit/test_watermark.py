"""The watermark merge: one canonical order whatever the interleaving of partitions."""

from __future__ import annotations

import random

from flows.events import DeadLetter, Record
from flows.watermark import Batch, PartitionMerge, PartState
from tests.support.builders import BOX, OTHER, fix, reading, records

THIRD = "TGHU9999995"

PARTS = ("positions", "telemetry-0", "telemetry-1")


def _partitions() -> list[list[Record]]:
    positions = records([fix(m) for m in range(0, 120, 3)])
    t0 = records([reading(m) for m in range(0, 120, 7)] + [reading(30)] + [b"not json"])
    t1 = records([reading(m, container_id=OTHER) for m in range(1, 120, 5)])
    # A late reading (older ts) keeps its place in its partition's order.
    t1.insert(10, records([reading(2, container_id=OTHER)])[0])
    return [positions, t0, t1]


def _interleave(parts: list[list[Record]], seed: int) -> list[Batch]:
    """Cut each partition into random batches and shuffle them, keeping each partition's order."""
    rng = random.Random(seed)
    queues = []
    for index, recs in enumerate(parts):
        cuts = sorted(rng.sample(range(1, len(recs)), k=min(5, len(recs) - 1)))
        pieces = [recs[a:b] for a, b in zip([0, *cuts], [*cuts, len(recs)], strict=True)]
        batches = [Batch(index, PARTS, piece) for piece in pieces]
        batches.append(Batch(index, PARTS, [], PartState.ENDED))
        queues.append(batches)
    out = []
    while any(queues):
        queue = rng.choice([q for q in queues if q])
        out.append(queue.pop(0))
    return out


def _reference_order(parts: list[list[Record]]) -> list[Record]:
    """The canonical order spelled out: by (partition's running max ts, partition, position)."""
    keyed = []
    for index, recs in enumerate(parts):
        running = -(2**62)
        for seq, r in enumerate(recs):
            if not isinstance(r, DeadLetter):
                running = max(running, r.ts)
            keyed.append(((running, index, seq), r))
    return [r for _, r in sorted(keyed, key=lambda kr: kr[0])]


def _merged(batches: list[Batch]) -> list[Record]:
    merge = PartitionMerge()
    released = []
    for batch in batches:
        released += merge.push(batch)
    assert merge.ended
    return released + merge.finish()


def test_order_is_the_same_for_every_interleaving() -> None:
    parts = _partitions()
    orders = {tuple(id(r) for r in _merged(_interleave(parts, seed))) for seed in range(30)}
    assert len(orders) == 1
    merged = _merged(_interleave(parts, 0))
    assert [id(r) for r in merged] == [id(r) for r in _reference_order(parts)]
    for part in parts:  # each partition's own order survives
        ids = {id(r): i for i, r in enumerate(merged)}
        assert [ids[id(r)] for r in part] == sorted(ids[id(r)] for r in part)


def test_nothing_is_released_while_a_partition_could_still_send_earlier_records() -> None:
    merge = PartitionMerge()
    t0 = records([reading(10), reading(20)])
    assert merge.push(Batch(1, PARTS, t0)) == []  # positions and telemetry-1 said nothing yet
    fixes = records([fix(15)])
    assert merge.push(Batch(0, PARTS, fixes)) == []
    t1 = records([reading(16, container_id=OTHER)])
    # 10:00 and the 15:00 fix are safe; 16:00 waits until positions pass it.
    assert merge.push(Batch(2, PARTS, t1)) == [t0[0], fixes[0]]
    assert merge.push(Batch(0, PARTS, [], PartState.ENDED)) == [t1[0]]
    assert merge.push(Batch(2, PARTS, [], PartState.ENDED)) == [t0[1]]


def test_an_idle_partition_stops_holding_the_merge_back() -> None:
    merge = PartitionMerge()
    merge.push(Batch(0, PARTS, [], PartState.IDLE))
    merge.push(Batch(2, PARTS, [], PartState.IDLE))
    t0 = records([reading(10)])
    assert merge.push(Batch(1, PARTS, t0)) == t0
    late = records([fix(5)])
    assert merge.push(Batch(0, PARTS, late)) == late  # released behind the watermark


def test_a_single_partition_is_passed_through_in_its_own_order() -> None:
    merge = PartitionMerge()
    recs = records([reading(10), reading(5), b"{}", reading(20)])
    assert merge.push(Batch(0, ("only",), recs)) == recs


def test_a_partition_resuming_after_a_pause_voids_the_others_idle_claims() -> None:
    merge = PartitionMerge()
    for part in range(3):
        merge.push(Batch(part, PARTS, [], PartState.IDLE))
    t0 = records([reading(30)])
    assert merge.push(Batch(1, PARTS, t0, PartState.RESUMED)) == []  # others must confirm
    t1 = records([reading(20, container_id=OTHER)])
    assert merge.push(Batch(2, PARTS, t1)) == []
    assert merge.push(Batch(0, PARTS, [], PartState.IDLE)) == t1  # 20 first, 30 waits on t1
    assert merge.push(Batch(2, PARTS, [], PartState.IDLE)) == t0


def test_three_wrong_fixes_in_a_row_do_not_move_a_partitions_clock() -> None:
    # The positions partition of one vessel: one source, whose GPS said 2099 three times.
    bogus = [fix(1, ts=f"2099-11-26T12:0{m}:00Z") for m in (1, 2, 3)]
    f0, b1, b2, b3, f10 = records([fix(0), *bogus, fix(10)])
    r5, r12 = records([reading(5), reading(12)])
    merge = PartitionMerge(max_ahead=360 * 60 * 1_000_000)
    parts = ("positions", "telemetry")
    out = merge.push(Batch(0, parts, [f0, b1, b2, b3, f10]))
    out += merge.push(Batch(1, parts, [r5, r12]))
    out += merge.finish()
    # The true fix at 12:10 still comes before the reading at 12:12: the three wrong
    # ones were keyed at the partition's time, which they did not move.
    assert [id(r) for r in out] == [id(r) for r in (f0, b1, b2, b3, r5, f10, r12)]


def test_far_ahead_records_from_three_sources_are_a_jump() -> None:
    day = 24 * 60
    lines = [reading(0), *(reading(2 * day, container_id=c) for c in (BOX, OTHER, THIRD))]
    r0, j1, j2, j3 = records(lines)
    (p1,) = records([fix(day)])
    merge = PartitionMerge(max_ahead=360 * 60 * 1_000_000)
    parts = ("positions", "telemetry")
    out = merge.push(Batch(1, parts, [r0, j1, j2, j3]))
    out += merge.push(Batch(0, parts, [p1]))
    out += merge.finish()
    # The telemetry partition's time really jumped two days, so the fix of day one goes
    # before the jumped readings (were they noise, they would be keyed at day zero).
    assert [id(r) for r in out] == [id(r) for r in (r0, p1, j1, j2, j3)]


def test_a_resumed_finished_run_holds_new_records_until_every_partition_speaks() -> None:
    """A bounded run ended (every partition ENDED), then more input arrived and the
    run resumes from its snapshot: a fix 8 h later must wait for the telemetry."""
    merge = PartitionMerge()
    for part in range(3):
        merge.push(Batch(part, PARTS, [], PartState.ENDED))
    merge.resumed()
    later = records([fix(480)])
    assert merge.push(Batch(0, PARTS, later)) == []
    t0 = records([reading(470)])
    assert merge.push(Batch(1, PARTS, t0)) == []
    t1 = records([reading(475, container_id=OTHER)])
    assert merge.push(Batch(2, PARTS, t1)) == [t0[0]]  # telemetry-1 may still send 470+
    assert merge.push(Batch(1, PARTS, [], PartState.ENDED)) == [t1[0]]
    assert merge.push(Batch(2, PARTS, [], PartState.ENDED)) == later
