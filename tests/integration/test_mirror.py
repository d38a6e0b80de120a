"""Ship to shore: MirrorMaker 2 copies a vessel's topics ashore exactly, whatever the link does.

Real clusters (one vessel of 1 node, the shore), a real MirrorMaker 2 and a real
Toxiproxy, started once for the module (``up --vessels 1 --vessel-nodes 1``). Every
test adds records to the vessel's mirrored topics and ends with the same proof: each
shore topic equals its vessel topic, partition by partition, record by record (same
key, value, partition and order: nothing missing, nothing twice). The retention test
deletes vessel records on purpose and runs last; the fleet's source then reads the
shore and must report the same losses as ``mirror status``.

About 2.5 minutes on 2 cores, a third of it the black hole (40 s).
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

# ConfigResource is public API, but confluent_kafka.admin lists no __all__ for mypy.
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
)

from deploy.kafka import commands, mirroring
from deploy.kafka.layout import STATE_FILE, Deployment
from deploy.kafka.mirror import CLIENT_TIMEOUT_MS, shore_topic, transactional_ids
from deploy.kafka.parts import Mirror
from deploy.kafka.processes import running_pid
from deploy.kafka.topics import RETENTION_MS
from flows.config import KafkaSettings
from flows.contract import CONTAINER_STATE, LATE, OUTPUTS, POSITION
from flows.edges.kafka.fleet_source import FleetKafkaSource
from state.api.link import MirrorWatch
from tests.support.kafka import Partitions, kill_strays, produce, topic_records, topics_records

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
MIRRORED = [o.topic for o in OUTPUTS] + [POSITION]


@dataclass(frozen=True, slots=True)
class Mirrored:
    """The module's deployment: one vessel, the shore, the link, one MirrorMaker."""

    home: Path
    vessel: str
    vessel_brokers: str
    shore_brokers: str
    mirror: Mirror

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``python -m deploy.kafka ARGS --dir HOME``."""
        return subprocess.run(
            [sys.executable, "-m", "deploy.kafka", *args, "--dir", str(self.home)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    def ok(self, *args: str) -> str:
        """Run a command that must succeed; return its stdout."""
        result = self.cli(*args)
        assert result.returncode == 0, f"{args}: {result.stderr}"
        return result.stdout

    def mirror_pid(self) -> int | None:
        """The MirrorMaker's PID if it runs."""
        return running_pid(Deployment.load(self.home).mirror(self.vessel))

    def shore(self, topic: str) -> str:
        """The shore topic of a vessel topic."""
        return shore_topic(self.mirror, topic)


def _records(
    tag: str, per_topic: int, topics: list[str], size: int = 0
) -> Iterator[tuple[str, bytes, bytes]]:
    """Distinct records (``size`` > 0: that many incompressible bytes more per value)."""
    for i in range(per_topic):
        for topic in topics:
            pad = base64.b64encode(os.urandom(size)) if size else b""
            yield topic, f"MSKU{i % 97:07d}".encode(), f"{tag}|{topic}|{i}|".encode() + pad


def _differences(m: Mirrored) -> list[str]:
    """What keeps each shore topic from equalling its vessel topic (empty: all equal)."""
    vessel = topics_records(m.vessel_brokers, MIRRORED)
    try:
        shore = topics_records(m.shore_brokers, [m.shore(t) for t in MIRRORED], read_committed=True)
    except KafkaException as e:  # a topic may not exist ashore yet
        return [str(e)]
    return [
        _describe(t, vessel[t], shore[m.shore(t)])
        for t in MIRRORED
        if vessel[t] != shore[m.shore(t)]
    ]


def _describe(topic: str, vessel: Partitions, shore: Partitions) -> str:
    v = sum(len(r) for r in vessel.values())
    s = sum(len(r) for r in shore.values())
    all_shore = [r for recs in shore.values() for r in recs]
    twice = len(all_shore) - len(set(all_shore))
    return f"{topic}: vessel {v} records, shore {s} ({twice} twice), partitions {sorted(shore)}"


