"""A small hand-made fleet through both fleet stages, against rows written out by hand.

Three vessels: A (IMO9778791) and B (IMO9531129) with reefers, C (IMO9811000) heard
from only through a dead letter. MSKU1234565 (frozen) moves from A to B; ONEU7060604
(chilled) stays on A, its 12:00 window revised (rev 1 moves it to another grid cell
and out of range); TRIU1234562 (warm, bananas at 13.3) is on B. An excursion on A
opens and closes, a power loss on B stays open, a silence on B is retracted. A late
reading (A), a late fix (B), and one dead letter whose bytes A and C both wrote.
Every record arrives twice, newer versions before older ones.
"""

from __future__ import annotations

from typing import Any

import orjson

from flows.fleet_core.local import LocalFleet, compacted

A, B, C = "IMO9778791", "IMO9531129", "IMO9811000"
C1, C2, C3 = "MSKU1234565", "ONEU7060604", "TRIU1234562"
DAY = "2026-11-26T"
X_ID, Y_ID, Z_ID = "a1" * 16, "b2" * 16, "c3" * 16


def _j(obj: dict[str, Any]) -> bytes:
    return orjson.dumps(obj)


def _fix(vessel: str, ts: str, lat: float, lon: float, sog: float, **extra: Any) -> bytes:
    return _j(
        {"type": "vessel.position", "vessel_id": vessel, "ts": DAY + ts}
        | {"lat": lat, "lon": lon, "sog_kn": sog}
        | extra
    )


def _state(cid: str, vessel: str, ts: str, setpoint: float, lat: float, lon: float) -> bytes:
    return _j(
        {"container_id": cid, "vessel_id": vessel, "ts": DAY + ts, "setpoint_c": setpoint}
        | {"temp_c": setpoint, "power_kw": 2.0, "lat": lat, "lon": lon, "sog_kn": 10.0}
        | {"open_alerts": [], "alert_ids": {}}
    )


def _window(
    cid: str, vessel: str, start: str, end: str, count: int, mean: float, setpoint: float
) -> dict[str, Any]:
    return {
        "type": "reefer.window",
        "container_id": cid,
        "vessel_id": vessel,
        "window_start": DAY + start,
        "window_end": DAY + end,
        "count": count,
        "temp_min": mean,
        "temp_max": mean,
        "temp_mean": mean,
        "setpoint_c": setpoint,
        "out_of_range": 0,
        "power_kw_mean": 2.0,
        "lat": None,
        "lon": None,
        "revision": 0,
    }


def _alert(aid: str, state: str, kind: str, cid: str, vessel: str, **times: Any) -> bytes:
    record: dict[str, Any] = {"type": "reefer.alert", "alert_id": aid, "state": state, "kind": kind}
    record |= {"container_id": cid, "vessel_id": vessel}
    record |= {"closed_at": None, "lat": None, "lon": None, "detail": {}}
    for name, value in times.items():
        record[name] = DAY + value if name.endswith("_at") and value else value
    return _j(record)


STATE_C1_A = _state(C1, A, "12:55:00Z", -18.0, 52.4, 3.3)
STATE_C1_B = _state(C1, B, "14:10:00Z", -18.0, -33.9, 18.4)
STATE_C2 = _state(C2, A, "13:05:00Z", 3.0, 52.5, 3.2)
STATE_C3 = _state(C3, B, "14:05:00Z", 13.3, -33.9, 18.4)
DEAD_LETTER = _j(
    {"type": "dead_letter", "error": "not valid JSON (empty record)"}
    | {"source": "reefer.telemetry[0]@5", "raw": "", "raw_encoding": "utf-8"}
)
LATE_READING = (
    b'{"type": "reefer.telemetry", "container_id": "ONEU7060604", "vessel_id": "IMO9778791",'
    b' "ts": "2026-11-26T12:50:00Z", "setpoint_c": 3.0, "temp_c": 3.1, "power_kw": 2.0,'
    b'"late_by_s":900}'
)
LATE_FIX = (
    b'{"type":"vessel.position","vessel_id":"IMO9531129","ts":"2026-11-26T12:20:00Z",'
    b'"lat":-33.8,"lon":18.3,"sog_kn":0.0,"late_by_s":600}'
)
AT_A = {"lat": 51.95, "lon": 4.05}
AT_B = {"lat": -33.9, "lon": 18.4}
X_OPEN = {"started_at": "13:00:00Z", "opened_at": "13:30:00Z", "lat": 52.5, "lon": 3.2}

