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

import orjson
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


def _outages(readings: list[Telemetry]) -> list[list[Telemetry]]:
    """Runs of consecutive readings without power."""
    runs: list[list[Telemetry]] = []
    previous_off = False
    for r in readings:
        off = r.power_kw < 0.1
        if off:
            if not previous_off:
                runs.append([])
            runs[-1].append(r)
        previous_off = off
    return runs


def _longest_out_of_air(readings: list[Telemetry]) -> int:
    """Longest span (µs) of consecutive readings with a gas half a point past its limit
    (CO2 above 10.5 % or O2 below 11.5 %; under CA, 2.5 points from a setpoint)."""
    longest, start = 0, None
    for r in readings:
        assert r.co2_pct is not None and r.o2_pct is not None
        co2_sp, o2_sp = _setpoints(r)
        co2_out = r.co2_pct > 10.5 if co2_sp is None else abs(r.co2_pct - co2_sp) > 2.5
        o2_out = r.o2_pct < 11.5 if o2_sp is None else abs(r.o2_pct - o2_sp) > 2.5
        if co2_out or o2_out:
            start = r.ts if start is None else start
            longest = max(longest, r.ts - start)
        else:
            start = None
    return longest


def _setpoints(r: Telemetry) -> tuple[float | None, float | None]:
    obj = orjson.loads(r.raw)
    return obj.get("co2_setpoint_pct"), obj.get("o2_setpoint_pct")


def _gas_out(mean: float, setpoint: float | None, limit: float, above: bool) -> bool:
    """The contract's atmosphere condition for one gas's 30-minute mean."""
    if setpoint is not None:
        return abs(mean - setpoint) > 2.0
    return mean > limit if above else mean < limit


@dataclass
class _Box:
    """One container's rule state in `_contract_alerts`; the flags say which alerts are open."""

    latest: int = -1
    fault: bool = False
    out_since: int | None = None
    excursion: bool = False
    off_since: int | None = None
    power_loss: bool = False
    power_opens: list[tuple[int, int]] = field(default_factory=list)  # (started, opened)
    power_closed: int = 0
    unstable: bool = False
    door: bool = False
    gas: list[tuple[int, float, float]] = field(default_factory=list)  # last 30 min, plausible
    first_gas: int | None = None
    atmosphere: bool = False


def _power(b: _Box, r: Telemetry) -> list[tuple[str, int]]:
    """power_loss and power_unstable: the alerts this reading opens, (kind, started_at)."""
    opened: list[tuple[str, int]] = []
    if r.power_kw < 0.1:
        b.off_since = r.ts if b.off_since is None else b.off_since
        if r.ts > b.off_since and not b.power_loss:  # the second reading without power
            b.power_loss = True
            b.power_opens.append((b.off_since, r.ts))
            opened.append(("power_loss", b.off_since))
            third = b.power_opens[-3:]
            if not b.unstable and len(third) == 3 and third[2][1] - third[0][1] <= 6 * HOUR:
                b.unstable = True
                opened.append(("power_unstable", third[0][0]))
    else:
        b.off_since = None
        if b.power_loss:
            b.power_loss, b.power_closed = False, r.ts
        elif b.unstable and r.ts - b.power_closed >= 6 * HOUR:
            b.unstable = False
    return opened


def _atmosphere(b: _Box, r: Telemetry, edge_in: bool) -> int | None:
    """atmosphere_out_of_range: the started_at of the alert this reading opens, if any."""
    if r.co2_pct is None or r.o2_pct is None:
        return None
    b.gas.append((r.ts, r.co2_pct, r.o2_pct))
    b.first_gas = r.ts if b.first_gas is None else b.first_gas
    edge = r.ts - 30 * MIN
    while b.gas[0][0] < edge or (not edge_in and b.gas[0][0] == edge):
        b.gas.pop(0)
    if b.first_gas > edge:
        return None  # the readings do not span 30 minutes yet
    co2_sp, o2_sp = _setpoints(r)
    co2 = sum(g[1] for g in b.gas) / len(b.gas)
    o2 = sum(g[2] for g in b.gas) / len(b.gas)
    out = _gas_out(co2, co2_sp, 10.0, True) or _gas_out(o2, o2_sp, 12.0, False)
    opens = out and not b.atmosphere
    b.atmosphere = out
    return b.gas[0][0] if opens else None


