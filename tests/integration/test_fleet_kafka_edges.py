"""The fleet's Kafka edges against the real shore cluster: slots, rescans, gaps, changelogs.

Each test makes topics of its own vessels on the shared shore cluster (see
`fleet_kafka_io`). Records lost on a vessel before MirrorMaker copied them:
`test_fleet_mirror_gaps`.
"""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    ResourceType,
)

from flows.edges.kafka.changelog import KafkaChangelog, ensure_fleet_topics
from flows.edges.kafka.errors import KafkaUnavailableError
from flows.edges.kafka.fleet_source import SLOTS, FleetKafkaSource, slot_of
from flows.fleet_core.names import TABLE_TOPICS
from tests.integration.conftest import KafkaClusters
from tests.integration.fleet_kafka_io import build, close, create, drain, imo, produce, settings

pytestmark = pytest.mark.integration


def _ours(parts, topics: set[str]) -> dict[str, int]:
    """The next offsets in the snapshot of `topics`, each from exactly one slot (its hash's)."""
    out: dict[str, int] = {}
    for name, part in parts.items():
        for key, state in part.snapshot().items():
            topic, _, rest = key.partition("[")
            if topic in topics:
                assert name == f"slot-{slot_of(topic, int(rest[:-1]))}", key
                assert key not in out, f"{key} in two slots"
                out[key] = state[0]
    return out


def test_every_record_of_two_vessels_is_read_once_and_snapshots_resume_after_it(
    kafka_clusters: KafkaClusters,
) -> None:
    shore = kafka_clusters.shore_brokers
    v1, v2 = imo(), imo()
    alerts, position = f"{v1}.reefer.alerts", f"{v1}.vessel.position"
    windows, state, raw = f"{v2}.reefer.windows", f"{v2}.reefer.container-state", f"{v2}.raw"
    telemetry = f"{v2}.reefer.telemetry"  # not a fleet input
    create(shore, {alerts: 3, position: 1, windows: 2, state: 1, telemetry: 1, raw: 1})
    produce(
        shore,
        [
            (alerts, 0, b"a0"), (alerts, 0, b"a1"), (alerts, 1, b"a2"),
            (alerts, 2, b"a3"), (alerts, 2, b"a4"), (alerts, 2, b"a5"),
            (position, 0, b"p0"), (position, 0, b"p1"),
            (windows, 0, b"w0"), (windows, 1, b"w1"), (windows, 1, b"w2"),
            (state, 0, b"s0"), (state, 0, None), (state, 0, b"s1"),
            (telemetry, 0, b"t0"), (raw, 0, b"r0"),
        ],
    )  # fmt: skip
    topics = {alerts, position, windows, state, telemetry, raw}
    source = FleetKafkaSource(settings(shore))
    assert source.list_parts() == [f"slot-{i}" for i in range(SLOTS)]

    parts = build(source)
    got, _ = drain(parts, topics, want=13)
    assert Counter(got) == Counter(
        [
            (alerts, b"a0"), (alerts, b"a1"), (alerts, b"a2"),
            (alerts, b"a3"), (alerts, b"a4"), (alerts, b"a5"),
            (position, b"p0"), (position, b"p1"),
            (windows, b"w0"), (windows, b"w1"), (windows, b"w2"),
            (state, b"s0"), (state, b"s1"),
        ]
    )  # fmt: skip
    # A partition's records come in its order.
    assert [v for t, v in got if v in (b"a3", b"a4", b"a5", b"s0", b"s1")] in (
        [b"a3", b"a4", b"a5", b"s0", b"s1"], [b"s0", b"s1", b"a3", b"a4", b"a5"]
    )  # fmt: skip
    snapshots = {name: part.snapshot() for name, part in parts.items()}
    assert _ours(parts, topics) == {
        f"{alerts}[0]": 2, f"{alerts}[1]": 1, f"{alerts}[2]": 3,
        f"{position}[0]": 2, f"{windows}[0]": 1, f"{windows}[1]": 2,
        f"{state}[0]": 3,  # the tombstone is skipped, its offset read past
    }  # fmt: skip
    close(parts)

    produce(shore, [(alerts, 1, b"a6"), (windows, 0, b"w3"), (position, 0, b"p2")])
    parts = build(source, snapshots)
    got, _ = drain(parts, topics, want=3)
    assert Counter(got) == Counter([(alerts, b"a6"), (windows, b"w3"), (position, b"p2")])
    assert _ours(parts, topics) == {
        f"{alerts}[0]": 2, f"{alerts}[1]": 2, f"{alerts}[2]": 3,
        f"{position}[0]": 3, f"{windows}[0]": 2, f"{windows}[1]": 2, f"{state}[0]": 3,
    }  # fmt: skip
    close(parts)


