"""The query API's stores on real RocksDB, in-process: names, positions, catch-up, reopening."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flows.fleet_core.names import shard_of
from state.api.pages import ApiError
from state.api.stores import Stores
from state.fleet_layout import fleet_dir, shard_path
from state.fleet_store import ShardWriter
from state.store import TableWriter
from state.table import StoreError, table_path

ROW = b'{"container_id":"MSKU1234565"}'


@pytest.fixture
def stores_of():
    opened: list[Stores] = []

    def open_(data: Path) -> Stores:
        stores = Stores(data)
        opened.append(stores)
        return stores

    yield open_
    for stores in opened:
        stores.close()


def test_a_dir_without_tables_says_run_a_flow(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"no tables in .*run a flow first"):
        Stores(tmp_path)


def test_a_vessel_dir_serves_its_table_at_its_position(tmp_path: Path, stores_of) -> None:
    with TableWriter(table_path(tmp_path)) as writer:
        writer.apply(42, [("MSKU1234565", ROW)])
        stores = stores_of(tmp_path)
        assert stores.kinds == ("vessel",)
        ref = stores.resolve("container-state")
        assert stores.resolve("reefer.container-state") == ref
        position, got, done = stores.read(lambda view: view.get(ref, "MSKU1234565"))
        assert (position, got, done) == (42, ROW, True)
        writer.apply(43, [("MSKU1234565", b"{}")])
        # Wanting 43 catches up now, whatever the last catch-up's age.
        assert stores.read(lambda view: view.get(ref, "MSKU1234565"), need=43) == (43, b"{}", True)
        assert stores.read(lambda view: 1, need=44) == (43, None, False)
    with pytest.raises(ApiError) as unknown:
        stores.resolve("vessels")
    assert (unknown.value.status, unknown.value.message) == (
        404,
        "no table 'vessels' here; the tables are container-state",
    )


def test_a_dir_with_both_stores_names_container_state_by_topic(tmp_path: Path, stores_of) -> None:
    with TableWriter(table_path(tmp_path)) as writer:
        writer.apply(5, [("MSKU1234565", ROW)])
    with ShardWriter(shard_path(tmp_path, shard_of("IMO9778791"))) as shard:
        shard.apply([("vessels", "IMO9778791", b'{"vessel_id":"IMO9778791"}')])
    stores = stores_of(tmp_path)
    assert stores.kinds == ("vessel", "fleet")
    with pytest.raises(ApiError, match=r"reefer\.container-state or fleet\.container-state"):
        stores.resolve("container-state")
    assert stores.resolve("fleet.container-state").store == "fleet"
    assert stores.resolve("vessels").store == "fleet"
    assert stores.position() == 5 + 1  # the sum over both stores
    ready, lines = stores.status()
    assert ready and [(x["topic"], x["position"]) for x in lines][:2] == [
        ("reefer.container-state", 5),
        ("fleet.container-state", 1),
    ]


def test_fleet_positions_grow_and_shards_created_later_are_found(tmp_path: Path, stores_of) -> None:
    fleet_dir(tmp_path).mkdir(parents=True)
    stores = stores_of(tmp_path)
    vessels = stores.resolve("vessels")
    assert stores.read(lambda view: view.get(vessels, "a")) == (0, None, True)
    with ShardWriter(shard_path(tmp_path, shard_of("a"))) as writer:
        writer.apply([("vessels", "a", b"1")])
        writer.apply([("vessels", "a", b"2")])
        assert stores.read(lambda view: view.get(vessels, "a"), need=2) == (2, b"2", True)


def test_a_replaced_table_is_reopened_and_a_deleted_one_answers_503(
    tmp_path: Path, stores_of
) -> None:
    with TableWriter(table_path(tmp_path)) as writer:
        writer.apply(7, [("MSKU1234565", ROW)])
    stores = stores_of(tmp_path)
    ref = stores.resolve("container-state")
    shutil.rmtree(table_path(tmp_path))
    with TableWriter(table_path(tmp_path)) as writer:  # a restore, say
        writer.apply(9, [("TGHU0000001", b"{}")])
    assert stores.read(lambda view: view.get(ref, "TGHU0000001"), need=9) == (9, b"{}", True)

    shutil.rmtree(table_path(tmp_path))
    # Below the position asked for, it may come back (a restore): the caller waits.
    assert stores.read(lambda view: 1, need=10) == (9, None, False)
    with pytest.raises(ApiError) as gone:
        stores.read(lambda view: view.get(ref, "TGHU0000001"))
    assert gone.value.status == 503
    assert gone.value.headers == {"Retry-After": "1"}
    assert "the vessel store cannot be read now: no container-state table" in gone.value.message
    assert stores.position() == 9  # the last position it read stays
    ready, lines = stores.status()
    assert not ready and lines[0]["error"].startswith("no container-state table")