def _contract_alerts(run: Run, edge_in: bool = True) -> list[tuple[str, str, int]]:
    """Alerts (container, kind, started_at) by the contract's rules at default thresholds.

    An independent reading of the contract's text for one file in order, to check the
    labels without the Detector. `edge_in` says whether a reading exactly 30 minutes
    old still counts in the atmosphere means (the text reads either way).
    """
    found: list[tuple[str, str, int]] = []
    boxes: dict[str, _Box] = defaultdict(_Box)
    vessel_time: dict[str, int] = {}
    fixes: dict[str, list[Position]] = defaultdict(list)
    for rec in run.records:
        if isinstance(rec, Position):
            fixes[rec.vessel_id].append(rec)
            continue
        if not isinstance(rec, Telemetry):
            continue
        c, b = rec.container_id, boxes[rec.container_id]
        if rec.ts <= b.latest:
            continue  # duplicate or late: changes no alert
        if b.latest >= 0 and vessel_time.get(rec.vessel_id, 0) > b.latest + 30 * MIN:
            found.append((c, "sensor_silent", b.latest))
        b.latest = rec.ts
        vessel_time[rec.vessel_id] = max(vessel_time.get(rec.vessel_id, 0), rec.ts)
        if _implausible(rec):
            if not b.fault:
                found.append((c, "sensor_fault", rec.ts))
            b.fault = True
            continue
        b.fault = False
        found.extend((c, kind, started) for kind, started in _power(b, rec))
        # Fixes precede readings of the same second, so the latest fix is the one in force.
        fix = fixes[rec.vessel_id][-1] if fixes[rec.vessel_id] else None
        at_sea = fix is not None and rec.ts - fix.ts <= 2 * HOUR and fix.sog_kn > 2.0
        if rec.door_open and at_sea and not b.door:
            found.append((c, "door_open_at_sea", rec.ts))
        b.door = rec.door_open and (b.door or at_sea)
        started = _atmosphere(b, rec, edge_in)
        if started is not None:
            found.append((c, "atmosphere_out_of_range", started))
        if rec.defrost:
            continue
        if abs(rec.temp_c - rec.setpoint_c) > 2.0:
            b.out_since = rec.ts if b.out_since is None else b.out_since
            if rec.ts - b.out_since >= 30 * MIN and not b.excursion:
                b.excursion = True
                found.append((c, "temperature_excursion", b.out_since))
        else:
            b.out_since, b.excursion = None, False
    return found


def _unmatched(
    run: Run, alerts: list[tuple[str, str, int]]
) -> tuple[list[tuple[str, str, int]], list[tuple[Label, str]]]:
    """Alerts no label expects (false alarms) and expected kinds no alert matches (misses).

    An alert matches a label of its container that expects its kind when its
    `started_at` lies in the label's [start, end]; atmosphere_out_of_range and
    power_unstable must match exactly once per label.
    """
    hits: Counter[tuple[int, str]] = Counter()
    false_alarms = []
    for cid, kind, started in alerts:
        spans = [
            i
            for i, b in enumerate(run.labels)
            if b.container_id == cid
            and kind in b.expect
            and parse_ts(b.start) <= started <= parse_ts(b.end)
        ]
        if spans:
            hits[spans[0], kind] += 1
        else:
            false_alarms.append((cid, kind, started))
    missed = [
        (b, kind)
        for i, b in enumerate(run.labels)
        for kind in b.expect
        if not hits[i, kind]
        or (kind in ("atmosphere_out_of_range", "power_unstable") and hits[i, kind] != 1)
    ]
    return false_alarms, missed


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
            # Single readings stay far inside the atmosphere limits, so every mean does.
            assert r.co2_pct is not None and r.o2_pct is not None
            co2_sp, o2_sp = _setpoints(r)
            if co2_sp is None or o2_sp is None:
                assert co2_sp is None and o2_sp is None
                assert 0.01 <= r.co2_pct <= 2.0 and 19.0 <= r.o2_pct <= 21.0
            else:
                assert abs(r.co2_pct - co2_sp) <= 0.5 + 1e-9
                assert abs(r.o2_pct - o2_sp) <= 0.4 + 1e-9


