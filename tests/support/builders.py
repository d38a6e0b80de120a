"""Small builders for contract records, shared by every suite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from flows.config import DEFAULT_THRESHOLDS
from flows.contract import ALERTS, CONTAINER_STATE, LATE, WINDOWS
from flows.events import Record, parse
from flows.rules.detector import Detector
from flows.rules.thresholds import Thresholds

VESSEL = "IMO9778791"
BOX = "MSKU1234565"
OTHER = "CSQU3054383"
T0 = "2026-11-26T12:00:00Z"
_NOON = datetime(2026, 11, 26, 12, tzinfo=UTC)


def at(minutes: float) -> str:
    """RFC 3339 time `minutes` after 12:00 on 2026-11-26 (negative: before)."""
    moment = _NOON + timedelta(seconds=round(minutes * 60))
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def reading(minute: float, temp: float = -18.0, **fields: Any) -> bytes:
    obj: dict[str, Any] = {
        "type": "reefer.telemetry",
        "container_id": BOX,
        "vessel_id": VESSEL,
        "ts": at(minute),
        "setpoint_c": -18.0,
        "temp_c": temp,
        "power_kw": 2.5,
    }
    obj.update(fields)
    return orjson.dumps(obj)


def fix(
    minute: float,
    sog: float = 15.0,
    lat: float = 10.0,
    lon: float = 20.0,
    vessel: str = VESSEL,
    **fields: Any,
) -> bytes:
    obj: dict[str, Any] = {
        "type": "vessel.position",
        "vessel_id": vessel,
        "ts": at(minute),
        "lat": lat,
        "lon": lon,
        "sog_kn": sog,
    }
    obj.update(fields)
    return orjson.dumps(obj)


def records(lines: list[bytes]) -> list[Record]:
    return [parse(line, f"test:{i + 1}") for i, line in enumerate(lines)]


def run(
    lines: list[bytes], th: Thresholds | None = None, end: bool = False
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], Detector]:
    """Feed lines through a Detector: (alerts, windows, late, detector)."""
    d = Detector(th or DEFAULT_THRESHOLDS)
    d.process(records(lines))
    if end:
        d.end_of_input()
    out = d.drain()
    return (
        [orjson.loads(v) for _, v in out.of(ALERTS)],
        [orjson.loads(v) for _, v in out.of(WINDOWS)],
        [orjson.loads(v) for _, v in out.of(LATE)],
        d,
    )


def rows(d: Detector) -> dict[str, bytes]:
    """The table rows a drain of `d` gives, by container."""
    return dict(d.drain().of(CONTAINER_STATE))


def kinds(alerts: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(a["kind"], a["state"]) for a in alerts]


def detect(
    lines: list[bytes], th: Thresholds | None = None, end: bool = True
) -> tuple[dict[str, list[dict[str, Any]]], Detector]:
    """Feed lines through a Detector; every output decoded, by output name."""
    d = Detector(th or DEFAULT_THRESHOLDS)
    d.process(records(lines))
    if end:
        d.end_of_input()
    out = d.drain()
    return {name: [orjson.loads(v) for _, v in recs] for name, recs in out.records.items()}, d


def window(
    cid: str,
    start: float,
    count: int,
    lo: float,
    hi: float,
    mean: float,
    out: int,
    power: float = 2.5,
    revision: int = 0,
) -> dict[str, Any]:
    """An expected window record of the test vessel at the test fix (lat 10, lon 20)."""
    return {
        "type": "reefer.window",
        "container_id": cid,
        "vessel_id": VESSEL,
        "window_start": at(start),
        "window_end": at(start + 15),
        "count": count,
        "temp_min": lo,
        "temp_max": hi,
        "temp_mean": mean,
        "setpoint_c": -18.0,
        "out_of_range": out,
        "power_kw_mean": power,
        "lat": 10.0,
        "lon": 20.0,
        "revision": revision,
    }
