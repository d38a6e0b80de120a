"""A synthetic fleet backlog: the vessel flows' outputs, as the fleet flow reads them.

    python -m bench.fleet_backlog DIR [--vessels 50] [--reefers 500] [--days 3]

Writes, per vessel, the six files `flows.fleet` reads with `COLDWAKE_INPUT=file:DIR`
(`IMO9778791.reefer.windows.jsonl`, `.reefer.alerts`, `.reefer.container-state`,
`.reefer.late`, `.reefer.dlq`, `.vessel.position`), records in the order a vessel
writes them (`docs/events.md`), without running the vessel flow:

* a position fix every 15 minutes on a moving track;
* per reefer and 15-minute window, one `reefer.window` (revision 0; about 0.5 % are
  revised two windows later with revision 1) and one container-state row, the state
  as of the window's last reading. The vessel's compacted topic carries one row per
  change of state: one per window is a fair stand-in (a reading every 5-15 minutes
  changes the row at each reading);
* alerts for about 2 % of the containers a day: temperature excursions and power
  losses opened then closed, sensor_silent opened then retracted; windows and state
  rows follow them (out-of-range windows, `open_alerts`);
* a few late readings and fixes and dead letters per vessel.

Deterministic for a seed. `ensure` reuses a directory that holds the same backlog
(its `manifest.json`, written last, says which) and refuses one that holds anything
else. Vessels are written in parallel, one process per core.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import random
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, Final

import orjson

from flows.contract import ALERT_KINDS
from flows.events import with_check_digit
from flows.fleet_core.names import INPUT_TOPICS
from flows.timestamps import format_ts, parse_ts

MANIFEST: Final = "manifest.json"
VERSION: Final = 1
WINDOW_MIN: Final = 15  # COLDWAKE_WINDOW_MIN's default
WINDOW_US: Final = WINDOW_MIN * 60_000_000
BASE_US: Final = parse_ts("2026-11-23T00:00:00Z")
OWNERS: Final = ("MSK", "MSC", "CMA", "HLX", "ONE", "EGH", "COS", "ZIM", "YML", "HDM")
SETPOINTS: Final = (-25.0, -18.0, -18.0, -0.5, 2.0, 4.0, 13.0)
EXCURSION, POWER_LOSS, SILENT = ALERT_KINDS[0], ALERT_KINDS[1], ALERT_KINDS[2]


@dataclass(frozen=True, slots=True)
class Backlog:
    """A backlog on disk: its directory, record counts per input kind, total bytes."""

    path: Path
    records: dict[str, int]
    size: int

    @property
    def total(self) -> int:
        """All its records."""
        return sum(self.records.values())


def imo(n: int) -> str:
    """`IMO` + 7 digits: six of `n`, then the IMO check digit (weights 7..2, mod 10)."""
    six = f"{n % 1_000_000:06d}"
    return f"IMO{six}{sum(int(d) * w for d, w in zip(six, range(7, 1, -1), strict=True)) % 10}"


def container_id(n: int) -> str:
    """A valid ISO 6346 container number: owner, `U`, 6-digit serial, check digit."""
    return with_check_digit(f"{OWNERS[n % len(OWNERS)]}U{(n * 7919) % 1_000_000:06d}")


def alert_id(cid: str, kind: str, started_at: str) -> str:
    """The contract's alert id: BLAKE2b-128 of `container_id|kind|started_at`, hex."""
    return hashlib.blake2b(f"{cid}|{kind}|{started_at}".encode(), digest_size=16).hexdigest()


def _track(rng: random.Random, windows: int) -> list[tuple[float, float, float, float]]:
    """`(lat, lon, sog_kn, cog_deg)` at each window start: a ship under way."""
    lat, lon = rng.uniform(-40, 50), rng.uniform(-170, 170)
    cog, sog = rng.uniform(0, 360), rng.uniform(12, 20)
    out = []
    for _ in range(windows):
        out.append((round(lat, 4), round(lon, 4), round(sog, 1), round(cog % 360, 1)))
        cog += rng.gauss(0, 3)
        nm = sog * WINDOW_MIN / 60
        lat += nm / 60 * math.cos(math.radians(cog))
        if abs(lat) > 60:
            lat, cog = math.copysign(60, lat), 180 - cog
        lon += nm / 60 * math.sin(math.radians(cog)) / math.cos(math.radians(lat))
        lon = (lon + 180) % 360 - 180
        sog = min(22.0, max(8.0, sog + rng.gauss(0, 0.2)))
    return out


