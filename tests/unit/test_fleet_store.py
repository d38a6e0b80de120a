"""The fleet store on a real RocksDB: shard writer with its undo log, reader, Bytewax sink."""

from __future__ import annotations

from pathlib import Path

import pytest
from rocksdict import Options, Rdict

from flows.fleet_core.names import shard_of
from flows.fleet_core.tables import Change
from state.fleet_layout import shard_path
from state.fleet_reader import FleetReader
from state.fleet_sink import FleetTableSink
from state.fleet_store import ShardWriter
from state.table import StoreError

A1 = b'{"vessel_id":"a","v":1}'
A2 = b'{"vessel_id":"a","v":2}'
A3 = b'{"vessel_id":"a","v":3}'
B1 = b'{"vessel_id":"b","v":1}'
B2 = b'{"vessel_id":"b","v":2}'


def vessels(data_dir: Path) -> dict[str, bytes]:
    with FleetReader(data_dir) as reader:
        return dict(reader.rows("vessels"))


def history(path: Path) -> None:
    """a=A1, snapshot 0; a=A2 and b=B1, snapshot 1; a=A3 and b deleted; then a crash."""
    with ShardWriter(path) as writer:
        writer.apply([("vessels", "a", A1)])
        assert writer.snapshot() == 0
        writer.apply([("vessels", "a", A2), ("vessels", "b", B1)])
        assert writer.snapshot() == 1
        writer.apply([("vessels", "a", A3), ("vessels", "b", None)])
        # Leaving the block without a snapshot is the crash: the writes stay.


def test_writes_after_the_last_snapshot_stay_until_a_rollback(tmp_path: Path) -> None:
    history(shard_path(tmp_path, 0))
    assert vessels(tmp_path) == {"a": A3}


def test_rollback_to_the_older_snapshot_restores_it(tmp_path: Path) -> None:
    path = shard_path(tmp_path, 0)
    history(path)
    with ShardWriter(path) as writer:
        assert writer.rollback(0) == [("vessels", "a", A1), ("vessels", "b", None)]
        assert writer.generation() == 1
    assert vessels(tmp_path) == {"a": A1}


def test_rollback_to_the_last_snapshot_restores_it(tmp_path: Path) -> None:
    path = shard_path(tmp_path, 0)
    history(path)
    with ShardWriter(path) as writer:
        assert writer.rollback(1) == [("vessels", "a", A2), ("vessels", "b", B1)]
    assert vessels(tmp_path) == {"a": A2, "b": B1}


def test_a_resumed_run_continues_from_the_rolled_back_generation(tmp_path: Path) -> None:
    path = shard_path(tmp_path, 0)
    history(path)
    with ShardWriter(path) as writer:
        writer.rollback(0)
        writer.apply([("vessels", "b", B2)])
        assert writer.snapshot() == 1
        writer.apply([("vessels", "a", A3)])
        # The undo log of the crashed run's generation 1 is gone: only this run's counts.
        assert writer.rollback(1) == [("vessels", "a", A1)]
    assert vessels(tmp_path) == {"a": A1, "b": B2}


def test_rollback_keeps_the_oldest_value_across_reopens_in_one_generation(
    tmp_path: Path,
) -> None:
    path = shard_path(tmp_path, 0)
    with ShardWriter(path) as writer:
        writer.apply([("vessels", "a", A1)])
        assert writer.snapshot() == 0
        writer.apply([("vessels", "a", A2)])
    # A restart that does not roll back keeps writing generation 1: the undo log
    # must still hold A1, not the A2 the reopened writer finds.
    with ShardWriter(path) as writer:
        assert writer.generation() == 1
        writer.apply([("vessels", "a", A3), ("vessels", "b", B1)])
    with ShardWriter(path) as writer:
        assert writer.rollback(0) == [("vessels", "a", A1), ("vessels", "b", None)]
    assert vessels(tmp_path) == {"a": A1}


def test_the_last_change_of_a_key_in_a_batch_wins(tmp_path: Path) -> None:
    path = shard_path(tmp_path, 0)
    with ShardWriter(path) as writer:
        writer.apply([("vessels", "b", B1)])
        assert writer.snapshot() == 0
        writer.apply(
            [
                ("vessels", "a", A1),
                ("vessels", "a", A2),
                ("vessels", "b", None),
                ("vessels", "b", B2),
                ("vessels", "a", None),
            ]
        )
        assert vessels(tmp_path) == {"b": B2}
        assert writer.rollback(0) == [("vessels", "a", None), ("vessels", "b", B1)]
    assert vessels(tmp_path) == {"b": B1}