def test_controlled_atmosphere_units_hold_their_setpoints(small: Run) -> None:
    ca: dict[str, tuple[float | None, float | None]] = {}
    for cid, readings in small.readings.items():
        setpoints = {_setpoints(r) for r in readings}
        assert len(setpoints) == 1, cid  # fixed for the voyage, on every reading or none
        (sp,) = setpoints
        if sp != (None, None):
            ca[cid] = sp
    assert 0 < len(ca) < len(small.readings) / 2
    scrubbed = {b.container_id for b in small.failures() if b.kind == "scrubber_failure"}
    assert scrubbed and scrubbed <= ca.keys()
    for cid, (co2_sp, o2_sp) in ca.items():
        assert co2_sp is not None and o2_sp is not None and o2_sp < 12.0  # air would be 20.9
        labels_of = [b for b in small.failures() if b.container_id == cid]
        assert all(b.kind not in ("door_open_at_sea", "door_open_in_port") for b in labels_of)
        lo, hi = next(((parse_ts(b.start), parse_ts(b.end)) for b in labels_of
                       if b.kind == "scrubber_failure"), (0, -1))  # fmt: skip
        for r in small.readings[cid]:
            if not lo - 30 * MIN <= r.ts <= hi + 30 * MIN and not _implausible(r):
                assert r.co2_pct is not None and r.o2_pct is not None
                assert abs(r.co2_pct - co2_sp) <= 0.5 + 1e-9, r
                assert abs(r.o2_pct - o2_sp) <= 0.4 + 1e-9, r


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
        elif b.kind in ("gas_sensor_failure", "scrubber_failure"):
            assert b.expect == ("atmosphere_out_of_range",)
            assert all(r.power_kw >= 0.1 and abs(r.temp_c - r.setpoint_c) <= 1.5
                       for r in window if not r.defrost)  # fmt: skip
            assert _longest_out_of_air(window) >= HOUR, b
        elif b.kind == "power_flicker":
            assert b.expect == ("power_loss", "power_unstable")
            outages = _outages(window)
            assert len(outages) >= 3, b
            assert all(len(o) >= 2 for o in outages), b
            assert outages[2][1].ts - outages[0][1].ts <= 6 * HOUR  # when their alerts open
            assert all(abs(r.temp_c - r.setpoint_c) <= 1.5 for r in window if not r.defrost)
            after = [r for r in small.readings[b.container_id] if r.ts > outages[-1][-1].ts]
            assert all(r.power_kw >= 0.1 for r in after)
            assert window[-1].ts - after[0].ts >= 6 * HOUR  # power_unstable closes at end
        elif b.kind == "door_open_in_port":
            assert b.expect == ()
            open_readings = [r for r in small.readings[b.container_id] if r.door_open]
            assert open_readings and all(r in window for r in open_readings)
            for r in open_readings:
                fix = small.position_at(r.vessel_id, r.ts)
                assert fix is not None and fix.sog_kn <= 0.3


@pytest.mark.parametrize("edge_in", [True, False])
def test_labels_expect_exactly_what_the_contract_rules_raise(small: Run, edge_in: bool) -> None:
    alerts = _contract_alerts(small, edge_in)
    assert {kind for _, kind, _ in alerts} >= {"atmosphere_out_of_range", "power_unstable"}
    assert _unmatched(small, alerts) == ([], [])
    # Each outage of a flickering supply is one power_loss.
    for b in small.failures():
        if b.kind == "power_flicker":
            n = sum(1 for a in alerts if a[:2] == (b.container_id, "power_loss"))
            assert n == len(_outages(small.in_window(b))) >= 3, b


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