def _assert_exact(m: Mirrored, timeout: float = 90.0) -> float:
    """Wait until every shore topic equals its vessel topic; return the seconds it took."""
    started = time.monotonic()
    while True:
        problems = _differences(m)
        if not problems:
            print(f"shore equals vessel after {time.monotonic() - started:.1f} s")
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            pytest.fail(f"shore differs from vessel after {timeout:.0f} s: {problems}")
        time.sleep(1.0)


def _shore_total(m: Mirrored) -> int:
    """Records (and transaction markers) ashore, from end offsets: cheap, for progress only."""
    consumer = Consumer({"bootstrap.servers": m.shore_brokers, "group.id": "t", "log_level": 3})
    try:
        total = 0
        for topic in MIRRORED:
            parts = consumer.list_topics(m.shore(topic), timeout=10).topics[m.shore(topic)]
            for p in parts.partitions:
                total += consumer.get_watermark_offsets(TopicPartition(m.shore(topic), p))[1]
        return total
    finally:
        consumer.close()


def _end_offsets(bootstrap: str, topic: str) -> dict[int, tuple[int, int]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "t", "log_level": 3})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p)) for p in parts}
    finally:
        consumer.close()


def _set_retention(bootstrap: str, topic: str, ms: int) -> None:
    entry = ConfigEntry("retention.ms", str(ms), incremental_operation=AlterConfigOpType.SET)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource("topic", topic, incremental_configs=[entry])
    for fut in admin.incremental_alter_configs([resource]).values():
        fut.result(timeout=30)


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mirrored]:
    """One mirrored vessel of 1 node, the shore, the link and MirrorMaker, for the module."""
    home = tmp_path_factory.mktemp("mirror")
    try:
        dep = commands.up(home, vessels=1, vessel_nodes=1).deployment
        vessel = dep.vessels[0]
        yield Mirrored(
            home, vessel.name, vessel.bootstrap, dep.shore.bootstrap, dep.mirror(vessel.name)
        )
    finally:
        try:
            if (home / STATE_FILE).exists():
                commands.down(home, timeout=20.0)
        finally:
            strays = kill_strays(home)
        assert not strays, f"processes {strays} of {home} outlived down(); killed them"


@pytest.fixture(autouse=True)
def healthy(mirrored: Mirrored) -> Iterator[None]:
    """Each test starts with the link up, MirrorMaker running and the shore caught up."""
    mirroring.set_link_mode(mirrored.home, mirrored.vessel, "up")
    mirroring.start_mirror(mirrored.home, mirrored.vessel)
    _assert_exact(mirrored)
    yield


def test_link_up_every_record_arrives_with_its_key_value_partition_and_order(
    mirrored: Mirrored,
) -> None:
    produce(mirrored.vessel_brokers, _records("up", 400, MIRRORED))

    _assert_exact(mirrored)

    # Exactly-once is really on: the task producer is transactional.
    assert transactional_ids(mirrored.mirror) == [f"{mirrored.vessel}-mm2-MirrorSourceConnector-0"]
    status = mirrored.ok("mirror", "status")
    assert f"{mirrored.vessel}: mirror up" in status and "exactly-once on" in status
    # The container-state table stays a compacted changelog ashore.
    admin = AdminClient({"bootstrap.servers": mirrored.shore_brokers})
    shore_state = mirrored.shore(CONTAINER_STATE.topic)
    [fut] = admin.describe_configs([ConfigResource("topic", shore_state)]).values()
    assert fut.result(timeout=10)["cleanup.policy"].value == "compact"


def test_outage_leaves_the_vessel_unaffected_and_the_backlog_crosses_exactly(
    mirrored: Mirrored,
) -> None:
    mirrored.ok("link", "down", mirrored.vessel)
    pid = mirrored.mirror_pid()

    started = time.monotonic()
    for chunk in range(4):  # a leg's outputs, produced while the link is down
        produce(mirrored.vessel_brokers, _records(f"outage{chunk}", 250, MIRRORED))
    produce_s = time.monotonic() - started
    time.sleep(5)  # MirrorMaker keeps trying meanwhile

    status = mirrored.ok("mirror", "status")
    assert f"mirror up (pid {pid}), link down" in status
    for topic in MIRRORED:
        assert re.search(rf"^  {re.escape(topic)} +waiting +1000\b", status, re.MULTILINE), status
    assert "GAP" not in status
    assert produce_s < 30, f"the vessel took {produce_s:.0f} s to take 6,000 records"

    mirrored.ok("link", "up", mirrored.vessel)
    _assert_exact(mirrored)
    assert mirrored.mirror_pid() == pid


