"""The query API's pure helpers: parameter checks, cursor pages over merged shards, alerts."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

from flows.fleet_core.names import SHARDS, shard_of
from state.api.names import MAX_KEY_BYTES, MAX_LIMIT
from state.api.pages import (
    ApiError,
    after_key,
    alert_filter,
    check_alert_filter,
    check_limit,
    check_text,
    merge_unique,
    rows_body,
    take_page,
    values_body,
    vessel_alerts,
)
from state.fleet_layout import shard_path
from state.fleet_reader import FleetReader
from state.fleet_store import ShardWriter
from state.reader import TableReader
from state.store import TableWriter
from state.table import table_path


def _rows(*keys: str) -> list[tuple[str, bytes]]:
    return [(k, orjson.dumps({"k": k})) for k in keys]


def test_take_page_gives_the_next_cursor_only_when_a_row_follows() -> None:
    rows = _rows("a", "b", "c")
    assert take_page(iter(rows), 2).rows == rows[:2]
    assert take_page(iter(rows), 2).next == "b"
    assert take_page(iter(rows), 3).next is None  # exactly full: no empty last page
    assert take_page(iter(rows), 5).next is None
    assert take_page(iter([]), 5).rows == []


def test_limit_is_checked_and_the_cap_is_said() -> None:
    assert check_limit(1) == 1 and check_limit(MAX_LIMIT) == MAX_LIMIT
    with pytest.raises(ApiError) as above:
        check_limit(MAX_LIMIT + 1)
    assert above.value.status == 400
    assert f"above the cap of {MAX_LIMIT} rows a page" in above.value.message
    with pytest.raises(ApiError, match="at least 1"):
        check_limit(0)


def test_text_parameters_are_bounded_in_utf8_bytes() -> None:
    assert check_text("key", "a" * MAX_KEY_BYTES) == "a" * MAX_KEY_BYTES
    assert check_text("after", None) is None
    with pytest.raises(ApiError) as error:
        check_text("key", "é" * (MAX_KEY_BYTES // 2 + 1))  # 2 bytes each
    assert (error.value.status, error.value.message) == (
        414,
        f"key is longer than {MAX_KEY_BYTES} bytes; no key is that long",
    )


def test_alert_filter_parameters() -> None:
    check_alert_filter("open", None)
    check_alert_filter("open", "power_loss")
    with pytest.raises(ApiError, match="open alerts only"):
        check_alert_filter("closed", None)
    with pytest.raises(ApiError, match="not an alert kind; the kinds are temperature_excursion"):
        check_alert_filter("open", "fire")


def test_merge_unique_merges_in_utf8_order_and_keeps_the_first_sources_row() -> None:
    first = [("a", b"1"), ("é", b"1")]
    second = [("a", b"2"), ("b", b"2"), ("z", b"2")]
    assert list(merge_unique(first, second)) == [("a", b"1"), ("b", b"2"), ("z", b"2"), ("é", b"1")]
    assert list(after_key(second, "a")) == [("b", b"2"), ("z", b"2")]
    assert list(after_key(second, None)) == second


def test_bodies_embed_the_stored_json_verbatim() -> None:
    stored = b'{"hour": "2024-05-01T10",  "band":"chilled"}'  # spaces kept as stored
    page = take_page(iter([("k|1", stored), ("k|2", b"{}")]), 1)
    assert rows_body("cargo", page) == (
        b'{"table":"cargo","rows":[{"key":"k|1","value":' + stored + b'}],"next":"k|1"}'
    )
    assert values_body("vessels", page) == b'{"vessels":[' + stored + b'],"next":"k|1"}'


def test_open_alerts_come_from_container_state_rows_by_alert_id() -> None:
    rows = [
        ("C1", b'{"container_id":"C1","vessel_id":"V1","open_alerts":[],"alert_ids":{}}'),
        (
            "C2",
            orjson.dumps(
                {"container_id": "C2", "vessel_id": "V1"}
                | {"open_alerts": ["door_open_at_sea", "power_loss"]}
                | {"alert_ids": {"door_open_at_sea": "f0", "power_loss": "0a"}}
            ),
        ),
        (
            "C3",  # spaced as another encoder would write it: decoded, not skipped
            b'{"container_id": "C3", "vessel_id": "V2", "open_alerts": ["power_loss"],'
            b' "alert_ids": {"power_loss": "5b"}}',
        ),
    ]
    alerts = vessel_alerts(rows)
    assert [orjson.loads(raw) for _, raw in alerts] == [
        {"alert_id": "0a", "kind": "power_loss", "vessel_id": "V1", "container_id": "C2"},
        {"alert_id": "5b", "kind": "power_loss", "vessel_id": "V2", "container_id": "C3"},
        {"alert_id": "f0", "kind": "door_open_at_sea", "vessel_id": "V1", "container_id": "C2"},
    ]
    assert [a for a, _ in alert_filter(alerts, "V1", None)] == ["0a", "f0"]
    assert [a for a, _ in alert_filter(alerts, None, "power_loss")] == ["0a", "5b"]
    assert [a for a, _ in alert_filter(alerts, "V2", "door_open_at_sea")] == []
    assert list(alert_filter(alerts, None, None)) == alerts


def _all_pages(fetch, limit: int) -> tuple[list[str], int]:
    keys: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        page = take_page(fetch(after), limit)
        pages += 1
        keys += [k for k, _ in page.rows]
        if page.next is None:
            return keys, pages
        after = page.next


@pytest.mark.parametrize("limit", [1, 3, 7, 50])
def test_cursor_pages_over_merged_shards_give_every_row_once(tmp_path: Path, limit: int) -> None:
    rng = random.Random(limit)
    keys = sorted({f"{rng.choice('AMZaé|')}{rng.randrange(10_000)}" for _ in range(200)})
    by_shard: dict[int, list[str]] = {}
    for key in keys:
        by_shard.setdefault(shard_of(key), []).append(key)
    assert len(by_shard) == SHARDS  # every shard holds some
    for shard, mine in by_shard.items():
        with ShardWriter(shard_path(tmp_path, shard)) as writer:
            writer.apply([("grid", k, orjson.dumps(k)) for k in mine])
            writer.apply([("cargo", k, b"{}") for k in mine[:2]])  # another table, apart
    with FleetReader(tmp_path) as reader:
        got, pages = _all_pages(lambda after: reader.rows("grid", after=after), limit)
        assert got == sorted(keys, key=str.encode)
        assert pages == -(-len(keys) // limit)  # no empty last page
        a_keys, _ = _all_pages(lambda after: reader.rows("grid", prefix="A", after=after), limit)
        assert a_keys == [k for k in got if k.startswith("A")]


def test_cursor_pages_over_the_vessel_table(tmp_path: Path) -> None:
    keys = [f"MSKU{n:07d}" for n in range(25)] + ["TGHU0000001"]
    with TableWriter(table_path(tmp_path)) as writer:
        writer.apply(9, [(k, b"{}") for k in keys])
    with TableReader(table_path(tmp_path)) as reader:
        got, _ = _all_pages(lambda after: reader.items(after=after), 4)
        assert got == keys
        msku, _ = _all_pages(lambda after: reader.items("MSKU", after=after), 10)
        assert msku == keys[:-1]
        assert [k for k, _ in reader.items("TGHU", after="MSKU0000003")] == ["TGHU0000001"]
        assert list(reader.items("MSKU", after="MSKU9")) == []
