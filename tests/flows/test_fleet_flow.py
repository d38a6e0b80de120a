"""The real fleet dataflow (Bytewax, in memory): tables converge however records arrive.

The hand-made fleet of `test_fleet_scenario` must give its rows written out by hand;
a random fleet of six vessels (transshipments, revisions, retractions, one vessel's
link down for three days) must give the same tables in order, shuffled, replayed
twice, and over 1 or 2 workers.
"""

from __future__ import annotations

import random

import pytest

from flows.fleet_core.names import TABLE_NAMES
from tests.support.fleet import (
    VESSELS,
    arrivals,
    batches,
    fleet_records,
    run_fleet_in_memory,
    shuffled,
)
from tests.unit.test_fleet_scenario import BAD, EXPECTED, RECORDS


@pytest.mark.parametrize("workers", [1, 2])
def test_the_hand_made_fleet_gives_the_rows_computed_by_hand(workers):
    rng = random.Random(workers)
    records = shuffled(RECORDS, rng) + BAD
    run = run_fleet_in_memory(batches(records, rng), workers)
    assert run.tables() == EXPECTED
    assert [letter["source"] for letter in run.dead_letters] == [topic for topic, _ in BAD]
    assert all(letter["type"] == "dead_letter" for letter in run.dead_letters)


def test_a_record_that_does_not_decode_is_a_dead_letter_with_its_reason():
    run = run_fleet_in_memory([[("IMO9778791.reefer.windows", b"not json")]])
    assert run.changes == []
    assert run.dead_letters == [
        {
            "type": "dead_letter",
            "error": "windows: JSON is malformed: invalid character (byte 4)",
            "source": "IMO9778791.reefer.windows",
            "raw": "not json",
            "raw_encoding": "utf-8",
        }
    ]


@pytest.mark.parametrize("seed", [1, 2])
def test_any_arrival_order_replays_and_workers_give_the_same_tables(seed):
    records = fleet_records(seed)
    rng = random.Random(seed)
    in_order = run_fleet_in_memory(batches(arrivals(records), rng)).tables()
    assert set(in_order) == set(TABLE_NAMES)  # not vacuous: every table has rows
    offline = arrivals(records, offline=VESSELS[1])
    assert offline != arrivals(records)
    assert run_fleet_in_memory(batches(offline, rng), 2).tables() == in_order
    replayed = shuffled(records, rng)
    assert len(replayed) > len(records)
    assert run_fleet_in_memory(batches(replayed, rng), 1).tables() == in_order
    assert run_fleet_in_memory(batches(replayed, rng), 2).tables() == in_order