def test_a_new_vessels_topic_is_read_after_a_rescan(kafka_clusters: KafkaClusters) -> None:
    shore = kafka_clusters.shore_brokers
    dlq = f"{imo()}.reefer.dlq"
    parts = build(FleetKafkaSource(settings(shore), rescan_s=0.5))
    try:
        drain(parts, {dlq}, want=0, settle_s=1.0)  # running, the vessel not there yet
        create(shore, {dlq: 2})
        produce(shore, [(dlq, 0, b"d0"), (dlq, 1, b"d1")])
        since = time.monotonic()
        got, _ = drain(parts, {dlq}, want=2, settle_s=0.5, timeout=15)
        took = time.monotonic() - since
        assert Counter(got) == Counter([(dlq, b"d0"), (dlq, b"d1")])
        assert took < 5.0, f"new topic read {took:.1f} s after it was written"
        assert _ours(parts, {dlq}) == {f"{dlq}[0]": 1, f"{dlq}[1]": 1}
    finally:
        close(parts)


def test_stop_at_end_stops_at_the_end_offsets_noted_at_start(
    kafka_clusters: KafkaClusters,
) -> None:
    shore = kafka_clusters.shore_brokers
    position = f"{imo()}.vessel.position"
    create(shore, {position: 2})
    produce(shore, [(position, 0, b"x0"), (position, 0, b"x1"), (position, 0, b"x2")])
    produce(shore, [(position, 1, b"y0"), (position, 1, b"y1")])
    parts = build(FleetKafkaSource(settings(shore, stop_at_end=True), rescan_s=0.5))
    try:
        # Written after the start: past the end of this bounded run.
        produce(shore, [(position, 0, b"x3"), (position, 1, b"y2"), (position, 1, b"y3")])
        got, stopped = drain(parts, {position}, want=10**9, timeout=60)
        assert stopped == set(parts)
        values = [v for _, v in got]
        assert sorted(values) == [b"x0", b"x1", b"x2", b"y0", b"y1"]
        assert [v for v in values if v.startswith(b"x")] == [b"x0", b"x1", b"x2"]
        assert _ours(parts, {position}) == {f"{position}[0]": 3, f"{position}[1]": 2}
        for part in parts.values():
            with pytest.raises(StopIteration):
                part.next_batch()
    finally:
        close(parts)


def _delete_records(brokers: str, topic: str, before: int) -> None:
    """Move partition 0's log start to `before`, as retention would."""
    admin = AdminClient({"bootstrap.servers": brokers})
    for future in admin.delete_records([TopicPartition(topic, 0, before)]).values():
        future.result(timeout=30)


def _one_partition_topic(shore: str, kind: str, values: list[bytes]) -> tuple[str, str]:
    vessel = imo()
    topic = f"{vessel}.{kind}"
    create(shore, {topic: 1})
    produce(shore, [(topic, 0, v) for v in values])
    return vessel, topic