def test_rollback_restores_the_value_before_the_first_of_several_batches(tmp_path: Path) -> None:
    path = shard_path(tmp_path, 0)
    with ShardWriter(path) as writer:
        writer.apply([("vessels", "a", A1)])
        assert writer.snapshot() == 0
        writer.apply([("vessels", "a", A2)])
        writer.apply([("vessels", "a", A3), ("vessels", "b", B1)])
        writer.apply([("vessels", "b", B2)])
        assert writer.rollback(0) == [("vessels", "a", A1), ("vessels", "b", None)]
    assert vessels(tmp_path) == {"a": A1}


def test_tables_with_the_same_row_key_are_apart(tmp_path: Path) -> None:
    path = shard_path(tmp_path, 0)
    with ShardWriter(path) as writer:
        writer.apply([("vessels", "a", A1), ("hourly", "a", B1)])
        assert writer.snapshot() == 0
        writer.apply([("hourly", "a", None)])
        assert vessels(tmp_path) == {"a": A1}
        assert writer.rollback(0) == [("hourly", "a", B1)]
    with FleetReader(tmp_path) as reader:
        assert list(reader.rows("hourly")) == [("a", B1)]


def test_the_undo_log_keeps_16_generations_then_rollback_says_start_afresh(
    tmp_path: Path,
) -> None:
    path = shard_path(tmp_path, 0)
    with ShardWriter(path) as writer:
        for generation in range(20):
            writer.apply([("vessels", "a", b'{"v":%d}' % generation)])
            assert writer.snapshot() == generation
        writer.apply([("vessels", "a", b'{"v":20}')])
        # Snapshot 19 dropped generations 0..3: snapshot 2 is out of reach.
        with pytest.raises(StoreError) as error:
            writer.rollback(2)
        message = str(error.value)
        assert "older than the undo log" in message
        assert "delete the recovery directory" in message
        assert vessels(tmp_path) == {"a": b'{"v":20}'}
        assert writer.rollback(3) == [("vessels", "a", b'{"v":3}')]
    assert vessels(tmp_path) == {"a": b'{"v":3}'}
    # The limit survives a reopen.
    with ShardWriter(path) as writer, pytest.raises(StoreError, match="older than the undo log"):
        writer.rollback(2)


def test_rollback_to_a_snapshot_the_shard_never_took_is_refused(tmp_path: Path) -> None:
    path = shard_path(tmp_path, 0)
    with ShardWriter(path) as writer:
        writer.apply([("vessels", "a", A1)])
        assert writer.snapshot() == 0
        with pytest.raises(StoreError, match="deleted or replaced since that snapshot"):
            writer.rollback(1)
    assert vessels(tmp_path) == {"a": A1}


def test_reset_empties_the_shard_and_its_history(tmp_path: Path) -> None:
    path = shard_path(tmp_path, 0)
    history(path)
    with ShardWriter(path) as writer:
        writer.reset()
        assert writer.generation() == 0
        assert vessels(tmp_path) == {}
        with pytest.raises(StoreError, match="deleted or replaced"):
            writer.rollback(0)
        writer.apply([("vessels", "b", B1)])
        assert writer.snapshot() == 0
    assert vessels(tmp_path) == {"b": B1}


def test_a_second_writer_is_told_the_shard_is_open_elsewhere(tmp_path: Path) -> None:
    path = shard_path(tmp_path, 3)
    with ShardWriter(path), pytest.raises(StoreError) as error:
        ShardWriter(path)
    assert "is open in another process" in str(error.value)
    assert "shard-03" in str(error.value)


# -- reader ------------------------------------------------------------------------

# Row keys and their shards (shard_of): a 3, b 1, c 7, d 4, e 2, A-1 0, A-2 2, A-3 4.
CARGO = {key: b'{"k":"%s"}' % key.encode() for key in ("c", "A-2", "e", "a", "A-1", "d", "b")}


def write_routed(data_dir: Path, changes: list[Change]) -> None:
    """Write each change to the shard its key routes to, as the sink would, and snapshot."""
    for shard in sorted({shard_of(key) for _, key, _ in changes}):
        with ShardWriter(shard_path(data_dir, shard)) as writer:
            writer.apply([c for c in changes if shard_of(c[1]) == shard])
            writer.snapshot()