# Newest versions first: an alert's closing before its opening, rev 1 before rev 0,
# the container's state on B before its state on A.
RECORDS: list[tuple[str, bytes]] = [
    (f"{A}.vessel.position", _fix(A, "13:00:00Z", 52.5, 3.2, 12.0)),
    (f"{A}.vessel.position", _fix(A, "12:00:00Z", 51.95, 4.05, 14.2, cog_deg=231.0)),
    (f"{B}.vessel.position", _fix(B, "12:30:00Z", -33.9, 18.4, 0.0, cog_deg=90.0)),
    (f"{B}.reefer.container-state", STATE_C1_B),
    (f"{A}.reefer.container-state", STATE_C1_A),
    (f"{A}.reefer.container-state", STATE_C2),
    (f"{B}.reefer.container-state", STATE_C3),
    (
        f"{A}.reefer.windows",
        _j(_window(C1, A, "12:00:00Z", "12:15:00Z", 3, -18.2, -18.0) | AT_A),
    ),
    (
        f"{A}.reefer.windows",
        _j(_window(C1, A, "12:15:00Z", "12:30:00Z", 2, -18.0, -18.0) | AT_A),
    ),
    (
        f"{B}.reefer.windows",
        _j(_window(C1, B, "14:00:00Z", "14:15:00Z", 2, -17.5, -18.0) | AT_B),
    ),
    (
        f"{A}.reefer.windows",
        _j(
            _window(C2, A, "12:00:00Z", "12:15:00Z", 4, 6.1, 3.0)
            | AT_A
            | {"out_of_range": 1, "revision": 1}
        ),
    ),
    (
        f"{A}.reefer.windows",
        _j(_window(C2, A, "12:00:00Z", "12:15:00Z", 3, 3.4, 3.0) | {"lat": 49.9, "lon": 4.05}),
    ),
    (
        f"{A}.reefer.windows",
        _j(
            _window(C2, A, "13:00:00Z", "13:15:00Z", 3, 5.5, 3.0)
            | {"lat": 52.5, "lon": 3.2, "out_of_range": 2}
        ),
    ),
    (
        f"{B}.reefer.windows",
        _j(_window(C3, B, "14:00:00Z", "14:15:00Z", 3, 13.5, 13.3) | AT_B),
    ),
    (
        f"{A}.reefer.alerts",
        _alert(X_ID, "closed", "temperature_excursion", C2, A, **X_OPEN, closed_at="13:45:00Z"),
    ),
    (f"{A}.reefer.alerts", _alert(X_ID, "open", "temperature_excursion", C2, A, **X_OPEN)),
    (
        f"{B}.reefer.alerts",
        _alert(Y_ID, "open", "power_loss", C1, B, started_at="14:00:00Z", opened_at="14:05:00Z")[
            :-1
        ]
        + b',"lat":-33.9,"lon":18.4,"detail":{"power_kw":0.0}}',
    ),
    (
        f"{B}.reefer.alerts",
        _alert(
            Z_ID,
            "retracted",
            "sensor_silent",
            C3,
            B,
            started_at="13:20:00Z",
            opened_at="13:50:00Z",
            closed_at="13:40:00Z",
            **AT_B,
        ),
    ),
    (
        f"{B}.reefer.alerts",
        _alert(Z_ID, "open", "sensor_silent", C3, B, started_at="13:20:00Z", opened_at="13:50:00Z"),
    ),
    (f"{A}.reefer.late", LATE_READING),
    (f"{B}.reefer.late", LATE_FIX),
    (f"{A}.reefer.dlq", DEAD_LETTER),
    (f"{C}.reefer.dlq", DEAD_LETTER),
]
BAD = [
    (f"{A}.reefer.windows", b'{"type":"reefer.window"'),
    (f"{A}.reefer.telemetry", b"{}"),
]