def test_a_gap_is_one_line_naming_what_was_lost_then_reading_goes_on(
    kafka_clusters: KafkaClusters, capfd: pytest.CaptureFixture[str]
) -> None:
    shore = kafka_clusters.shore_brokers
    vessel, topic = _one_partition_topic(
        shore, "reefer.alerts", [f"g{i}".encode() for i in range(20)]
    )
    _delete_records(shore, topic, 15)  # retention ashore; the fleet's snapshot had read 0..2
    slot = f"slot-{slot_of(topic, 0)}"
    source = FleetKafkaSource(settings(shore))
    capfd.readouterr()
    parts = {slot: source.build_part("fleet-in", slot, {f"{topic}[0]": (3, 3, 0, 0)})}
    try:
        got, _ = drain(parts, {topic}, want=5)
        assert got == [(topic, b"g15"), (topic, b"g16"), (topic, b"g17"), (topic, b"g18"),
                       (topic, b"g19")]  # fmt: skip
        assert parts[slot].snapshot()[f"{topic}[0]"][0] == 20
    finally:
        close(parts)
    gaps = [line for line in capfd.readouterr().err.splitlines() if "GAP" in line]
    assert gaps == [
        f"coldwake-fleet: GAP vessel {vessel} topic {topic} partition 0: 12 records lost, "
        "deleted ashore before the fleet read them (next offset 3, log starts at 15); "
        "continuing from 15"
    ]


def test_a_gap_while_running_is_the_same_one_line(
    kafka_clusters: KafkaClusters, capfd: pytest.CaptureFixture[str]
) -> None:
    shore = kafka_clusters.shore_brokers
    # 30 records of 900 kB: the consumer prefetches a few MB, far fewer than 25 records.
    values = [b"%02d" % i + b"x" * 900_000 for i in range(30)]
    vessel, topic = _one_partition_topic(shore, "reefer.windows", values)
    slot = f"slot-{slot_of(topic, 0)}"
    capfd.readouterr()
    source = FleetKafkaSource(settings(shore), batch_size=1)
    parts = {slot: source.build_part("fleet-in", slot, None)}
    try:
        got, _ = drain(parts, {topic}, want=1, settle_s=0.0)
        _delete_records(shore, topic, 25)  # while the fleet has read only a few of them
        read = len(got)
        while not got or got[-1][1][:2] != b"29":
            more, _ = drain(parts, {topic}, want=1, settle_s=0.0, timeout=30)
            got += more
    finally:
        close(parts)
    numbers = [int(v[:2]) for _, v in got]
    kept = numbers.index(25)  # what was read (prefetched) before the records went
    assert read <= kept < 25
    assert numbers == [*range(kept), 25, 26, 27, 28, 29]
    gaps = [line for line in capfd.readouterr().err.splitlines() if "GAP" in line]
    assert gaps == [
        f"coldwake-fleet: GAP vessel {vessel} topic {topic} partition 0: {25 - kept} records "
        f"lost, deleted ashore before the fleet read them (next offset {kept}, log starts at "
        "25); continuing from 25"
    ]


def test_an_offset_past_the_log_end_rereads_the_partition_and_says_so(
    kafka_clusters: KafkaClusters, capfd: pytest.CaptureFixture[str]
) -> None:
    shore = kafka_clusters.shore_brokers
    vessel, topic = _one_partition_topic(shore, "reefer.late", [b"r0", b"r1", b"r2"])
    slot = f"slot-{slot_of(topic, 0)}"
    capfd.readouterr()
    # A snapshot from before the topic was recreated ashore.
    source = FleetKafkaSource(settings(shore))
    parts = {slot: source.build_part("in", slot, {f"{topic}[0]": (9, 9, 0, 0)})}
    try:
        got, _ = drain(parts, {topic}, want=3)
        assert got == [(topic, b"r0"), (topic, b"r1"), (topic, b"r2")]
    finally:
        close(parts)
    notes = [line for line in capfd.readouterr().err.splitlines() if topic in line]
    assert notes == [
        f"coldwake-fleet: RESET vessel {vessel} topic {topic} partition 0: next offset 9 is "
        "past the log end 3 (topic recreated or truncated ashore); reading it again from its "
        "log start 0"
    ]


def _read_all(brokers: str, topic: str) -> list[tuple[int, str, bytes | None]]:
    """Every record of a topic as `(partition, key, value)`, partition by partition."""
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": "t", "log_level": 3})
    try:
        out: list[tuple[int, str, bytes | None]] = []
        for p in sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            consumer.assign([TopicPartition(topic, p, low)])
            deadline = time.monotonic() + 30
            while low < high:
                assert time.monotonic() < deadline, f"{topic}[{p}] not read to {high}"
                msg = consumer.poll(0.5)
                if msg is None or msg.error():
                    continue
                key, offset = msg.key(), msg.offset()
                assert key is not None and offset is not None
                out.append((p, key.decode(), msg.value()))
                low = offset + 1
        return out
    finally:
        consumer.close()