def test_reader_merges_the_shards_in_key_order(tmp_path: Path) -> None:
    write_routed(tmp_path, [("cargo", key, row) for key, row in CARGO.items()])
    write_routed(tmp_path, [("vessels", "a", A1)])
    with FleetReader(tmp_path) as reader:
        assert [key for key, _ in reader.rows("cargo")] == ["A-1", "A-2", "a", "b", "c", "d", "e"]
        assert list(reader.rows("cargo", limit=2)) == [
            ("A-1", b'{"k":"A-1"}'),
            ("A-2", b'{"k":"A-2"}'),
        ]
        assert [k for k, _ in reader.rows("cargo", prefix="A-")] == ["A-1", "A-2"]
        assert [k for k, _ in reader.rows("cargo", after="A-2", limit=3)] == ["a", "b", "c"]
        assert [k for k, _ in reader.rows("cargo", prefix="A-", after="A-1")] == ["A-2"]
        assert list(reader.rows("cargo", limit=0)) == []
        assert reader.get("cargo", "d") == b'{"k":"d"}'
        assert reader.get("cargo", "z") is None
        assert reader.get("vessels", "d") is None
        assert reader.tables() == {
            "container-state": 0,
            "vessels": 1,
            "open-alerts": 0,
            "cargo": 7,
            "grid": 0,
            "hourly": 0,
            "container-windows": 0,
            "container-alerts": 0,
        }


def test_reader_sees_new_writes_and_new_shards_after_refresh(tmp_path: Path) -> None:
    # Shard 3 holds "a", shard 1 "b".
    with ShardWriter(shard_path(tmp_path, 3)) as writer:
        writer.apply([("vessels", "a", A1)])
        with FleetReader(tmp_path) as reader:
            assert reader.get("vessels", "a") == A1
            writer.apply([("vessels", "a", A2)])
            assert reader.get("vessels", "a") == A1
            reader.refresh()
            assert reader.get("vessels", "a") == A2
            with ShardWriter(shard_path(tmp_path, 1)) as other:
                other.apply([("vessels", "b", B1)])
                assert reader.get("vessels", "b") is None
                reader.refresh()
                assert list(reader.rows("vessels")) == [("a", A2), ("b", B1)]


def test_reader_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="run the fleet flow first"):
        FleetReader(tmp_path)
    shard_path(tmp_path, 0).parent.mkdir(parents=True)
    with FleetReader(tmp_path) as reader:
        assert reader.tables()["vessels"] == 0
        with pytest.raises(StoreError) as error:
            reader.get("ships", "a")
        assert str(error.value) == (
            "no fleet table 'ships'; the fleet tables are "
            "container-state, vessels, open-alerts, cargo, grid, hourly, "
            "container-windows, container-alerts"
        )
    with pytest.raises(StoreError, match="closed"):
        reader.tables()


# -- sink --------------------------------------------------------------------------


class ListChangelog:
    """Records what a partition sends to its changelog."""

    def __init__(self, events: list[tuple[object, ...]]) -> None:
        self.events = events

    def publish(self, table: str, key: str, value: bytes | None) -> None:
        self.events.append(("publish", table, key, value))

    def flush(self) -> None:
        self.events.append(("flush",))

    def close(self) -> None:
        self.events.append(("close",))