def test_the_dashboards_link_watch_counts_what_waits_to_cross(mirrored: Mirrored) -> None:
    """`state.api --mirror-dir`: the vessel page's backlog is `mirror status`'s."""
    watch = MirrorWatch(mirrored.home, interval_s=0.2)
    watch.start()
    try:
        mirrored.ok("link", "down", mirrored.vessel)
        produce(mirrored.vessel_brokers, _records("watched", 100, MIRRORED))
        deadline = time.monotonic() + 30
        while (report := watch.report(mirrored.vessel)) is None or report["waiting"] < 600:
            assert time.monotonic() < deadline, f"the watch saw {report}"
            time.sleep(0.2)
        assert (report["mirror"], report["link"], report["problems"]) == ("up", "down", [])
        assert report["waiting_by_topic"] == dict.fromkeys(MIRRORED, 100)
        seen = watch.generation
        mirrored.ok("link", "up", mirrored.vessel)
        _assert_exact(mirrored)
        # A look that began before the link came up may still say "down": wait for a later one.
        while (report := watch.report(mirrored.vessel)) is None or (
            report["waiting"],
            report["link"],
        ) != (0, "up"):
            assert time.monotonic() < deadline + 60, f"the watch saw {report}"
            time.sleep(0.2)
        assert watch.generation > seen
    finally:
        watch.stop()


def test_mirrormaker_killed_mid_drain_restarts_without_loss_or_repeat(mirrored: Mirrored) -> None:
    mirrored.ok("link", "down", mirrored.vessel)
    produce(mirrored.vessel_brokers, _records("kill", 1500, MIRRORED, size=150))
    before = _shore_total(mirrored)

    mirrored.ok("link", "satellite", mirrored.vessel)  # 512 kbit/s: a drain of about a minute
    deadline = time.monotonic() + 90
    while _shore_total(mirrored) < before + 500:
        assert time.monotonic() < deadline, "nothing crossed the satellite link in 90 s"
        time.sleep(0.5)
    mirrored.ok("mirror", "kill", mirrored.vessel)
    assert mirrored.mirror_pid() is None
    assert _differences(mirrored), "the backlog had crossed before the kill"

    mirrored.ok("link", "up", mirrored.vessel)
    mirrored.ok("mirror", "start", mirrored.vessel)
    _assert_exact(mirrored, timeout=120)


def test_mirrormaker_started_while_the_link_is_down_copies_all_once_it_is_up(
    mirrored: Mirrored,
) -> None:
    mirrored.ok("mirror", "stop", mirrored.vessel)
    mirrored.ok("link", "down", mirrored.vessel)
    produce(mirrored.vessel_brokers, _records("late-start", 300, MIRRORED))

    mirrored.ok("mirror", "start", mirrored.vessel)
    time.sleep(10)
    assert mirrored.mirror_pid() is not None, "MirrorMaker gave up while the link was down"
    assert _differences(mirrored)

    mirrored.ok("link", "up", mirrored.vessel)
    _assert_exact(mirrored)


def test_black_hole_longer_than_every_client_timeout_then_restored_is_exact(
    mirrored: Mirrored,
) -> None:
    mirrored.ok("link", "blackhole", mirrored.vessel)
    produce(mirrored.vessel_brokers, _records("blackhole", 300, MIRRORED))
    time.sleep(CLIENT_TIMEOUT_MS / 1000 + 10)
    assert mirrored.mirror_pid() is not None
    assert _differences(mirrored)

    mirrored.ok("link", "up", mirrored.vessel)
    _assert_exact(mirrored, timeout=120)