def _row(obj: dict[str, Any]) -> bytes:
    return orjson.dumps(obj)


EXPECTED: dict[str, dict[str, bytes]] = {
    "container-state": {C1: STATE_C1_B, C2: STATE_C2, C3: STATE_C3},
    "open-alerts": {
        Y_ID: b'{"alert_id":"' + Y_ID.encode() + b'","kind":"power_loss",'
        b'"vessel_id":"IMO9531129","container_id":"MSKU1234565",'
        b'"since":"2026-11-26T14:00:00Z","opened_at":"2026-11-26T14:05:00Z",'
        b'"lat":-33.9,"lon":18.4,"detail":{"power_kw":0.0}}'
    },
    "vessels": {
        A: b'{"vessel_id":"IMO9778791","last_heard":"2026-11-26T13:45:00Z",'
        b'"position":{"ts":"2026-11-26T13:00:00Z","lat":52.5,"lon":3.2,"sog_kn":12.0,'
        b'"cog_deg":null},"reefers_aboard":1,"open_alerts":{},'
        b'"out_of_range_containers":1,"dead_letters":1,"late":1}',
        B: b'{"vessel_id":"IMO9531129","last_heard":"2026-11-26T14:10:00Z",'
        b'"position":{"ts":"2026-11-26T12:30:00Z","lat":-33.9,"lon":18.4,"sog_kn":0.0,'
        b'"cog_deg":90.0},"reefers_aboard":2,"open_alerts":{"power_loss":1},'
        b'"out_of_range_containers":0,"dead_letters":0,"late":1}',
        C: b'{"vessel_id":"IMO9811000","last_heard":null,"position":null,'
        b'"reefers_aboard":0,"open_alerts":{},"out_of_range_containers":0,'
        b'"dead_letters":1,"late":0}',
    },
    "cargo": {
        "2026-11-26T12:00:00Z|frozen": b'{"hour":"2026-11-26T12:00:00Z","band":"frozen",'
        b'"containers":1,"windows":2,"readings":5,"windows_in_range":2,'
        b'"in_range_share":1.0,"excursion_min":0}',
        "2026-11-26T12:00:00Z|chilled": b'{"hour":"2026-11-26T12:00:00Z","band":"chilled",'
        b'"containers":1,"windows":1,"readings":4,"windows_in_range":0,'
        b'"in_range_share":0.0,"excursion_min":15}',
        "2026-11-26T13:00:00Z|chilled": b'{"hour":"2026-11-26T13:00:00Z","band":"chilled",'
        b'"containers":1,"windows":1,"readings":3,"windows_in_range":0,'
        b'"in_range_share":0.0,"excursion_min":15}',
        "2026-11-26T14:00:00Z|frozen": b'{"hour":"2026-11-26T14:00:00Z","band":"frozen",'
        b'"containers":1,"windows":1,"readings":2,"windows_in_range":1,'
        b'"in_range_share":1.0,"excursion_min":0}',
        "2026-11-26T14:00:00Z|warm": b'{"hour":"2026-11-26T14:00:00Z","band":"warm",'
        b'"containers":1,"windows":1,"readings":3,"windows_in_range":1,'
        b'"in_range_share":1.0,"excursion_min":0}',
    },
    "grid": {
        "2026-11-26T12:00:00Z|50|0": b'{"hour":"2026-11-26T12:00:00Z","lat_min":50,'
        b'"lat_max":55,"lon_min":0,"lon_max":5,"vessels":1,"containers":2,'
        b'"alerts":{},"open_alerts":{}}',
        "2026-11-26T13:00:00Z|50|0": b'{"hour":"2026-11-26T13:00:00Z","lat_min":50,'
        b'"lat_max":55,"lon_min":0,"lon_max":5,"vessels":1,"containers":1,'
        b'"alerts":{"temperature_excursion":1},"open_alerts":{}}',
        "2026-11-26T14:00:00Z|-35|15": b'{"hour":"2026-11-26T14:00:00Z","lat_min":-35,'
        b'"lat_max":-30,"lon_min":15,"lon_max":20,"vessels":1,"containers":2,'
        b'"alerts":{"power_loss":1},"open_alerts":{"power_loss":1}}',
    },
    "hourly": {
        "IMO9778791|2026-11-26T12:00:00Z": b'{"vessel_id":"IMO9778791",'
        b'"hour":"2026-11-26T12:00:00Z","containers":2,"windows":3,"readings":9,'
        b'"out_of_range":1,"mean_deviation_c":1.311}',
        "IMO9778791|2026-11-26T13:00:00Z": b'{"vessel_id":"IMO9778791",'
        b'"hour":"2026-11-26T13:00:00Z","containers":1,"windows":1,"readings":3,'
        b'"out_of_range":2,"mean_deviation_c":2.5}',
        "IMO9531129|2026-11-26T14:00:00Z": b'{"vessel_id":"IMO9531129",'
        b'"hour":"2026-11-26T14:00:00Z","containers":2,"windows":2,"readings":5,'
        b'"out_of_range":0,"mean_deviation_c":0.32}',
    },
    "container-windows": {
        f"{C1}|{DAY}12:00:00Z|{A}": _row(
            {"container_id": C1, "vessel_id": A, "window_start": DAY + "12:00:00Z"}
            | {"window_end": DAY + "12:15:00Z", "count": 3, "temp_min": -18.2}
            | {"temp_max": -18.2, "temp_mean": -18.2, "setpoint_c": -18.0}
            | {"out_of_range": 0, "revision": 0}
        ),
        f"{C1}|{DAY}12:15:00Z|{A}": _row(
            {"container_id": C1, "vessel_id": A, "window_start": DAY + "12:15:00Z"}
            | {"window_end": DAY + "12:30:00Z", "count": 2, "temp_min": -18.0}
            | {"temp_max": -18.0, "temp_mean": -18.0, "setpoint_c": -18.0}
            | {"out_of_range": 0, "revision": 0}
        ),
        f"{C1}|{DAY}14:00:00Z|{B}": _row(
            {"container_id": C1, "vessel_id": B, "window_start": DAY + "14:00:00Z"}
            | {"window_end": DAY + "14:15:00Z", "count": 2, "temp_min": -17.5}
            | {"temp_max": -17.5, "temp_mean": -17.5, "setpoint_c": -18.0}
            | {"out_of_range": 0, "revision": 0}
        ),
        f"{C2}|{DAY}12:00:00Z|{A}": _row(  # revision 1 replaces revision 0
            {"container_id": C2, "vessel_id": A, "window_start": DAY + "12:00:00Z"}
            | {"window_end": DAY + "12:15:00Z", "count": 4, "temp_min": 6.1}
            | {"temp_max": 6.1, "temp_mean": 6.1, "setpoint_c": 3.0}
            | {"out_of_range": 1, "revision": 1}
        ),
        f"{C2}|{DAY}13:00:00Z|{A}": _row(
            {"container_id": C2, "vessel_id": A, "window_start": DAY + "13:00:00Z"}
            | {"window_end": DAY + "13:15:00Z", "count": 3, "temp_min": 5.5}
            | {"temp_max": 5.5, "temp_mean": 5.5, "setpoint_c": 3.0}
            | {"out_of_range": 2, "revision": 0}
        ),
        f"{C3}|{DAY}14:00:00Z|{B}": _row(
            {"container_id": C3, "vessel_id": B, "window_start": DAY + "14:00:00Z"}
            | {"window_end": DAY + "14:15:00Z", "count": 3, "temp_min": 13.5}
            | {"temp_max": 13.5, "temp_mean": 13.5, "setpoint_c": 13.3}
            | {"out_of_range": 0, "revision": 0}
        ),
    },
    "container-alerts": {  # the silence on B was retracted: no row
        f"{C2}|{X_ID}": _row(
            {"alert_id": X_ID, "kind": "temperature_excursion", "state": "closed"}
            | {"vessel_id": A, "container_id": C2, "since": DAY + "13:00:00Z"}
            | {"closed_at": DAY + "13:45:00Z", "lat": 52.5, "lon": 3.2}
        ),
        f"{C1}|{Y_ID}": _row(
            {"alert_id": Y_ID, "kind": "power_loss", "state": "open", "vessel_id": B}
            | {"container_id": C1, "since": DAY + "14:00:00Z", "closed_at": None}
            | {"lat": -33.9, "lon": 18.4}
        ),
    },
}


