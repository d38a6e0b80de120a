"""The fleet simulator: determinism, contract validity, gateway order and ground truth.

Most tests share one small run with high fault, malformed and re-send rates so that
every kind of event occurs; one test generates the default config.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from flows.events import DeadLetter, Position, Record, Telemetry, parse, parse_ts
from flows.sim import (
    FAILURE_KINDS,
    FAILURE_MIX,
    PORTS,
    Label,
    SimConfig,
    generate,
    imo_check_digit,
    labels,
    load_labels,
    write_files,
)

S = 1_000_000  # microseconds per second, the parser's unit
MIN = 60 * S
HOUR = 60 * MIN

SMALL = SimConfig(
    seed=11,
    containers=40,
    hours=24.0,
    fault_rate=0.5,
    malformed_rate=0.01,
    duplicate_rate=0.01,
    late_rate=0.01,
)


def _line_no(label: Label) -> int:
    match = re.match(r"line (\d+)", label.note)
    assert match, label
    return int(match.group(1))


def _implausible(r: Telemetry) -> bool:
    return not -70.0 <= r.temp_c <= 70.0 or any(
        value is not None and not 0.0 <= value <= top
        for value, top in ((r.co2_pct, 30.0), (r.o2_pct, 30.0), (r.humidity_pct, 100.0))
    )


@dataclass
class Run:
    """One generated run, parsed, with views the tests need."""

    cfg: SimConfig
    lines: list[bytes]
    labels: list[Label]
    records: list[Record]
    copies: set[int] = field(default_factory=set)  # line numbers of duplicate/late copies
    readings: dict[str, list[Telemetry]] = field(default_factory=dict)  # originals only
    positions: dict[str, list[Position]] = field(default_factory=dict)

    @property
    def t0(self) -> int:
        return parse_ts(self.cfg.start)

    @property
    def t_end(self) -> int:
        return self.t0 + round(self.cfg.hours * 3600) * S

    def position_at(self, vessel_id: str, ts: int) -> Position | None:
        """The contract's position in force: latest fix at or before ts, at most 2 h old."""
        fixes = self.positions[vessel_id]
        i = bisect.bisect_right([p.ts for p in fixes], ts) - 1
        return fixes[i] if i >= 0 and ts - fixes[i].ts <= 2 * HOUR else None

    def failures(self) -> list[Label]:
        return [b for b in self.labels if b.kind in FAILURE_KINDS]

    def in_window(self, label: Label) -> list[Telemetry]:
        lo, hi = parse_ts(label.start), parse_ts(label.end)
        return [r for r in self.readings[label.container_id] if lo <= r.ts <= hi]


def _run(cfg: SimConfig) -> Run:
    lines = list(generate(cfg))
    run = Run(cfg, lines, labels(cfg), [parse(line, f"sim:{i}") for i, line in enumerate(lines, 1)])
    run.copies = {_line_no(b) for b in run.labels if b.kind in ("duplicate", "late")}
    readings: dict[str, list[Telemetry]] = defaultdict(list)
    positions: dict[str, list[Position]] = defaultdict(list)
    for i, rec in enumerate(run.records, 1):
        if isinstance(rec, Telemetry) and i not in run.copies:
            readings[rec.container_id].append(rec)
        elif isinstance(rec, Position):
            positions[rec.vessel_id].append(rec)
    run.readings, run.positions = dict(readings), dict(positions)
    return run


@pytest.fixture(scope="module")
def small() -> Run:
    return _run(SMALL)


def _longest_excursion(readings: list[Telemetry]) -> int:
    """Longest span (µs) of consecutive evaluated readings with |temp - setpoint| > 2.0."""
    longest, start = 0, None
    for r in readings:
        if r.defrost or _implausible(r):
            continue  # the excursion rule skips these
        if abs(r.temp_c - r.setpoint_c) > 2.0:
            start = r.ts if start is None else start
            longest = max(longest, r.ts - start)
        else:
            start = None
    return longest