def test_sink_partitions_write_their_shards_and_roll_back_on_resume(tmp_path: Path) -> None:
    events: list[tuple[object, ...]] = []
    sink = FleetTableSink(tmp_path, lambda: ListChangelog(events))
    parts = sink.list_parts()
    assert parts == [f"shard-0{n}" for n in range(8)]
    # What Bytewax does with part_fn: wrapped indexing into the sorted partitions.
    assert parts[sink.part_fn("a") % len(parts)] == "shard-03"
    assert parts[sink.part_fn("b") % len(parts)] == "shard-01"

    shard3 = sink.build_part("fleet.store", "shard-03", None)
    shard1 = sink.build_part("fleet.store", "shard-01", None)
    shard3.write_batch([("vessels", "a", A1)])
    assert (shard3.snapshot(), shard1.snapshot()) == (0, 0)
    shard3.write_batch([("vessels", "a", A2)])
    shard1.write_batch([("vessels", "b", B1)])
    assert (shard3.snapshot(), shard1.snapshot()) == (1, 1)
    shard1.write_batch([("vessels", "b", None)])
    shard3.close()
    shard1.close()
    assert events == [
        ("publish", "vessels", "a", A1),
        ("flush",),
        ("flush",),
        ("publish", "vessels", "a", A2),
        ("publish", "vessels", "b", B1),
        ("flush",),
        ("flush",),
        ("publish", "vessels", "b", None),
        ("close",),
        ("close",),
    ]

    # Bytewax committed snapshot 0 only: both shards go back to it, and the
    # changelog gets the restored rows before the replay starts.
    events.clear()
    shard3 = sink.build_part("fleet.store", "shard-03", 0)
    shard1 = sink.build_part("fleet.store", "shard-01", 0)
    assert events == [
        ("publish", "vessels", "a", A1),
        ("flush",),
        ("publish", "vessels", "b", None),
        ("flush",),
    ]
    assert vessels(tmp_path) == {"a": A1}
    assert shard3.snapshot() == 1
    shard3.close()
    shard1.close()

    # A fresh run empties the shards it builds.
    events.clear()
    sink.build_part("fleet.store", "shard-03", None).close()
    assert events == [("close",)]
    assert vessels(tmp_path) == {}


def test_sink_without_a_changelog_keeps_the_store_only(tmp_path: Path) -> None:
    sink = FleetTableSink(tmp_path, None)
    part = sink.build_part("fleet.store", "shard-01", None)
    part.write_batch([("open-alerts", "b", B1)])
    assert part.snapshot() == 0
    part.close()
    with FleetReader(tmp_path) as reader:
        assert reader.get("open-alerts", "b") == B1


# -- position: a change counter per shard, summed by the reader ----------------------


def test_shard_position_counts_batches_rollbacks_and_resets_and_never_goes_back(
    tmp_path: Path,
) -> None:
    path = shard_path(tmp_path, 0)
    with ShardWriter(path) as writer:
        assert writer.position() == 0
        writer.apply([("vessels", "a", A1), ("vessels", "b", B1)])
        assert writer.position() == 1
        writer.apply([])  # nothing written: nothing counted
        assert writer.snapshot() == 0
        assert writer.position() == 1  # a snapshot changes no row
        writer.apply([("vessels", "a", A2)])
        writer.apply([("vessels", "b", None)])
        assert writer.position() == 3
    with ShardWriter(path) as writer:  # a restart reads it back
        assert writer.position() == 3
        writer.rollback(0)
        assert writer.position() == 4
        writer.reset()  # a fresh run empties the shard, not its counter
        assert writer.position() == 5
    with ShardWriter(path) as writer:
        assert writer.position() == 5


def test_reader_position_is_the_sum_over_the_shards_it_has_found(tmp_path: Path) -> None:
    shard_path(tmp_path, 0).parent.mkdir(parents=True)
    x, y = "a", "b"  # shards 3 and 1
    with FleetReader(tmp_path) as reader:
        assert reader.position() == 0  # no shard yet
        with (
            ShardWriter(shard_path(tmp_path, shard_of(x))) as one,
            ShardWriter(shard_path(tmp_path, shard_of(y))) as other,
        ):
            one.apply([("vessels", x, A1)])
            one.apply([("vessels", x, A2)])
            assert reader.position() == 0  # not caught up yet
            reader.refresh()
            assert reader.position() == 2
            assert reader.get("vessels", x) == A2  # rows and position move together
            other.apply([("vessels", y, B1)])
            reader.refresh()
            assert reader.position() == 3


def test_reader_waits_for_a_shard_whose_writer_is_still_creating_it(tmp_path: Path) -> None:
    # A shard at the instant its writer created the database, not yet its column families.
    path = shard_path(tmp_path, shard_of("a"))
    path.mkdir(parents=True)
    opts = Options(raw_mode=True)
    opts.create_if_missing(True)
    Rdict(str(path), opts).close()
    with FleetReader(tmp_path) as reader:
        assert (reader.get("vessels", "a"), reader.position()) == (None, 0)
        with ShardWriter(path) as writer:
            writer.apply([("vessels", "a", A1)])
            reader.refresh()
            assert (reader.get("vessels", "a"), reader.position()) == (A1, 1)