def _run(records: list[tuple[str, bytes]]) -> LocalFleet:
    fleet = LocalFleet.of()
    for topic, raw in records:
        fleet.push(topic, raw)
    return fleet


def test_every_table_row_as_computed_by_hand():
    records = [r for pair in zip(RECORDS, RECORDS, strict=True) for r in pair] + BAD
    fleet = _run(records)
    tables = fleet.tables()
    assert sorted(tables) == sorted(EXPECTED)
    for name, rows in EXPECTED.items():
        assert tables[name] == rows, name


def test_undecodable_records_are_reported_and_change_nothing():
    fleet = _run(RECORDS + BAD)
    assert [(u.topic, u.raw) for u in fleet.undecodable] == BAD
    assert fleet.undecodable[0].error.startswith("windows: ")
    assert "not a topic the fleet reads" in fleet.undecodable[1].error
    assert fleet.tables() == EXPECTED


def test_the_change_stream_compacts_to_the_tables():
    fleet = _run(RECORDS + RECORDS[::-1])
    assert compacted(fleet.changes) == EXPECTED


def test_a_replaced_version_leaves_a_tombstone_only_where_it_showed():
    # Closed, then open: the open version never becomes the latest, never shows.
    close_first = _run([RECORDS[14], RECORDS[15]])
    assert [c for c in close_first.changes if c[0] == "open-alerts"] == []
    # Open, then closed: the row shows, then a tombstone removes it.
    open_first = _run([RECORDS[15], RECORDS[14]])
    rows = [c for c in open_first.changes if c[0] == "open-alerts"]
    assert [(t, k, v is None) for t, k, v in rows] == [
        ("open-alerts", X_ID, False),
        ("open-alerts", X_ID, True),
    ]
    assert "open-alerts" not in open_first.tables()
    # The revised window: rev 0 first shows a row in its own cell, which rev 1 deletes.
    revised = _run([RECORDS[11], RECORDS[10]])
    cell = "2026-11-26T12:00:00Z|45|0"
    assert [(k, v is None) for t, k, v in revised.changes if t == "grid"] == [
        (cell, False),
        (cell, True),
        ("2026-11-26T12:00:00Z|50|0", False),
    ]


