"""What the dashboard's pages show, built from the stores: pure, no I/O but the `View`.

Each function reads one instant of the stores (`state.api.stores.View`) and returns
the JSON-ready dict of one page (the shapes are in `docs/dashboard.md`). Every value
comes from the tables, never from the wall clock, so that a view is a function of
the store's position and can be cached and tagged by it (`state.api.dashboard`).

Staleness is measured on event time: a vessel is stale when its latest record is
more than `STALE_AFTER_S` behind the fleet's newest record (the *fleet time*). A
vessel whose link is down falls behind the others; a replay of old data shows the
same picture as it did live.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Final, NamedTuple

import orjson

from flows.contract import (
    ALERT_KINDS,
    ATMOSPHERE,
    DOOR,
    EXCURSION,
    FAULT,
    POWER_LOSS,
    POWER_UNSTABLE,
    SILENT,
)
from flows.fleet_core.deltas import cell
from flows.fleet_core.names import (
    CONTAINER_ALERTS,
    CONTAINER_STATES,
    CONTAINER_WINDOWS,
    OPEN_ALERTS,
    UNKNOWN_VESSEL,
    VESSELS,
)
from flows.timestamps import US_PER_S, parse_ts
from state.api.pages import Row
from state.api.sources import VESSEL_TABLES, fleet_table
from state.api.stores import View

#: A vessel whose latest record is this far behind the fleet time is marked stale.
STALE_AFTER_S: Final = 30 * 60
#: The container chart shows this many days back from the container's latest window.
HISTORY_DAYS: Final = 3


class Severity(NamedTuple):
    """How an alert kind ranks on the desk: `rank` 1 is the most urgent."""

    rank: int
    level: str
    label: str


CRITICAL, WARNING, WATCH = "critical", "warning", "watch"
#: Cargo at risk now first (temperature, power), then conditions that put it at risk,
#: then sensor and supply trouble that hides or precedes a risk.
SEVERITIES: Final[dict[str, Severity]] = {
    EXCURSION: Severity(1, CRITICAL, "Temperature excursion"),
    POWER_LOSS: Severity(2, CRITICAL, "Power loss"),
    ATMOSPHERE: Severity(3, WARNING, "Atmosphere out of range"),
    DOOR: Severity(4, WARNING, "Door open at sea"),
    FAULT: Severity(5, WARNING, "Sensor fault"),
    SILENT: Severity(6, WATCH, "Sensor silent"),
    POWER_UNSTABLE: Severity(7, WATCH, "Power unstable"),
}
assert set(SEVERITIES) == set(ALERT_KINDS), "every contract alert kind needs a severity"


def severity(kind: str) -> Severity:
    """A kind's severity; a kind this build does not know ranks last, labelled as is."""
    return SEVERITIES.get(kind) or Severity(len(SEVERITIES) + 1, WATCH, kind)


def severities_json() -> dict[str, dict[str, Any]]:
    """Every known kind's severity, for the pages (they never hard-code the kinds)."""
    return {kind: s._asdict() for kind, s in SEVERITIES.items()}


_VESSELS: Final = fleet_table(VESSELS)
_OPEN_ALERTS: Final = fleet_table(OPEN_ALERTS)
_STATES: Final = fleet_table(CONTAINER_STATES)
_WINDOWS: Final = fleet_table(CONTAINER_WINDOWS)
_ALERT_HISTORY: Final = fleet_table(CONTAINER_ALERTS)
_VESSEL_STATE: Final = VESSEL_TABLES[0]


def _objects(rows: Iterable[Row]) -> Iterator[dict[str, Any]]:
    return (orjson.loads(raw) for _, raw in rows)


def _seconds(ts: str) -> float:
    return parse_ts(ts) / US_PER_S


def _worst(kinds: Iterable[str]) -> str | None:
    return min(kinds, key=lambda k: (severity(k).rank, k), default=None)


def _fleet_time(vessels: list[dict[str, Any]]) -> str | None:
    heard = [v["last_heard"] for v in vessels if v["last_heard"] is not None]
    return max(heard, key=parse_ts, default=None)


