"""The vessel clock: records far ahead are held, corroborated by other sources, or dead-lettered."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flows.config import DEFAULT_THRESHOLDS
from flows.rules.holding import HOLD_CAP
from tests.support.builders import BOX, OTHER, VESSEL, at, detect, fix, reading

THIRD = "TGHU9999995"
DAY = 1440


def _windows(out: dict[str, list[dict[str, Any]]]) -> list[tuple[str, str, int]]:
    return [(w["container_id"], w["window_start"], w["count"]) for w in out["windows"]]


def test_a_record_exactly_max_ahead_is_processed_one_minute_more_is_held() -> None:
    out, _ = detect(
        [reading(0), reading(360, container_id=OTHER), reading(721, container_id=THIRD)]
    )
    assert _windows(out) == [(BOX, at(0), 1), (OTHER, at(360), 1)]
    [dead] = out["dlq"]
    assert dead["source"] == "test:3"
    assert dead["error"] == (
        f"ts: {at(721)} was more than 360 minutes ahead of vessel {VESSEL}'s event time when "
        f"it came ({at(360)}); by {at(360)} the input had ended with no other source "
        "corroborating it"
    )
    assert dead["raw"] == reading(721, container_id=THIRD).decode()


def test_a_2099_clock_is_dead_lettered_and_its_containers_true_readings_go_on() -> None:
    lines = [
        reading(0),
        reading(0, container_id=OTHER),
        reading(0, ts="2099-01-01T00:00:00Z"),  # BOX's controller says 2099
        reading(5),
        reading(5, container_id=OTHER),
        reading(10),
    ]
    out, _ = detect(lines)
    assert out["late"] == [] and out["alerts"] == []
    assert _windows(out) == [(OTHER, at(0), 2), (BOX, at(0), 3)]  # emitted at the end, by id
    assert [x["source"] for x in out["dlq"]] == ["test:3"]


def test_a_held_record_is_dead_lettered_once_the_clock_has_moved_max_ahead_past_it() -> None:
    lines = [reading(0, container_id=OTHER), reading(400), reading(359, container_id=OTHER)]
    out, _ = detect(lines, end=False)
    assert out["dlq"] == []  # held at event time 0, which has moved only 359 minutes
    out, _ = detect([*lines, reading(360, container_id=OTHER)], end=False)
    assert [x["source"] for x in out["dlq"]] == ["test:2"]
    assert "no other source had corroborated it" in out["dlq"][0]["error"]


def test_three_sources_corroborate_a_two_day_jump_and_nothing_is_lost() -> None:
    lines = [
        fix(0),
        reading(0),
        reading(0, container_id=OTHER),
        reading(0, container_id=THIRD),
        # The gateway was off for two days.
        reading(2 * DAY),
        reading(2 * DAY, container_id=OTHER),  # two sources: not enough on a 4-source vessel
        reading(2 * DAY + 1, container_id=THIRD),  # the third: the clock has really moved
        reading(2 * DAY + 10),
    ]
    out, d = detect(lines)
    assert out["dlq"] == [] and out["late"] == []
    assert d.counts["clock_jumps"] == 1
    assert _windows(out)[-3:] == [
        (OTHER, at(2 * DAY), 1),
        (BOX, at(2 * DAY), 2),
        (THIRD, at(2 * DAY), 1),
    ]


def test_two_sources_corroborate_on_a_vessel_that_has_shown_only_two() -> None:
    lines = [
        reading(0),
        reading(0, container_id=OTHER),
        reading(DAY),
        reading(DAY, container_id=OTHER),
    ]
    out, d = detect(lines)
    assert out["dlq"] == [] and d.counts["clock_jumps"] == 1
    assert _windows(out)[-2:] == [(OTHER, at(DAY), 1), (BOX, at(DAY), 1)]


def test_one_source_alone_can_never_move_its_vessels_clock() -> None:
    out, d = detect([reading(0), reading(DAY), reading(DAY + 5)])
    assert [x["source"] for x in out["dlq"]] == ["test:2", "test:3"]
    assert d.counts["clock_jumps"] == 0


def test_a_bogus_2099_record_is_not_carried_along_by_a_real_jump() -> None:
    lines = [
        reading(0),
        reading(0, container_id=OTHER),
        reading(0, container_id=THIRD),
        reading(5, ts="2099-06-01T00:00:00Z"),
        reading(2 * DAY),
        reading(2 * DAY, container_id=OTHER),
        reading(2 * DAY, container_id=THIRD),
    ]
    out, d = detect(lines)
    assert d.counts["clock_jumps"] == 1
    assert [x["source"] for x in out["dlq"]] == ["test:4"]
    assert _windows(out)[-3:] == [
        (OTHER, at(2 * DAY), 1),
        (BOX, at(2 * DAY), 1),
        (THIRD, at(2 * DAY), 1),
    ]


def test_a_position_fix_dated_2099_is_dead_lettered_and_later_true_fixes_are_used() -> None:
    lines = [
        fix(0, sog=0.0),
        reading(0),
        fix(1, sog=15.0, ts="2099-01-01T00:00:00Z"),
        fix(5, sog=15.0),
        reading(10, door_open=True),
    ]
    out, _ = detect(lines)
    assert [(a["kind"], a["state"]) for a in out["alerts"]] == [("door_open_at_sea", "open")]
    assert [x["source"] for x in out["dlq"]] == ["test:3"]


def test_past_the_cap_the_record_held_longest_is_dead_lettered() -> None:
    th = replace(DEFAULT_THRESHOLDS, max_ahead_min=60.0)
    bogus = [
        reading(0, ts=f"2099-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z")
        for i in range(HOLD_CAP + 1)
    ]
    out, _ = detect([reading(0), reading(0, container_id=OTHER), *bogus], th, end=False)
    [dead] = out["dlq"]
    assert dead["source"] == "test:3"
    assert dead["error"].endswith("the vessel was holding 10,000 records")


def test_a_record_held_before_a_real_jump_is_processed_once_the_clock_has_caught_up() -> None:
    fourth = "HLXU1234561"
    lines = [
        reading(0),
        reading(0, container_id=OTHER),
        reading(0, container_id=THIRD),
        reading(DAY, container_id=fourth),  # held: a day ahead, and alone
        reading(2 * DAY),
        reading(2 * DAY, container_id=OTHER),
        reading(2 * DAY, container_id=THIRD),  # the jump: the clock is now two days on
    ]
    out, d = detect(lines)
    assert out["dlq"] == [] and out["late"] == [] and d.counts["clock_jumps"] == 1
    assert (fourth, at(DAY), 1) in _windows(out)