def _contract_alerts(run: Run) -> dict[str, set[str]]:
    """Alert kinds per container by the contract's rules at default thresholds (one file)."""
    found: dict[str, set[str]] = defaultdict(set)
    latest: dict[str, int] = {}
    vessel_time: dict[str, int] = {}
    out_since: dict[str, int] = {}
    without_power: Counter[str] = Counter()
    fixes: dict[str, list[Position]] = defaultdict(list)
    for rec in run.records:
        if isinstance(rec, Position):
            fixes[rec.vessel_id].append(rec)
            continue
        if not isinstance(rec, Telemetry):
            continue
        c = rec.container_id
        if c in latest and rec.ts <= latest[c]:
            continue  # duplicate or late: changes no alert
        if c in latest and vessel_time.get(rec.vessel_id, 0) > latest[c] + 30 * MIN:
            found[c].add("sensor_silent")
        latest[c] = rec.ts
        vessel_time[rec.vessel_id] = max(vessel_time.get(rec.vessel_id, 0), rec.ts)
        if _implausible(rec):
            found[c].add("sensor_fault")
            continue
        without_power[c] = without_power[c] + 1 if rec.power_kw < 0.1 else 0
        if without_power[c] >= 2:
            found[c].add("power_loss")
        # Fixes precede readings of the same second, so the latest fix is the one in force.
        fix = fixes[rec.vessel_id][-1] if fixes[rec.vessel_id] else None
        if rec.door_open and fix is not None and rec.ts - fix.ts <= 2 * HOUR and fix.sog_kn > 2.0:
            found[c].add("door_open_at_sea")
        if rec.defrost:
            continue
        if abs(rec.temp_c - rec.setpoint_c) > 2.0:
            since = out_since.setdefault(c, rec.ts)
            if rec.ts - since >= 30 * MIN:
                found[c].add("temperature_excursion")
        else:
            out_since.pop(c, None)
    return found


def test_same_seed_gives_identical_bytes_and_labels(small: Run) -> None:
    assert list(generate(SMALL)) == small.lines
    assert labels(SMALL) == small.labels


def test_different_seeds_give_different_fleets(small: Run) -> None:
    other = [parse(line, "x") for line in generate(replace(SMALL, seed=12))]
    assert {r.container_id for r in other if isinstance(r, Telemetry)} != small.readings.keys()
    assert {r.vessel_id for r in other if isinstance(r, Position)} != small.positions.keys()


def test_valid_lines_parse_and_malformed_lines_are_dead_lettered(small: Run) -> None:
    malformed = {_line_no(b): b for b in small.labels if b.kind == "malformed"}
    assert malformed, "the small run has a high malformed rate"
    for i, rec in enumerate(small.records, 1):
        if i in malformed:
            assert isinstance(rec, DeadLetter), (i, small.lines[i - 1])
        else:
            assert isinstance(rec, Telemetry | Position), (i, rec)
    dead = [r for r in small.records if isinstance(r, DeadLetter)]
    assert len(dead) == len(malformed)
    reasons = " | ".join(d.error for d in dead)
    for expected in (
        "not valid JSON",
        "not a JSON object but array",
        "unknown record type",
        "power_kw: required field missing",
        "temp_c: expected a number, got boolean",
        "temp_c: non-finite number",
        "not RFC 3339 with an offset",
        "container_id: bad check digit",
        "lat: 95.0 out of range",
        "not UTF-8",
        "temp_c: expected a number, got string",
    ):
        assert expected in reasons


def test_lines_come_in_gateway_order(small: Run) -> None:
    late = {_line_no(b) for b in small.labels if b.kind == "late"}
    highest = 0
    previous: Record | None = None
    for i, rec in enumerate(small.records, 1):
        if isinstance(rec, DeadLetter):
            continue
        if i not in late:
            assert rec.ts >= highest, f"line {i} goes back in time"
            highest = rec.ts
            if isinstance(previous, Telemetry) and previous.ts == rec.ts:
                assert not isinstance(rec, Position), f"line {i}: position after telemetry"
            previous = rec