def test_a_container_moved_within_a_window_counts_both_vessels_windows():
    """Each vessel flow closes its own 12:00 window of MSKU1234565: two entities."""
    on_a = _window(C1, A, "12:00:00Z", "12:15:00Z", 2, -18.0, -18.0)
    on_b = _window(C1, B, "12:00:00Z", "12:15:00Z", 1, -13.0, -18.0) | {"out_of_range": 1}
    records = [(f"{A}.reefer.windows", _j(on_a)), (f"{B}.reefer.windows", _j(on_b))]
    tables = _run(records + records[::-1]).tables()
    assert tables["cargo"] == {
        "2026-11-26T12:00:00Z|frozen": b'{"hour":"2026-11-26T12:00:00Z","band":"frozen",'
        b'"containers":1,"windows":2,"readings":3,"windows_in_range":1,'
        b'"in_range_share":0.5,"excursion_min":15}'
    }
    assert tables["hourly"] == {
        "IMO9778791|2026-11-26T12:00:00Z": b'{"vessel_id":"IMO9778791",'
        b'"hour":"2026-11-26T12:00:00Z","containers":1,"windows":1,"readings":2,'
        b'"out_of_range":0,"mean_deviation_c":0.0}',
        "IMO9531129|2026-11-26T12:00:00Z": b'{"vessel_id":"IMO9531129",'
        b'"hour":"2026-11-26T12:00:00Z","containers":1,"windows":1,"readings":1,'
        b'"out_of_range":1,"mean_deviation_c":5.0}',
    }