def test_retention_outrunning_an_outage_is_reported_in_one_line_per_partition(
    mirrored: Mirrored, capfd: pytest.CaptureFixture[str]
) -> None:
    # Runs last: it deletes vessel records, after which the topics differ for good.
    topic = LATE.topic
    mirrored.ok("link", "down", mirrored.vessel)
    copied = {p: end for p, (_, end) in _end_offsets(mirrored.vessel_brokers, topic).items()}
    produce(mirrored.vessel_brokers, _records("lost", 240, [topic]))
    ends = {p: end for p, (_, end) in _end_offsets(mirrored.vessel_brokers, topic).items()}
    lost = {p: ends[p] - copied[p] for p in ends if ends[p] > copied[p]}
    assert lost

    _set_retention(mirrored.vessel_brokers, topic, 1000)
    deadline = time.monotonic() + 60
    while any(
        low < ends[p] for p, (low, _) in _end_offsets(mirrored.vessel_brokers, topic).items()
    ):
        assert time.monotonic() < deadline, "retention deleted nothing in 60 s"
        time.sleep(1)
    _set_retention(mirrored.vessel_brokers, topic, RETENTION_MS)
    shore_before = topic_records(mirrored.shore_brokers, mirrored.shore(topic), read_committed=True)
    produce(mirrored.vessel_brokers, _records("after", 60, [topic]))

    expected = {
        f"GAP {mirrored.vessel} {topic} partition {p}: {n} records lost" for p, n in lost.items()
    }
    for link_state in ("down", "up"):  # before MirrorMaker skips them, and after
        if link_state == "up":
            mirrored.ok("link", "up", mirrored.vessel)
            _wait_drained(mirrored, topic)
        result = mirrored.cli("mirror", "status")
        assert result.returncode == 1, result.stdout
        gaps = [line for line in result.stdout.splitlines() if line.startswith("GAP")]
        assert {g.split(",")[0] for g in gaps} == expected, result.stdout
        assert all("retention outran the link outage" in g for g in gaps)

    # The records after the gap crossed, once each, behind the ones copied before it.
    vessel_now = topic_records(mirrored.vessel_brokers, topic)
    shore_now = topic_records(mirrored.shore_brokers, mirrored.shore(topic), read_committed=True)
    assert shore_now == {p: shore_before[p] + vessel_now[p] for p in vessel_now}

    # The fleet, which sees only the shore, reports the same losses, and no others.
    status_lost = {int(g.split()[4].rstrip(":")): int(g.split()[5]) for g in gaps}
    ends = {p: end for p, (_, end) in _end_offsets(mirrored.vessel_brokers, topic).items()}
    assert _fleet_gaps(mirrored, capfd) == sorted(
        f"coldwake-fleet: GAP vessel {mirrored.mirror.alias} topic {topic} partition {p}: {n} "
        "records lost, deleted on the vessel before MirrorMaker copied them ashore (MirrorMaker "
        f"has copied up to vessel offset {ends[p]}; the fleet has {ends[p] - n} of them)"
        for p, n in status_lost.items()
    )


def _fleet_gaps(m: Mirrored, capfd: pytest.CaptureFixture[str]) -> list[str]:
    """Run the fleet's source over the whole shore to its end; its GAP lines on the vessel."""
    source = FleetKafkaSource(KafkaSettings(m.shore_brokers, 30.0, True, 5.0, "coldwake-test"))
    capfd.readouterr()
    parts = {name: source.build_part("fleet-in", name, None) for name in source.list_parts()}
    try:
        live, deadline = dict(parts), time.monotonic() + 120
        while live:
            for name, part in list(live.items()):
                try:
                    part.next_batch()
                except StopIteration:
                    del live[name]
            assert time.monotonic() < deadline, f"slots {sorted(live)} not ended in 120 s"
            time.sleep(0.01)
    finally:
        for part in parts.values():
            part.close()
    prefix = f"coldwake-fleet: GAP vessel {m.mirror.alias} "
    return sorted(line for line in capfd.readouterr().err.splitlines() if line.startswith(prefix))


def _wait_drained(m: Mirrored, topic: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        [status] = mirroring.mirror_status(m.home, ages=False)
        if all(p.waiting == 0 for p in status.partitions if p.topic == topic):
            return
        assert time.monotonic() < deadline, f"{topic} still waiting after {timeout:.0f} s"
        time.sleep(1)
