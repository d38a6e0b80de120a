"""`python -m state.api` over fleet data dirs written by the real fleet flow.

Two module-scoped stores: the hand-made fleet of `tests/unit/test_fleet_scenario.py`
(every row known, byte for byte), and a random fleet computed by 2 processes of 2
workers each, with the API started before the flow (the shards appear while it
serves) and read while the flow writes.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from flows.fleet_core.names import TABLE_NAMES, TABLES, shard_of
from state.api.names import ALERTS_ROUTE, TABLES_ROUTE, VESSELS_ROUTE
from state.fleet_layout import fleet_dir
from state.fleet_reader import FleetReader
from tests.integration.api_client import Answer, ApiServer, start_api
from tests.integration.kafka_io import finish
from tests.integration.test_fleet_processes import _files, _start
from tests.support.fleet import fleet_records, shuffled
from tests.unit.test_fleet_scenario import BAD, EXPECTED, RECORDS, Y_ID, A, B, C

pytestmark = pytest.mark.integration


@dataclass
class Fleet:
    api: ApiServer
    data: Path
    seen: list[Answer] = field(default_factory=list)


@pytest.fixture(scope="module")
def hand(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    base = tmp_path_factory.mktemp("api-hand")
    inputs = _files(RECORDS + RECORDS + BAD, base / "in")
    [proc] = _start(base / "data", inputs, workers=2)
    finish(proc)
    api = start_api(base / "data")
    try:
        yield Fleet(api, base / "data")
    finally:
        api.stop()


@pytest.fixture(scope="module")
def sharded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    base = tmp_path_factory.mktemp("api-sharded")
    records = fleet_records(3, containers=1000)
    inputs = _files(shuffled(records, random.Random(3)), base / "in")
    data = base / "data"
    fleet_dir(data).mkdir(parents=True)  # no shard yet: they appear while it serves
    api = start_api(data)
    fleet = Fleet(api, data)
    procs = _start(data, inputs, workers=2, processes=2)
    try:
        while any(p.poll() is None for p in procs):
            for path in (TABLES_ROUTE, "/api/tables/vessels/rows?limit=3", ALERTS_ROUTE):
                answer = api.get(path)
                assert answer.status == 200, answer
                fleet.seen.append(answer)
        for p in procs:
            finish(p)
        # Answers may lag the writers by up to 100 ms: wait for the last write.
        assert api.get(f"{TABLES_ROUTE}?min_position={_position(data)}").status == 200
        yield fleet
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        api.stop()


def _dump(data: Path) -> dict[str, list[tuple[str, bytes]]]:
    with FleetReader(data) as reader:
        return {table: list(reader.rows(table)) for table in TABLE_NAMES}


def _position(data: Path) -> int:
    with FleetReader(data) as reader:
        return reader.position()


def _in_key_order(rows: dict[str, bytes]) -> list[tuple[str, bytes]]:
    return sorted(rows.items(), key=lambda kv: kv[0].encode())


def test_tables_of_the_hand_made_fleet(hand: Fleet) -> None:
    answer = hand.api.get(TABLES_ROUTE)
    position = _position(hand.data)
    assert position > 0 and answer.position == position
    assert answer.json() == {
        "tables": [
            {"name": t.name, "topic": t.topic, "store": "fleet", "key": t.key}
            | {"rows": len(EXPECTED.get(t.name, {})), "position": position}
            for t in TABLES
        ]
    }


def test_every_row_of_the_hand_made_fleet_byte_for_byte(hand: Fleet) -> None:
    for table, rows in EXPECTED.items():
        for key, row in rows.items():
            for name in (table, f"fleet.{table}"):
                answer = hand.api.get(f"/api/tables/{name}/rows/{key.replace('|', '%7C')}")
                assert (answer.status, answer.body) == (200, row), (table, key)
        assert hand.api.get(f"/api/tables/{table}/rows/nothing").status == 404


def test_pages_of_the_hand_made_fleet_byte_for_byte(hand: Fleet) -> None:
    cargo = _in_key_order(EXPECTED["cargo"])
    first = hand.api.get("/api/tables/cargo/rows?limit=2")
    assert first.body == (
        b'{"table":"cargo","rows":['
        + b",".join(b'{"key":' + orjson.dumps(k) + b',"value":' + v + b"}" for k, v in cargo[:2])
        + b'],"next":'
        + orjson.dumps(cargo[1][0])
        + b"}"
    )
    after = cargo[1][0].replace("|", "%7C")
    rest = hand.api.get(f"/api/tables/cargo/rows?limit=3&after={after}").json()
    assert [r["key"] for r in rest["rows"]] == [k for k, _ in cargo[2:]]
    assert rest["next"] is None
    chilled = hand.api.get("/api/tables/cargo/rows?prefix=2026-11-26T12").json()
    assert [r["key"] for r in chilled["rows"]] == [k for k, _ in cargo if "T12" in k]


def test_vessels_of_the_hand_made_fleet(hand: Fleet) -> None:
    vessels = _in_key_order(EXPECTED["vessels"])
    answer = hand.api.get(VESSELS_ROUTE)
    assert answer.body == b'{"vessels":[' + b",".join(v for _, v in vessels) + b'],"next":null}'
    paged = hand.api.get(f"{VESSELS_ROUTE}?limit=1&after={vessels[0][0]}").json()
    assert (paged["vessels"], paged["next"]) == ([orjson.loads(vessels[1][1])], vessels[1][0])
    for vessel in (A, B, C):
        assert hand.api.get(f"{VESSELS_ROUTE}/{vessel}").body == EXPECTED["vessels"][vessel]
    missing = hand.api.get(f"{VESSELS_ROUTE}/IMO0000000")
    assert missing.status == 404
    assert missing.json() == {"error": "no vessel 'IMO0000000' in the fleet tables"}


def test_open_alerts_of_the_hand_made_fleet(hand: Fleet) -> None:
    power_loss = EXPECTED["open-alerts"][Y_ID]
    everything = hand.api.get(f"{ALERTS_ROUTE}?state=open")
    assert everything.body == b'{"alerts":[' + power_loss + b'],"next":null}'
    assert hand.api.get(f"{ALERTS_ROUTE}?vessel={B}&kind=power_loss").body == everything.body
    for query in (f"vessel={A}", "kind=sensor_silent", f"after={Y_ID}"):
        assert hand.api.get(f"{ALERTS_ROUTE}?{query}").json() == {"alerts": [], "next": None}


def test_reads_while_the_sharded_fleet_is_written_never_go_back(sharded: Fleet) -> None:
    positions = [answer.position for answer in sharded.seen]
    assert positions == sorted(positions)
    # Started before any shard existed, it found all eight while serving.
    assert positions[0] < positions[-1]
    assert positions[-1] <= sharded.api.get(TABLES_ROUTE).position == _position(sharded.data)
    print(f"\n{len(sharded.seen)} answers while 2 x 2 workers wrote, positions {positions[0]}..")


@pytest.mark.parametrize("limit", [7, 1000])
def test_sharded_pages_return_every_row_exactly_once(sharded: Fleet, limit: int) -> None:
    dump = _dump(sharded.data)
    counts = {t["name"]: t["rows"] for t in sharded.api.get(TABLES_ROUTE).json()["tables"]}
    assert {shard_of(k) for k, _ in dump["container-state"]} == set(range(8))
    for table in TABLE_NAMES:
        keys: list[str] = []
        after = ""
        while True:
            page = sharded.api.get(f"/api/tables/{table}/rows?limit={limit}{after}").json()
            keys += [row["key"] for row in page["rows"]]
            if page["next"] is None:
                break
            after = "&after=" + page["next"].replace("|", "%7C")
        assert keys == [k for k, _ in dump[table]], table  # the same rows, in key order
        assert len(set(keys)) == len(keys) == counts[table], table
    assert counts["container-state"] == 1000


def test_sharded_gets_route_each_key_to_its_shard(sharded: Fleet) -> None:
    rows = _dump(sharded.data)["container-state"]
    for key, value in random.Random(1).sample(rows, 40):
        assert sharded.api.get(f"/api/tables/container-state/rows/{key}").body == value
    alerts = sharded.api.get(f"{ALERTS_ROUTE}?limit=1000").json()["alerts"]
    assert [a["alert_id"] for a in alerts] == [k for k, _ in _dump(sharded.data)["open-alerts"]]
