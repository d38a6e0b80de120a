"""Records lost on a vessel before MirrorMaker copied them: the fleet source's one GAP line.

Against the real shore cluster, without MirrorMaker: each test plays its part by hand,
as it writes with exactly-once on. Each batch is one transaction of a transactional
producer holding the copies (`<alias>.<topic>`) and the offsets record
(`["MirrorSourceConnector",{"cluster":…,"partition":…,"topic":…}]` -> `{"offset":O}`,
O the vessel offset of the last record copied) in the compacted
`mm2-offsets.<alias>.internal`, so the read_committed paths are the real ones. A vessel
loss is a batch whose O is further on than the records it copies. Every test deletes
its topics: the sources of later tests read the whole shore.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, cast

import orjson
import pytest
from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from flows.edges.kafka.fleet_source import FleetKafkaSource, slot_of
from tests.integration.conftest import KafkaClusters
from tests.integration.fleet_kafka_io import close, create, delete, drain, imo, settings

pytestmark = pytest.mark.integration

ALERTS, WINDOWS, STATE = "reefer.alerts", "reefer.windows", "reefer.container-state"
LOST = "records lost, deleted on the vessel before MirrorMaker copied them ashore"


class HandMirror:
    """One vessel's MirrorMaker, by hand: copies and offsets in one transaction."""

    def __init__(self, shore: str, alias: str, topics: dict[str, int]) -> None:
        self.shore, self.alias = shore, alias
        self.offsets_topic = f"mm2-offsets.{alias}.internal"
        self.topics = [f"{alias}.{t}" for t in topics]
        create(shore, {f"{alias}.{t}": n for t, n in topics.items()})
        # As Connect creates its offsets topic: compacted, 25 partitions.
        create(shore, {self.offsets_topic: 25}, {"cleanup.policy": "compact"})
        self._producer = Producer(
            {
                "bootstrap.servers": shore,
                "transactional.id": f"{alias}-mm2-MirrorSourceConnector-0-{uuid.uuid4()}",
                "acks": "all",
                "partitioner": "murmur2_random",  # Java's, as Connect's producer
                "log_level": 3,
            }
        )
        self._producer.init_transactions(30)

    def copy(self, topic: str, values: list[bytes], last: int, commit: bool = True) -> None:
        """Copy `values` to partition 0 ashore, `last` being the vessel offset of the last."""
        producer = self._producer
        producer.begin_transaction()
        for value in values:
            producer.produce(f"{self.alias}.{topic}", value, key=b"k", partition=0)
        where = {"cluster": self.alias, "partition": 0, "topic": topic}
        key = orjson.dumps(["MirrorSourceConnector", where])
        producer.produce(self.offsets_topic, orjson.dumps({"offset": last}), key=key)
        assert producer.flush(30) == 0  # written, then committed or aborted
        if commit:
            producer.commit_transaction(30)
        else:
            producer.abort_transaction(30)

    def remove(self) -> None:
        self._producer.close()
        delete(self.shore, [*self.topics, self.offsets_topic])


def _slots(source: FleetKafkaSource, topics: list[str], snapshots=None):
    """The slots that read partition 0 of `topics`."""
    names = sorted({f"slot-{slot_of(t, 0)}" for t in topics})
    return {n: source.build_part("fleet-in", n, (snapshots or {}).get(n)) for n in names}


def _gaps(parts, capfd: pytest.CaptureFixture[str], vessel: str, want: int, settle_s: float = 2.0):
    """Poll the slots until `want` GAP lines about `vessel` came (or all slots stopped),
    then `settle_s` longer (several rescans); every such line printed meanwhile."""
    lines: list[str] = []
    stopped: set[str] = set()
    deadline, settle_until = time.monotonic() + 30, None
    while len(stopped) < len(parts):
        _, more = drain({n: p for n, p in parts.items() if n not in stopped}, set(), 0, 0.1)
        stopped |= more
        err = capfd.readouterr().err.splitlines()
        lines += [line for line in err if line.startswith(f"coldwake-fleet: GAP vessel {vessel} ")]
        now = time.monotonic()
        if len(lines) >= want and settle_until is None:
            settle_until = now + settle_s
        if settle_until is not None and now >= settle_until:
            break
        assert now < deadline, f"{len(lines)} of {want} GAP lines in 30 s: {lines}"
    return lines


def test_a_vessel_loss_is_one_exact_line_not_repeated_by_rescans_or_a_resume(
    kafka_clusters: KafkaClusters, capfd: pytest.CaptureFixture[str]
) -> None:
    shore = kafka_clusters.shore_brokers
    vessel = imo()
    mirror = HandMirror(shore, vessel, {ALERTS: 1})
    topic = f"{vessel}.{ALERTS}"
    try:
        mirror.copy(ALERTS, [b"a0", b"a1", b"a2", b"a3"], last=3)  # vessel offsets 0..3
        mirror.copy(ALERTS, [b"x4", b"x5"], last=5, commit=False)  # a copy that failed
        # The link came back after retention deleted 4..28: MirrorMaker went on at 29.
        mirror.copy(ALERTS, [b"a29", b"a30", b"a31", b"a32", b"a33", b"a34"], last=34)
        capfd.readouterr()
        source = FleetKafkaSource(settings(shore), rescan_s=0.3)
        parts = _slots(source, [topic])
        try:
            assert _gaps(parts, capfd, vessel, want=1) == [
                f"coldwake-fleet: GAP vessel {vessel} topic {ALERTS} partition 0: 25 {LOST} "
                "(MirrorMaker has copied up to vessel offset 35; the fleet has 10 of them)"
            ]
            snapshots = {name: part.snapshot() for name, part in parts.items()}
        finally:
            close(parts)
        # 12 records (2 aborted) and 3 markers: 10 read, none skipped ashore, 25 lost.
        [state] = [s[f"{topic}[0]"] for s in snapshots.values() if f"{topic}[0]" in s]
        assert state == (15, 10, 0, 25)

        parts = _slots(source, [topic], snapshots)
        try:
            assert _gaps(parts, capfd, vessel, want=0) == []  # resumed: nothing new
            mirror.copy(ALERTS, [b"a38", b"a39", b"a40", b"a41", b"a42"], last=42)
            assert _gaps(parts, capfd, vessel, want=1) == [
                f"coldwake-fleet: GAP vessel {vessel} topic {ALERTS} partition 0: 3 {LOST} "
                "(MirrorMaker has copied up to vessel offset 43; the fleet has 15 of them, "
                "25 lost before)"
            ]
        finally:
            close(parts)
    finally:
        mirror.remove()