#: Minutes from an alert's `started_at` to its `opened_at`, per kind.
OPENS_AFTER_MIN: Final = {EXCURSION: 30, POWER_LOSS: 5, SILENT: 30}


@dataclass(slots=True)
class _Episode:
    kind: str
    reefer: int
    start: int  # window of `started_at`
    end: int  # window of `closed_at`
    alert_id: str = ""


def _episodes(rng: random.Random, reefers: int, windows: int) -> list[_Episode]:
    """The vessel's alerts: about 2 % of its containers a day."""
    out: list[_Episode] = []
    for r in range(reefers):
        for day in range(windows // 96):
            roll = rng.random()
            if roll < 0.02:
                kind = EXCURSION if roll < 0.01 else POWER_LOSS if roll < 0.015 else SILENT
                start = day * 96 + rng.randrange(80)
                out.append(_Episode(kind, r, start, min(start + rng.randint(3, 14), windows)))
    return out


class _Writer:
    """One vessel's six files, written a window's records at a time."""

    def __init__(self, out: Path, vessel: str) -> None:
        self.files: dict[str, BinaryIO] = {
            kind: (out / f"{vessel}.{topic}.jsonl").open("wb")
            for kind, topic in INPUT_TOPICS.items()
        }
        self.counts = dict.fromkeys(INPUT_TOPICS, 0)

    def write(self, kind: str, lines: list[bytes]) -> None:
        if lines:
            self.files[kind].write(b"\n".join(lines) + b"\n")
            self.counts[kind] += len(lines)

    def close(self) -> None:
        for f in self.files.values():
            f.close()


def _temps(rng: random.Random, sp: float, hot: bool) -> list[tuple[float, ...]]:
    """1,024 draws of `(temp_min, temp_max, temp_mean, revised temp_mean, return_c,
    power_kw_mean, power_kw)` for a setpoint, in range or in an excursion."""
    out: list[tuple[float, ...]] = []
    for _ in range(1024):
        mean = sp + (5.0 + 2 * rng.random() if hot else rng.gauss(0, 0.4))
        spread = 0.1 + 0.4 * rng.random()
        out.append((round(mean - spread, 2), round(mean + spread, 2), round(mean, 3),
                    round(mean + 0.05, 3), round(mean + 1.4, 2), round(2 + rng.random(), 3),
                    round(2 + rng.random(), 2)))  # fmt: skip
    return out


def write_vessel(out: Path, index: int, reefers: int, days: int, seed: int) -> dict[str, int]:
    """Write vessel `index`'s files under `out`; return its record count per kind."""
    rng = random.Random(seed * 1_000_003 + index)
    vessel, windows = imo(970_000 + 137 * index), days * 24 * 60 // WINDOW_MIN
    ts_of: dict[int, str] = {}

    def ts(us: int) -> str:
        text = ts_of.get(us)
        if text is None:
            text = ts_of[us] = format_ts(us)
        return text

    cids = [container_id(index * reefers + r) for r in range(reefers)]
    setpoints = [rng.choice(SETPOINTS) for _ in cids]
    counts = [rng.choice((1, 2, 2, 3, 3)) for _ in cids]  # readings per window
    last_s = [900 - 900 // (c + 1) + rng.randrange(60) for c in counts]  # last reading
    track = _track(rng, windows)
    episodes = _episodes(rng, reefers, windows)
    open_at: dict[int, dict[int, list[_Episode]]] = {}  # window -> reefer -> open
    alerts_at: dict[int, list[bytes]] = {}
    for e in episodes:
        started_us = BASE_US + e.start * WINDOW_US + last_s[e.reefer] * 1_000_000
        opened_us = started_us + OPENS_AFTER_MIN[e.kind] * 60_000_000
        opened = (opened_us - BASE_US) // WINDOW_US
        started_at = ts(started_us)
        e.alert_id = alert_id(cids[e.reefer], e.kind, started_at)
        lat, lon, _, _ = track[e.start]
        alert: dict[str, Any] = {
            "type": "reefer.alert", "alert_id": e.alert_id, "state": "open", "kind": e.kind,
            "container_id": cids[e.reefer], "vessel_id": vessel, "started_at": started_at,
            "opened_at": ts(opened_us), "closed_at": None, "lat": lat, "lon": lon,
            "detail": {"setpoint_c": setpoints[e.reefer], "peak_deviation_c": 6.2}
            if e.kind == EXCURSION else {"silence_min": 30} if e.kind == SILENT else {},
        }  # fmt: skip
        alerts_at.setdefault(opened, []).append(orjson.dumps(alert))
        if e.end < windows:
            # A silent container's delayed readings disprove its alert: retracted, closed
            # at a reading before `opened_at`; the others close at a reading in range.
            closed_us = started_us + (e.end - e.start) * WINDOW_US + 60_000_000
            last = {"state": "closed", "closed_at": ts(closed_us)}
            if e.kind == SILENT:
                last = {"state": "retracted", "closed_at": ts(started_us + 600_000_000)}
            alerts_at.setdefault(e.end, []).append(orjson.dumps(alert | last))
        for k in range(opened, e.end):
            open_at.setdefault(k, {}).setdefault(e.reefer, []).append(e)
    hot: dict[int, set[int]] = {}  # window -> reefers in an excursion
    for e in episodes:
        for k in range(e.start, e.end if e.kind == EXCURSION else e.start):
            hot.setdefault(k, set()).add(e.reefer)
    normal = {sp: _temps(rng, sp, False) for sp in set(setpoints)}
    excursive = {sp: _temps(rng, sp, True) for sp in set(setpoints)}
    revisions: dict[int, list[bytes]] = {}
    bits, rand, none = rng.getrandbits, rng.random, frozenset[int]()
    empty: dict[int, list[_Episode]] = {}
    w = _Writer(out, vessel)
    try:
        for k in range(windows):
            start_us = BASE_US + k * WINDOW_US
            start, end = ts(start_us), ts(start_us + WINDOW_US)
            lat, lon, sog, cog = track[k]
            fix = {"type": "vessel.position", "vessel_id": vessel, "ts": ts(start_us + 5_000_000),
                   "lat": lat, "lon": lon, "sog_kn": sog, "cog_deg": cog}  # fmt: skip
            w.write("position", [orjson.dumps(fix)])
            hot_now, open_now = hot.get(k, none), open_at.get(k, empty)
            wins: list[bytes] = []
            states: list[bytes] = []
            late: list[bytes] = []
            for r, cid in enumerate(cids):
                sp, n, x = setpoints[r], counts[r], bits(32)
                out_of_range = n if r in hot_now else 0
                t = (excursive if out_of_range else normal)[sp][x & 1023]
                window = {
                    "type": "reefer.window", "container_id": cid, "vessel_id": vessel,
                    "window_start": start, "window_end": end, "count": n,
                    "temp_min": t[0], "temp_max": t[1], "temp_mean": t[2], "setpoint_c": sp,
                    "out_of_range": out_of_range, "power_kw_mean": t[5],
                    "lat": lat, "lon": lon, "revision": 0,
                }  # fmt: skip
                wins.append(orjson.dumps(window))
                x >>= 10  # 22 random bits left: 0.5 % revised, 0.1 % late
                if x < 20_972:  # more readings came behind the vessel's clock
                    window |= {"count": n + 1, "temp_mean": t[3], "revision": 1}
                    revisions.setdefault(min(k + 2, windows - 1), []).append(orjson.dumps(window))
                alerts = open_now.get(r, ())
                reading_us = start_us + last_s[r] * 1_000_000
                state = {
                    "container_id": cid, "vessel_id": vessel, "ts": ts(reading_us),
                    "setpoint_c": sp, "temp_c": t[1], "power_kw": t[6], "return_c": t[4],
                    "ambient_c": 24.5, "humidity_pct": 80.0, "co2_pct": 0.04, "o2_pct": 20.9,
                    "co2_setpoint_pct": None, "o2_setpoint_pct": None, "door_open": False,
                    "defrost": False, "lat": lat, "lon": lon, "sog_kn": sog,
                    "open_alerts": sorted(e.kind for e in alerts),
                    "alert_ids": {e.kind: e.alert_id for e in alerts},
                }  # fmt: skip
                states.append(orjson.dumps(state))
                if 20_972 <= x < 25_166:  # a reading that came after a later one
                    lag = 30 + x % 570
                    reading = {"type": "reefer.telemetry", "container_id": cid,
                               "vessel_id": vessel, "ts": ts(reading_us - lag * 1_000_000),
                               "setpoint_c": sp, "temp_c": t[2], "power_kw": t[6]}  # fmt: skip
                    late.append(orjson.dumps(reading)[:-1] + b',"late_by_s":%d}' % lag)
            w.write("windows", wins + revisions.pop(k, []))
            w.write("container-state", states)
            w.write("alerts", alerts_at.pop(k, []))
            if rand() < 0.02:  # a fix that came after a later one
                late.append(orjson.dumps(fix | {"ts": ts(start_us - 60_000_000)})[:-1]
                            + b',"late_by_s":65}')  # fmt: skip
            w.write("late", late)
            if rand() < 0.05:
                w.write("dlq", [_dead_letter(rng, cids[rng.randrange(reefers)], k)])
    finally:
        w.close()
    return w.counts


def _dead_letter(rng: random.Random, cid: str, k: int) -> bytes:
    """A dead letter the vessel flow wrote for a bad input record."""
    bad = cid[:10] + str((int(cid[10]) + 1) % 10)
    raw = orjson.dumps({"type": "reefer.telemetry", "container_id": bad, "temp_c": 3.1})
    error = f"container_id: bad check digit: {bad!r} should end in {cid[10]}"
    if rng.random() < 0.5:
        raw, error = raw[:25], "not valid JSON (unexpected end of data at line 1 column 26)"
    letter = {"type": "dead_letter", "error": error,
              "source": f"reefer.telemetry[0]@{k * 1000 + rng.randrange(1000)}",
              "raw": raw.decode(), "raw_encoding": "utf-8"}  # fmt: skip
    return orjson.dumps(letter)


_SAY: Final = partial(print, flush=True)


def _params(vessels: int, reefers: int, days: int, seed: int) -> dict[str, int]:
    return {"version": VERSION, "vessels": vessels, "reefers": reefers, "days": days, "seed": seed}


def ensure(
    path: Path,
    vessels: int,
    reefers: int,
    days: int,
    seed: int = 7,
    say: Callable[[str], None] = _SAY,
) -> Backlog:
    """The backlog in `path`: reused when its manifest matches, else written anew."""
    params = _params(vessels, reefers, days, seed)
    manifest = path / MANIFEST
    if manifest.is_file():
        found = orjson.loads(manifest.read_bytes())
        if found["params"] == params:
            return Backlog(path, found["records"], found["bytes"])
        sys.exit(f"{path} holds another backlog ({found['params']}); remove it or pick another")
    if path.exists() and any(path.iterdir()):
        sys.exit(f"{path} is not empty and holds no {MANIFEST}; remove it or pick another")
    path.mkdir(parents=True, exist_ok=True)
    say(f"writing the backlog ({vessels} vessels x {reefers} reefers x {days} days) to {path}")
    totals = dict.fromkeys(INPUT_TOPICS, 0)
    with ProcessPoolExecutor(max_workers=min(os.cpu_count() or 1, vessels)) as pool:
        jobs = [pool.submit(write_vessel, path, i, reefers, days, seed) for i in range(vessels)]
        for job in jobs:
            for kind, n in job.result().items():
                totals[kind] += n
    size = sum(f.stat().st_size for f in path.glob("*.jsonl"))
    manifest.write_bytes(orjson.dumps({"params": params, "records": totals, "bytes": size}))
    return Backlog(path, totals, size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--vessels", type=int, default=50)
    parser.add_argument("--reefers", type=int, default=500)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    backlog = ensure(args.dir, args.vessels, args.reefers, args.days, args.seed)
    print(f"{backlog.total:,} records, {backlog.size / 1e6:,.0f} MB in {backlog.path}: "
          + ", ".join(f"{kind} {n:,}" for kind, n in backlog.records.items()))  # fmt: skip


if __name__ == "__main__":
    main()