def test_duplicates_and_late_copies_are_resent_as_labelled(small: Run) -> None:
    resends = [b for b in small.labels if b.kind in ("duplicate", "late")]
    assert Counter(b.kind for b in resends).keys() == {"duplicate", "late"}
    latest: dict[str, int] = {}
    latest_at_line: dict[int, int] = {}
    for i, rec in enumerate(small.records, 1):
        if isinstance(rec, Telemetry):
            latest_at_line[i] = latest.get(rec.container_id, -1)
            latest[rec.container_id] = max(latest.get(rec.container_id, -1), rec.ts)
    for b in resends:
        copy_no = _line_no(b)
        original_no = int(re.findall(r"line (\d+)", b.note)[1])
        copy, original = small.records[copy_no - 1], small.records[original_no - 1]
        assert small.lines[copy_no - 1] == small.lines[original_no - 1]
        assert isinstance(copy, Telemetry) and isinstance(original, Telemetry)
        assert copy.container_id == b.container_id and copy.ts == parse_ts(b.start)
        if b.kind == "duplicate":
            # Re-sent before that container's next reading: its ts is the latest one.
            assert latest_at_line[copy_no] == copy.ts
        else:
            assert latest_at_line[copy_no] > copy.ts  # after a newer reading: late
            assert latest_at_line[copy_no] - copy.ts <= HOUR


def test_identifiers_are_valid(small: Run) -> None:
    for vessel_id in small.positions:
        assert re.fullmatch(r"IMO\d{7}", vessel_id)
        assert imo_check_digit(vessel_id[3:9]) == int(vessel_id[9])
    # The parser verifies the ISO 6346 check digit; the category is U (freight).
    assert len(small.readings) == SMALL.containers
    assert all(cid[3] == "U" for cid in small.readings)


def test_vessel_sails_between_ports_and_berths_in_them(small: Run) -> None:
    (fixes,) = small.positions.values()
    assert fixes[0].ts == small.t0
    gaps = [(b.ts - a.ts) / S for a, b in itertools.pairwise(fixes)]
    assert min(gaps) >= 120 and max(gaps) <= 300
    at_berth = [p for p in fixes if p.sog_kn <= 0.3]
    sailing = [p for p in fixes if p.sog_kn > 0.3]
    assert at_berth and sailing, "the run starts in port and then sails"
    assert all(13.0 <= p.sog_kn <= 21.0 for p in sailing)
    assert all(
        any(abs(p.lat - lat) < 0.01 and abs(p.lon - lon) < 0.01 for lat, lon in PORTS.values())
        for p in at_berth
    )
    # The distance between consecutive fixes at sea agrees with the reported speed.
    for a, b in itertools.pairwise(sailing):
        if b.ts - a.ts <= 300 * S:
            dlat = math.radians(b.lat - a.lat)
            dlon = math.radians(b.lon - a.lon) * math.cos(math.radians(a.lat))
            knots = math.hypot(dlat, dlon) * 3440.065 / ((b.ts - a.ts) / HOUR)
            assert abs(knots - b.sog_kn) < 1.5


def test_healthy_containers_never_break_a_rule(small: Run) -> None:
    faulty = {b.container_id for b in small.failures()}
    healthy = [cid for cid in small.readings if cid not in faulty]
    assert len(healthy) == SMALL.containers - round(SMALL.fault_rate * SMALL.containers)
    for cid in healthy:
        readings = small.readings[cid]
        assert readings[0].ts - small.t0 < 15 * MIN
        gaps = [b.ts - a.ts for a, b in itertools.pairwise(readings)]
        assert max(gaps) <= 16 * MIN  # 15 min interval + 2 x 30 s jitter
        for r in readings:
            assert not r.door_open and not _implausible(r)
            assert 1.5 <= r.power_kw <= 4.5
            if r.defrost:
                assert r.setpoint_c < r.temp_c <= r.setpoint_c + 5.0
            else:
                assert abs(r.temp_c - r.setpoint_c) <= 0.6 + 1e-9