def _behind(last_heard: str | None, fleet_time: str | None) -> int | None:
    if last_heard is None or fleet_time is None:
        return None
    return round(_seconds(fleet_time) - _seconds(last_heard))


def _link(row: dict[str, Any], fleet_time: str | None) -> dict[str, Any]:
    behind = _behind(row["last_heard"], fleet_time)
    # Never heard from (only dead letters so far) counts as stale: nothing to trust.
    stale = behind is None or behind > STALE_AFTER_S
    return {"behind_s": behind, "stale": stale}


def _alert_item(a: dict[str, Any]) -> dict[str, Any]:
    keys = ("alert_id", "kind", "vessel_id", "container_id", "since", "lat", "lon")
    return {k: a.get(k) for k in keys}


def _alert_order(a: dict[str, Any]) -> tuple[int, int, str]:
    since = a["since"]
    return (severity(a["kind"]).rank, 0 if since is None else parse_ts(since), a["alert_id"])


def _sorted_alerts(alerts: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Most severe first, then the oldest (`since`), then by id: a stable order."""
    return sorted((_alert_item(a) for a in alerts), key=_alert_order)


def open_cells(alerts: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Open alerts per 5° cell of `fleet.grid` (its cell function), kinds by severity.

    The same counts as `fleet.grid`'s `open_alerts` summed over every hour of a cell
    (an alert counts in the cell of its position at `since`), from the open alerts
    alone: the grid keeps one row per hour forever, the open alerts stay few.
    """
    cells: dict[tuple[int, int], dict[str, int]] = {}
    for a in alerts:
        if a["lat"] is None or a["lon"] is None:
            continue
        kinds = cells.setdefault(cell(a["lat"], a["lon"]), {})
        kinds[a["kind"]] = kinds.get(a["kind"], 0) + 1
    return [
        {
            "lat_min": lat,
            "lon_min": lon,
            "open_alerts": sum(kinds.values()),
            "by_kind": {k: kinds[k] for k in sorted(kinds, key=lambda k: severity(k).rank)},
        }
        for (lat, lon), kinds in sorted(cells.items())
    ]


def fleet_view(view: View) -> dict[str, Any]:
    """The fleet page: every vessel, every open alert, cells shaded by open alerts."""
    # Dead letters with no vessel to name count under UNKNOWN_VESSEL: not a vessel.
    rows = [v for v in _objects(view.rows(_VESSELS)) if v["vessel_id"] != UNKNOWN_VESSEL]
    fleet_time = _fleet_time(rows)
    vessels = []
    for v in rows:
        fix = v["position"] or {}
        vessels.append(
            {
                "vessel_id": v["vessel_id"],
                "lat": fix.get("lat"),
                "lon": fix.get("lon"),
                "cog_deg": fix.get("cog_deg"),
                "sog_kn": fix.get("sog_kn"),
                "last_heard": v["last_heard"],
                **_link(v, fleet_time),
                "worst": _worst(v["open_alerts"]),
                "open_alerts": sum(v["open_alerts"].values()),
                "reefers": v["reefers_aboard"],
            }
        )
    alerts = _sorted_alerts(_objects(view.rows(_OPEN_ALERTS)))
    return {
        "kind": "fleet",
        "fleet_time": fleet_time,
        "stale_after_s": STALE_AFTER_S,
        "severities": severities_json(),
        "vessels": vessels,
        "alerts": alerts,
        "grid": open_cells(alerts),
    }


def container_view(view: View, container_id: str, tolerance_c: float) -> dict[str, Any]:
    """One container's last `HISTORY_DAYS` of windows and alerts, and its vessels."""
    prefix = container_id + "|"
    state = view.get(_STATES, container_id)
    history = list(_objects(view.rows(_WINDOWS, prefix=prefix)))
    alerts = list(_objects(view.rows(_ALERT_HISTORY, prefix=prefix)))
    if history:
        cutoff = parse_ts(history[-1]["window_start"]) - HISTORY_DAYS * 86_400 * US_PER_S
        history = [w for w in history if parse_ts(w["window_start"]) >= cutoff]
        alerts = [a for a in alerts if a["closed_at"] is None or parse_ts(a["closed_at"]) >= cutoff]
    keep = ("window_start", "window_end", "vessel_id", "count", "temp_min", "temp_max")
    windows = [
        {k: w[k] for k in (*keep, "temp_mean", "setpoint_c", "out_of_range")} for w in history
    ]
    alerts.sort(key=lambda a: (parse_ts(a["since"]), a["alert_id"]))
    return {
        "kind": "container",
        # Not a 404: the page polls on, and shows the container once the fleet hears of it.
        "found": state is not None or bool(history) or bool(alerts),
        "container_id": container_id,
        "tolerance_c": tolerance_c,
        "severities": severities_json(),
        "state": None if state is None else orjson.loads(state),
        "windows": windows,
        "alerts": [
            {k: a[k] for k in ("alert_id", "kind", "state", "vessel_id", "since", "closed_at")}
            for a in alerts
        ],
        "vessels": vessel_spans(history),
    }


def vessel_spans(windows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """A container's vessels over time: runs of consecutive windows on one vessel."""
    spans: list[dict[str, Any]] = []
    for w in windows:
        if spans and spans[-1]["vessel_id"] == w["vessel_id"]:
            spans[-1]["to"] = max(spans[-1]["to"], w["window_end"], key=parse_ts)
        else:
            span = {"vessel_id": w["vessel_id"], "from": w["window_start"]}
            spans.append(span | {"to": w["window_end"]})
    return spans


def _reefer_order(row: dict[str, Any]) -> tuple[int, str]:
    worst = _worst(row["open_alerts"])
    return (severity(worst).rank if worst else len(SEVERITIES) + 2, row["container_id"])


def fleet_vessel_view(
    view: View, vessel_id: str, mirror: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One vessel ashore: its row, link status, open alerts and reefers aboard.

    `mirror`: what waits to cross its link (`state.api.link`), when the server watches it.
    """
    vessels = list(_objects(view.rows(_VESSELS)))
    row = next((v for v in vessels if v["vessel_id"] == vessel_id), None)
    fleet_time = _fleet_time(vessels)
    needle = b'"vessel_id":' + orjson.dumps(vessel_id)
    reefers = [
        r
        for r in (orjson.loads(raw) for _, raw in view.rows(_STATES) if needle in raw)
        if r["vessel_id"] == vessel_id
    ]
    alerts = (a for a in _objects(view.rows(_OPEN_ALERTS)) if a["vessel_id"] == vessel_id)
    link = None if row is None else _link(row, fleet_time)
    return {
        "kind": "vessel",
        "fleet": True,
        # Not a 404: the page polls on, and shows the vessel once the fleet hears of it.
        "found": row is not None,
        "vessel_id": vessel_id,
        "severities": severities_json(),
        "vessel": row,
        "link": (link or {"behind_s": None, "stale": True})
        | {"stale_after_s": STALE_AFTER_S, "fleet_time": fleet_time, "mirror": mirror},
        "reefers": sorted(reefers, key=_reefer_order),
        "alerts": _sorted_alerts(alerts),
    }


def crew_view(view: View) -> dict[str, Any]:
    """A vessel data dir (the crew's view): its reefers and their open alerts."""
    reefers = list(_objects(view.rows(_VESSEL_STATE)))
    # A container-state row names its open alerts' kinds and ids, not their start.
    alerts = [
        {"alert_id": r["alert_ids"][kind], "kind": kind, "since": None}
        | {k: r[k] for k in ("vessel_id", "container_id", "lat", "lon")}
        for r in reefers
        for kind in r["open_alerts"]
    ]
    by_kind: dict[str, int] = {}
    for a in alerts:
        by_kind[a["kind"]] = by_kind.get(a["kind"], 0) + 1
    vessel_ids = sorted({r["vessel_id"] for r in reefers})
    return {
        "kind": "vessel",
        "fleet": False,
        "found": True,
        "vessel_id": vessel_ids[0] if len(vessel_ids) == 1 else None,
        "severities": severities_json(),
        "vessel": {"reefers_aboard": len(reefers), "open_alerts": by_kind},
        "link": None,
        "reefers": sorted(reefers, key=_reefer_order),
        "alerts": _sorted_alerts(alerts),
    }
