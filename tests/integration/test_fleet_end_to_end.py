"""The fleet flow end to end: 2 vessel clusters -> MirrorMaker 2 -> shore -> `flows.fleet`.

Real processes throughout, started once for the module (``up --vessels 2
--vessel-nodes 1``): two vessel clusters, the shore, the link proxy and one
MirrorMaker 2 per vessel. Each vessel runs `flows.vessel` (Kafka in, Kafka out) on a
simulated voyage; vessel1's link is cut between its two legs, and its second leg runs
while the link is down. Once the link is back and the shore has caught up, the fleet
flow reads the shore and its tables must equal, byte for byte, those of a run where
the link never failed: the fleet flow on files holding every record of both vessels'
mirrored topics, read straight from the vessel clusters. The fleet's compacted
`fleet.<table>` topics must hold the same rows as its tables.

The voyages are 24 h of 60 reefers each, of which the vessels have sent the first
80 % (the voyage goes on: some alerts are still open). About 2 minutes on 2 cores.
"""

from __future__ import annotations

import contextlib
import itertools
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from confluent_kafka import KafkaException

from deploy.kafka import commands, mirroring
from deploy.kafka.layout import STATE_FILE
from deploy.kafka.mirror import mirrored_topics
from flows.contract import ALERTS, CONTAINER_STATE, POSITION, WINDOWS
from flows.edges.kafka.producer import produce_file
from flows.fleet_core.names import TABLES, VESSELS, FleetTable
from flows.sim import SimConfig, write_files
from tests.integration.kafka_io import ROOT, flow_env
from tests.support.kafka import Partitions, kill_strays, topic_records, topics_records

pytestmark = pytest.mark.integration

#: The six vessel topics each MirrorMaker copies ashore as `<alias>.<topic>`.
TOPICS = mirrored_topics(raw=False)
#: Topics that vessel1's second leg must add records to (alerts and late need not).
GROWING = (POSITION, WINDOWS.topic, CONTAINER_STATE.topic)
CUT, SENT = 0.4, 0.8  # vessel1's link goes down after 40 % of its records; both send 80 %
CONTAINERS, HOURS = 60, 24.0
#: The vessels, named after the ids their simulated voyages carry (seeds 11 and 12), so
#: that the mirror prefix ashore is the vessel id, as in production.
VESSEL1, VESSEL2 = "IMO9536583", "IMO9997658"
SEEDS = {VESSEL1: 11, VESSEL2: 12}
FLOW_TIMEOUT_S = 300.0
CATCH_UP_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class Fleet:
    """The module's deployment: two mirrored vessels and the shore."""

    home: Path
    vessels: dict[str, str]  # vessel cluster name -> its bootstrap servers
    aliases: dict[str, str]  # vessel cluster name -> its MirrorMaker alias
    shore: str

    def shore_topic(self, vessel: str, topic: str) -> str:
        """Where MirrorMaker puts `vessel`'s `topic` ashore."""
        return f"{self.aliases[vessel]}.{topic}"

    def vessel_topics(self, vessel: str) -> dict[str, Partitions]:
        """Every record of the vessel's mirrored topics, on its own cluster."""
        return topics_records(self.vessels[vessel], TOPICS)

    def shore_copies(self, vessel: str) -> dict[str, Partitions]:
        """Every committed record of the vessel's topics ashore, by vessel topic."""
        names = {t: self.shore_topic(vessel, t) for t in TOPICS}
        got = topics_records(self.shore, list(names.values()), read_committed=True)
        return {t: got[name] for t, name in names.items()}


@dataclass(frozen=True, slots=True)
class Voyage:
    """What the vessels did and what the shore saw meanwhile.

    Attributes:
        vessel_ids: Vessel cluster name -> the vessel id its records carry.
        at_cut: vessel1's topics ashore when its link was cut (equal to its own then).
        held: vessel1's topics ashore after its second leg, the link still down.
        vessel1_after: vessel1's own topics after its second leg.
        waiting: `mirror status` while the link was down: vessel1's topic -> records waiting.
        catch_up_s: Seconds from restoring the link until the shore equalled both vessels.
    """

    vessel_ids: dict[str, str]
    at_cut: dict[str, Partitions]
    held: dict[str, Partitions]
    vessel1_after: dict[str, Partitions]
    waiting: dict[str, int]
    catch_up_s: float


def _count(parts: Partitions) -> int:
    return sum(len(records) for records in parts.values())


# -- processes -----------------------------------------------------------------------


@contextlib.contextmanager
def _processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes started in the block; any still running at its end is killed by PID."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()