def test_fleet_topics_are_compacted_and_the_changelog_reads_back_by_key(
    kafka_clusters: KafkaClusters,
) -> None:
    shore = kafka_clusters.shore_brokers
    admin = AdminClient({"bootstrap.servers": shore})
    existing = [t for t in TABLE_TOPICS if t in admin.list_topics(timeout=10).topics]
    for future in admin.delete_topics(existing).values() if existing else []:
        future.result(timeout=30)
    deadline = time.monotonic() + 30
    while set(TABLE_TOPICS) & set(admin.list_topics(timeout=10).topics):
        assert time.monotonic() < deadline, "fleet topics not deleted"
        time.sleep(0.2)

    ensure_fleet_topics(shore, 30.0, partitions=4)
    ensure_fleet_topics(shore, 30.0, partitions=2)  # idempotent: existing ones left alone
    meta = admin.list_topics(timeout=10).topics
    assert {t: len(meta[t].partitions) for t in TABLE_TOPICS} == {
        "fleet.container-state": 4, "fleet.vessels": 4, "fleet.open-alerts": 4,
        "fleet.cargo": 4, "fleet.grid": 4, "fleet.hourly": 4,
        "fleet.container-windows": 4, "fleet.container-alerts": 4,
    }  # fmt: skip
    resources = [ConfigResource(ResourceType.TOPIC, t) for t in TABLE_TOPICS]
    for resource, future in admin.describe_configs(resources).items():
        configs = future.result(timeout=30)
        assert configs["cleanup.policy"].value == "compact", resource
        assert configs["min.insync.replicas"].value == "1", resource  # a 1-node cluster

    changelog = KafkaChangelog(settings(shore))
    changelog.publish("container-state", "ONEU7060604", b'{"v":1}')
    changelog.publish("container-state", "MSKU1234565", b'{"v":2}')
    changelog.publish("container-state", "TGHU9876541", b'{"v":3}')
    changelog.publish("container-state", "ONEU7060604", None)
    changelog.publish("vessels", "IMO9778791", b'{"lat":1.5}')
    changelog.flush()
    changelog.publish("vessels", "IMO9778791", b'{"lat":2.5}')
    changelog.close()
    # Java's partitioner: (murmur2(key) & 0x7fffffff) % 4, with murmur2 as in Kafka's
    # Utils: "ONEU7060604" 1314186009 -> 1, "MSKU1234565" -1507342046 -> 2,
    # "TGHU9876541" -896355380 -> 0, "IMO9778791" -1270058715 -> 1.
    assert _read_all(shore, "fleet.container-state") == [
        (0, "TGHU9876541", b'{"v":3}'),
        (1, "ONEU7060604", b'{"v":1}'),
        (1, "ONEU7060604", None),
        (2, "MSKU1234565", b'{"v":2}'),
    ]
    assert _read_all(shore, "fleet.vessels") == [
        (1, "IMO9778791", b'{"lat":1.5}'),
        (1, "IMO9778791", b'{"lat":2.5}'),
    ]


_UNREACHABLE = "no Kafka broker answered at 127.0.0.1:1 within 2 s"


def test_an_unreachable_cluster_is_one_clear_error_within_the_timeout(
    capfd: pytest.CaptureFixture[str],
) -> None:
    source = FleetKafkaSource(settings("127.0.0.1:1", timeout_s=2.0))
    since = time.monotonic()
    with pytest.raises(KafkaUnavailableError, match=re.escape(_UNREACHABLE)):
        source.build_part("fleet-in", "slot-0", None)
    assert time.monotonic() - since < 6.0
    err = capfd.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"coldwake: error: {_UNREACHABLE}"), err

    since = time.monotonic()
    with pytest.raises(KafkaUnavailableError, match=re.escape(_UNREACHABLE)):
        ensure_fleet_topics("127.0.0.1:1", 2.0)
    assert time.monotonic() - since < 6.0