def test_failure_mix_and_windows(small: Run) -> None:
    failures = small.failures()
    n_faulty = round(SMALL.fault_rate * SMALL.containers)
    assert Counter(b.kind for b in failures) == Counter(
        FAILURE_MIX[i % len(FAILURE_MIX)] for i in range(n_faulty)
    )
    assert len({b.container_id for b in failures}) == len(failures)  # one per container
    for b in failures:
        first = small.readings[b.container_id][0].ts
        assert first + 3 * HOUR <= parse_ts(b.start) <= parse_ts(b.end) <= small.t_end - 3 * HOUR
    windows = {b.container_id: (parse_ts(b.start), parse_ts(b.end)) for b in failures}
    for b in small.labels:
        if b.container_id in windows and b.kind in ("defrost", "duplicate", "late"):
            lo, hi = windows[b.container_id]
            margin = HOUR if b.kind == "defrost" else 0
            assert parse_ts(b.end) < lo - margin or parse_ts(b.start) > hi + margin, b


def test_each_failure_shows_its_signature(small: Run) -> None:
    for b in small.failures():
        window = small.in_window(b)
        if b.kind == "compressor_failure":
            assert b.expect == ("temperature_excursion",)
            assert _longest_excursion(window) >= 45 * MIN, b
            assert all(r.power_kw >= 0.1 for r in window)
        elif b.kind == "power_cut":
            runs = [0]
            for r in window:
                runs.append(runs[-1] + 1 if r.power_kw < 0.1 else 0)
            assert max(runs) >= 2, b
            if "temperature_excursion" in b.expect:
                assert _longest_excursion(window) >= 45 * MIN, b
            else:
                assert b.expect == ("power_loss",)
                assert all(abs(r.temp_c - r.setpoint_c) <= 1.5 for r in window if not r.defrost)
        elif b.kind == "silent_sensor":
            assert window[0].ts == parse_ts(b.start) and window[-1].ts == parse_ts(b.end)
            assert len(window) == 2 and window[1].ts - window[0].ts > 45 * MIN
        elif b.kind == "implausible_sensor":
            assert any(_implausible(r) for r in window)
        elif b.kind == "door_open_at_sea":
            open_readings = [r for r in window if r.door_open]
            assert open_readings
            for r in open_readings:
                fix = small.position_at(r.vessel_id, r.ts)
                assert fix is not None and fix.sog_kn > 8.0
                assert abs(r.temp_c - r.setpoint_c) <= 1.6
        elif b.kind == "door_open_in_port":
            assert b.expect == ()
            open_readings = [r for r in small.readings[b.container_id] if r.door_open]
            assert open_readings and all(r in window for r in open_readings)
            for r in open_readings:
                fix = small.position_at(r.vessel_id, r.ts)
                assert fix is not None and fix.sog_kn <= 0.3


def test_labels_expect_exactly_what_the_contract_rules_raise(small: Run) -> None:
    expected: dict[str, set[str]] = defaultdict(set)
    for b in small.labels:
        if b.container_id:
            expected[b.container_id] |= set(b.expect)
    raised = _contract_alerts(small)
    for cid in small.readings:
        assert raised.get(cid, set()) == expected.get(cid, set()), cid


def test_labels_are_sorted_and_complete(small: Run) -> None:
    keys = [(b.start, b.container_id, b.kind) for b in small.labels]
    assert keys == sorted(keys)
    defrost_readings = sum(r.defrost for rs in small.readings.values() for r in rs)
    labelled = sum(
        sum(1 for r in small.in_window(b) if r.defrost) for b in small.labels if b.kind == "defrost"
    )
    assert defrost_readings == labelled > 0


def test_default_config_has_the_promised_size_and_mix(tmp_path: Path) -> None:
    cfg = SimConfig()
    records_path, labels_path = write_files(cfg, tmp_path)
    lines = records_path.read_bytes().splitlines()
    truth = load_labels(labels_path)
    assert 120_000 <= len(lines) <= 180_000
    kinds = Counter(b.kind for b in truth)
    assert sum(kinds[k] for k in FAILURE_KINDS) == round(cfg.fault_rate * cfg.containers)
    assert all(kinds[k] > 0 for k in FAILURE_KINDS)
    assert kinds["defrost"] > cfg.containers * 3  # every unit defrosts every 6-12 h
    dead = sum(isinstance(parse(line, "x"), DeadLetter) for line in lines)
    assert dead == kinds["malformed"] > 0