def _start(
    procs: list[subprocess.Popen[bytes]], args: list[str], data_dir: Path, **settings: str
) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bytewax.run", *args],
        cwd=ROOT,
        env=flow_env(data_dir, **settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    procs.append(proc)
    return proc


def _finish(proc: subprocess.Popen[bytes], what: str) -> str:
    """Wait for a flow; fail naming it, with its stderr, unless it exited 0."""
    try:
        _, err = proc.communicate(timeout=FLOW_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what} still running after {FLOW_TIMEOUT_S:.0f} s")
    text = err.decode(errors="replace")
    assert proc.returncode == 0, f"{what} exited {proc.returncode}:\n{text[-3000:]}"
    return text


def _vessel_flow(
    procs: list[subprocess.Popen[bytes]], fleet: Fleet, vessel: str, tmp: Path
) -> subprocess.Popen[bytes]:
    """`flows.vessel` on `vessel`'s cluster: its input topics to their end, Kafka out;
    data and recovery directories under `tmp/vessel` (a second run resumes)."""
    return _start(
        procs,
        ["flows.vessel", "-r", str(tmp / vessel / "recovery"), "-s", "1", "-b", "0"],
        tmp / vessel / "data",
        input="kafka",
        output="kafka",
        brokers=fleet.vessels[vessel],
        kafka_stop_at_end="1",
    )


def _fleet_flow(data: Path, workers: int, what: str, **settings: str) -> str:
    with _processes() as procs:
        started = time.monotonic()
        log = _finish(_start(procs, ["flows.fleet", "-w", str(workers)], data, **settings), what)
        print(f"{what}: {time.monotonic() - started:.1f} s")
        return log


def _dumps(data: Path) -> dict[str, bytes]:
    """`python -m state.query DATA dump TABLE` of every fleet table."""
    out: dict[str, bytes] = {}
    for table in TABLES:
        done = subprocess.run(
            [sys.executable, "-m", "state.query", str(data), "dump", table.name],
            cwd=ROOT,
            env=flow_env(data),
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"dump {table.name} of {data}: {done.stderr.decode()}"
        out[table.name] = done.stdout
    return out


# -- the shore catching up -----------------------------------------------------------


def _differences(fleet: Fleet, vessels: list[str]) -> list[str]:
    """What keeps each shore topic from equalling its vessel topic (empty: all equal)."""
    problems: list[str] = []
    for vessel in vessels:
        own = fleet.vessel_topics(vessel)
        try:
            shore = fleet.shore_copies(vessel)
        except KafkaException as e:  # not created ashore yet
            problems.append(f"{vessel}: {e}")
            continue
        problems += [
            f"{vessel} {t}: vessel {_count(own[t])} records, shore {_count(shore[t])}"
            for t in TOPICS
            if own[t] != shore[t]
        ]
    return problems


def _wait_caught_up(fleet: Fleet, vessels: list[str], timeout: float = CATCH_UP_TIMEOUT_S) -> float:
    """Wait until every shore topic equals its vessel topic, record for record, partition
    for partition; return the seconds it took."""
    started = time.monotonic()
    while True:
        problems = _differences(fleet, vessels)
        if not problems:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            pytest.fail(
                f"the shore still differs from the vessels after {timeout:.0f} s: {problems}"
            )
        time.sleep(1.0)


# -- fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Two mirrored vessels of 1 node, the shore, the link and 2 MirrorMakers."""
    home = tmp_path_factory.mktemp("fleet-kafka")
    try:
        started = time.monotonic()
        dep = commands.up(home, vessels=list(SEEDS), vessel_nodes=1).deployment
        print(f"deployment up in {time.monotonic() - started:.1f} s")
        names = [v.name for v in dep.vessels]
        assert names == list(SEEDS), names
        yield Fleet(
            home,
            {v.name: v.bootstrap for v in dep.vessels},
            {n: dep.mirror(n).alias for n in names},
            dep.shore.bootstrap,
        )
    finally:
        try:
            if (home / STATE_FILE).exists():
                commands.down(home, timeout=20.0)
        finally:
            strays = kill_strays(home)
        assert not strays, f"processes {strays} of {home} outlived down(); killed them"


def _legs(vessel: str, tmp: Path) -> tuple[str, list[Path]]:
    """The vessel's id and its records as sent: vessel1 in two legs, vessel2 in one."""
    cfg = SimConfig(seed=SEEDS[vessel], containers=CONTAINERS, hours=HOURS)
    records, _ = write_files(cfg, tmp / vessel)
    lines = records.read_bytes().splitlines(keepends=True)
    ids = set()
    for line in lines:
        with contextlib.suppress(orjson.JSONDecodeError):
            obj = orjson.loads(line)
            if isinstance(obj, dict) and obj.get("type") == POSITION:
                ids.add(obj["vessel_id"])
    assert ids == {vessel}, f"{vessel}: the simulator's positions name {ids}"
    cuts = [0, round(CUT * len(lines)), round(SENT * len(lines))]
    if vessel != VESSEL1:
        cuts = [0, cuts[-1]]
    legs = []
    for i, (start, end) in enumerate(itertools.pairwise(cuts)):
        leg = tmp / vessel / f"leg{i + 1}.jsonl"
        leg.write_bytes(b"".join(lines[start:end]))
        legs.append(leg)
    return ids.pop(), legs


@pytest.fixture(scope="module")
def voyage(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Voyage:
    """Both voyages through their vessel flows, vessel1's second leg with its link down;
    returns once the link is back and the shore equals both vessels."""
    tmp = tmp_path_factory.mktemp("voyage")
    vessel_ids: dict[str, str] = {}
    legs: dict[str, list[Path]] = {}
    for vessel in fleet.vessels:
        vessel_ids[vessel], legs[vessel] = _legs(vessel, tmp)
    assert len(set(vessel_ids.values())) == 2, f"the vessels share an id: {vessel_ids}"

    # First leg of both, link up.
    started = time.monotonic()
    for vessel in fleet.vessels:
        produce_file(legs[vessel][0], fleet.vessels[vessel])
    with _processes() as procs:
        runs = {vessel: _vessel_flow(procs, fleet, vessel, tmp) for vessel in fleet.vessels}
        for vessel, proc in runs.items():
            _finish(proc, f"{vessel}'s vessel flow (first leg)")
    print(f"first legs of both vessels: {time.monotonic() - started:.1f} s")
    print(f"shore caught up with both in {_wait_caught_up(fleet, list(fleet.vessels)):.1f} s")

    # vessel1's link goes down; its second leg runs and finishes offline.
    at_cut = fleet.shore_copies(VESSEL1)
    mirroring.set_link_mode(fleet.home, VESSEL1, "down")
    started = time.monotonic()
    produce_file(legs[VESSEL1][1], fleet.vessels[VESSEL1])
    with _processes() as procs:
        proc = _vessel_flow(procs, fleet, VESSEL1, tmp)
        log = _finish(proc, "vessel1's vessel flow (second leg, link down)")
    assert "resuming from the recovery state" in log, log[-2000:]
    print(f"vessel1's second leg, link down: {time.monotonic() - started:.1f} s")
    time.sleep(5.0)  # MirrorMaker keeps trying meanwhile
    held = fleet.shore_copies(VESSEL1)
    vessel1_after = fleet.vessel_topics(VESSEL1)
    [status] = [s for s in mirroring.mirror_status(fleet.home, ages=False) if s.vessel == VESSEL1]
    waiting = {t: sum(p.waiting for p in status.partitions if p.topic == t) for t in TOPICS}

    mirroring.set_link_mode(fleet.home, VESSEL1, "up")
    catch_up_s = _wait_caught_up(fleet, list(fleet.vessels))
    print(f"link up: the shore caught up with vessel1's backlog in {catch_up_s:.1f} s")
    return Voyage(vessel_ids, at_cut, held, vessel1_after, waiting, catch_up_s)


@pytest.fixture(scope="module")
def shore_tables(
    fleet: Fleet, voyage: Voyage, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, bytes]:
    """The fleet flow on the shore cluster, to the ends the topics had at its start."""
    data = tmp_path_factory.mktemp("shore-fleet")
    log = _fleet_flow(
        data, 2, "the fleet flow on the shore", fleet_brokers=fleet.shore, kafka_stop_at_end="1"
    )
    assert "GAP" not in log, log[-3000:]
    return _dumps(data)


@pytest.fixture(scope="module")
def reference_tables(
    fleet: Fleet, voyage: Voyage, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, bytes]:
    """The run where the link never failed: the fleet flow on every record of both
    vessels' mirrored topics, read from the vessel clusters, one file per shore topic."""
    inputs = tmp_path_factory.mktemp("reference-in")
    for vessel in fleet.vessels:
        for topic, parts in fleet.vessel_topics(vessel).items():
            values = [v for p in sorted(parts) for _, v in parts[p] if v is not None]
            assert all(b"\n" not in v for v in values), f"{vessel} {topic}: a record spans lines"
            path = inputs / f"{fleet.shore_topic(vessel, topic)}.jsonl"
            path.write_bytes(b"".join(v + b"\n" for v in values))
    data = tmp_path_factory.mktemp("reference-fleet")
    _fleet_flow(data, 1, "the fleet flow on the vessels' records", input=f"file:{inputs}")
    return _dumps(data)


# -- tests ---------------------------------------------------------------------------


def test_the_cut_link_held_vessel1s_newest_records_back_until_it_was_restored(
    voyage: Voyage,
) -> None:
    for topic in TOPICS:
        before, during = _count(voyage.at_cut[topic]), _count(voyage.held[topic])
        assert voyage.held[topic] == voyage.at_cut[topic], (
            f"vessel1 {topic}: the shore went from {before} to {during} records "
            "while the link was down"
        )
        added = _count(voyage.vessel1_after[topic]) - before
        assert voyage.waiting[topic] == added, (
            f"vessel1 {topic}: mirror status says {voyage.waiting[topic]} waiting, "
            f"the second leg added {added}"
        )
    for topic in GROWING:
        assert voyage.waiting[topic] > 0, f"vessel1's second leg added nothing to {topic}"
    # The fixture has waited for the shore to equal both vessels since.
    assert voyage.catch_up_s < CATCH_UP_TIMEOUT_S
    assert _count(voyage.vessel1_after[ALERTS.topic]) > 0


def test_every_fleet_table_has_rows_and_both_vessels_are_in_it(
    voyage: Voyage, shore_tables: dict[str, bytes]
) -> None:
    for table in TABLES:
        assert shore_tables[table.name].count(b"\n") > 0, f"fleet table {table.name} is empty"
    rows = {
        obj["key"]: obj["value"]
        for obj in map(orjson.loads, shore_tables[VESSELS.name].splitlines())
    }
    # Exactly the two vessels: their dead letters count under their own ids (the
    # mirror prefix), not under a row of their own.
    assert sorted(rows) == sorted(SEEDS), sorted(rows)
    assert all(row["last_heard"] is not None for row in rows.values()), rows
    assert sum(row["dead_letters"] for row in rows.values()) > 0, rows


@pytest.mark.parametrize("table", [t.name for t in TABLES])
def test_each_fleet_table_equals_that_of_a_run_where_the_link_never_failed(
    table: str, shore_tables: dict[str, bytes], reference_tables: dict[str, bytes]
) -> None:
    shore, reference = shore_tables[table].splitlines(), reference_tables[table].splitlines()
    if shore != reference:
        only_shore = sorted(set(shore) - set(reference))
        only_reference = sorted(set(reference) - set(shore))
        pytest.fail(
            f"fleet table {table}: {len(shore)} rows after the outage, {len(reference)} in the "
            f"run without one; only after the outage (first 3): {only_shore[:3]}; only "
            f"without it (first 3): {only_reference[:3]}"
        )
    assert shore_tables[table] == reference_tables[table], f"fleet table {table}: bytes differ"


def _compacted(parts: Partitions) -> dict[str, bytes]:
    """A compacted topic's table: the last value per key, a tombstone deleting it."""
    rows: dict[str, bytes] = {}
    for records in parts.values():
        for key, value in records:
            assert key is not None, "a fleet table record without a key"
            if value is None:
                rows.pop(key.decode(), None)
            else:
                rows[key.decode()] = value
    return rows


def _dumped_rows(dump: bytes) -> dict[str, bytes]:
    """A dump's rows, `key -> the stored value`, byte for byte."""
    rows: dict[str, bytes] = {}
    for line in dump.splitlines():
        key = orjson.loads(line)["key"]
        head = b'{"key":' + orjson.dumps(key) + b',"value":'
        assert line.startswith(head) and line.endswith(b"}"), line
        rows[key] = line[len(head) : -1]
    return rows


@pytest.mark.parametrize("table", TABLES, ids=[t.name for t in TABLES])
def test_each_fleet_topic_compacts_to_its_table(
    table: FleetTable, fleet: Fleet, shore_tables: dict[str, bytes]
) -> None:
    topic = _compacted(topic_records(fleet.shore, table.topic))
    rows = _dumped_rows(shore_tables[table.name])
    assert topic.keys() == rows.keys(), (
        f"{table.topic} compacts to {len(topic)} keys, the {table.name} table has "
        f"{len(rows)}; only in the topic: {sorted(topic.keys() - rows.keys())[:5]}, only in "
        f"the table: {sorted(rows.keys() - topic.keys())[:5]}"
    )
    for key, row in rows.items():
        assert topic[key] == row, f"{table.topic} {key}: {topic[key]!r}, the table: {row!r}"