def test_no_loss_and_container_state_print_nothing_and_a_bounded_run_checks_at_its_end(
    kafka_clusters: KafkaClusters, capfd: pytest.CaptureFixture[str]
) -> None:
    shore = kafka_clusters.shore_brokers
    vessel = imo()
    mirror = HandMirror(shore, vessel, {ALERTS: 1, WINDOWS: 1, STATE: 1})
    topics = [f"{vessel}.{t}" for t in (ALERTS, WINDOWS, STATE)]
    try:
        mirror.copy(ALERTS, [b"a%d" % i for i in range(10)], last=9)  # all of 0..9
        mirror.copy(WINDOWS, [b"w0", b"w1"], last=1)
        mirror.copy(WINDOWS, [b"w7", b"w8"], last=8)  # 2..6 lost
        # Compaction on the vessel leaves offsets no record holds: never a loss.
        mirror.copy(STATE, [b"s3", b"s9", b"s20"], last=20)
        windows_line = (
            f"coldwake-fleet: GAP vessel {vessel} topic {WINDOWS} partition 0: 5 {LOST} "
            "(MirrorMaker has copied up to vessel offset 9; the fleet has 4 of them)"
        )
        capfd.readouterr()
        for stop_at_end in (False, True):
            source = FleetKafkaSource(settings(shore, stop_at_end), rescan_s=0.3)
            parts = _slots(source, topics)
            try:
                assert _gaps(parts, capfd, vessel, want=1) == [windows_line], stop_at_end
            finally:
                close(parts)
    finally:
        mirror.remove()


def test_a_snapshot_of_offsets_only_resumes_and_counts_losses_from_there(
    kafka_clusters: KafkaClusters, capfd: pytest.CaptureFixture[str]
) -> None:
    shore = kafka_clusters.shore_brokers
    vessel = imo()
    mirror = HandMirror(shore, vessel, {ALERTS: 1})
    topic = f"{vessel}.{ALERTS}"
    try:
        mirror.copy(ALERTS, [b"a0", b"a1"], last=1)
        mirror.copy(ALERTS, [b"a9"], last=9)  # lost before the snapshot: not counted
        slot = f"slot-{slot_of(topic, 0)}"
        old = cast(Any, {slot: {f"{topic}[0]": 5}})  # a snapshot from before the counts
        capfd.readouterr()
        source = FleetKafkaSource(settings(shore), rescan_s=0.3)
        parts = _slots(source, [topic], old)
        try:
            assert _gaps(parts, capfd, vessel, want=0) == []
            mirror.copy(ALERTS, [b"a12"], last=12)
            assert _gaps(parts, capfd, vessel, want=1) == [
                f"coldwake-fleet: GAP vessel {vessel} topic {ALERTS} partition 0: 2 {LOST} "
                "(MirrorMaker has copied up to vessel offset 13)"  # its count began at 10
            ]
        finally:
            close(parts)
    finally:
        mirror.remove()


def test_records_deleted_ashore_are_not_counted_as_lost_on_the_vessel(
    kafka_clusters: KafkaClusters, capfd: pytest.CaptureFixture[str]
) -> None:
    shore = kafka_clusters.shore_brokers
    vessel = imo()
    mirror = HandMirror(shore, vessel, {ALERTS: 1})
    topic = f"{vessel}.{ALERTS}"
    try:
        mirror.copy(ALERTS, [b"a0", b"a1"], last=1)  # shore offsets 0, 1, marker 2
        mirror.copy(ALERTS, [b"a2", b"a3"], last=3)  # 3, 4, marker 5
        # Retention ashore, the fleet having read a0: a1, a marker and a2 go.
        admin = AdminClient({"bootstrap.servers": shore})
        for future in admin.delete_records([TopicPartition(topic, 0, 4)]).values():
            future.result(timeout=30)
        slot = f"slot-{slot_of(topic, 0)}"
        capfd.readouterr()
        source = FleetKafkaSource(settings(shore), rescan_s=0.3)
        parts = _slots(source, [topic], {slot: {f"{topic}[0]": (1, 1, 0, 0)}})
        try:
            # Three offsets, two records: counted by offsets, they would hide a loss.
            assert _gaps(parts, capfd, vessel, want=1) == [
                f"coldwake-fleet: GAP vessel {vessel} topic {topic} partition 0: 3 records lost, "
                "deleted ashore before the fleet read them (next offset 1, log starts at 4); "
                "continuing from 4"
            ]
            mirror.copy(ALERTS, [b"a9"], last=9)  # 4..8 lost on the vessel
            assert _gaps(parts, capfd, vessel, want=1) == [
                f"coldwake-fleet: GAP vessel {vessel} topic {ALERTS} partition 0: 5 {LOST} "
                "(MirrorMaker has copied up to vessel offset 10)"
            ]
        finally:
            close(parts)
    finally:
        mirror.remove()
