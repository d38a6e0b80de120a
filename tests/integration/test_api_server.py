"""`python -m state.api` over a vessel's table, written by the real flow while it is read.

One module-scoped run: the vessel flow (simulator, with recovery) writes the table;
the API starts as soon as the table exists and is read all along, across a `kill -9`
of the flow and its resume, without a restart of its own. The tests then check what
was seen during the run, and every endpoint on the finished table, against the
table read directly and values written out by hand.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from flows.contract import ALERT_KINDS
from flows.recovery import committed_epoch
from state.api.names import (
    ALERTS_ROUTE,
    CONTAINER_VIEW_ROUTE,
    CREW_VIEW_ROUTE,
    FLEET_VIEW_ROUTE,
    HEALTHZ_ROUTE,
    MAX_LIMIT,
    METRICS_ROUTE,
    OPENAPI_ROUTE,
    READYZ_ROUTE,
    ROW_ROUTE,
    ROWS_ROUTE,
    TABLES_ROUTE,
    UNMATCHED_ROUTE,
    VESSEL_ROUTE,
    VESSEL_VIEW_ROUTE,
    VESSELS_ROUTE,
)
from state.reader import TableReader, database_identity
from state.table import table_path
from tests.integration.api_client import Answer, ApiServer, start_api
from tests.integration.kafka_io import finish, start_flow

pytestmark = pytest.mark.integration

SIM = {"sim_containers": "200", "sim_hours": "96"}
#: The simulator's first container in key order (seed 7), and its vessel.
KNOWN, KNOWN_VESSEL = "CAIU0436357", "IMO9531129"
ABSENT = "ZZZU9999999"
ROWS = "/api/tables/container-state/rows"
#: A container-state row's fields, in the contract's order (docs/events.md).
FIELDS = [
    "container_id", "vessel_id", "ts", "setpoint_c", "temp_c", "power_kw", "return_c",
    "ambient_c", "humidity_pct", "co2_pct", "o2_pct", "co2_setpoint_pct", "o2_setpoint_pct",
    "door_open", "defrost", "lat", "lon", "sog_kn", "open_alerts", "alert_ids",
]  # fmt: skip


@dataclass
class Run:
    """What the module's run saw."""

    api: ApiServer
    data: Path
    #: Every answer read during the run, in order.
    seen: list[Answer] = field(default_factory=list)
    reads_while_dead: int = 0
    #: Every open alert `/api/alerts` named during the run.
    alerts: dict[str, dict[str, str]] = field(default_factory=dict)
    #: `(min_position asked, seconds waited, answer)` while the resumed flow replayed.
    waited: tuple[int, float, Answer] | None = None
    final: int = 0


def _read(run: Run) -> None:
    for path in (f"{ROWS}?limit=50", f"{ROWS}/{KNOWN}", TABLES_ROUTE, f"{ALERTS_ROUTE}?limit=5"):
        answer = run.api.get(path)
        assert answer.status in (200, 404), answer  # the known row may come later
        assert isinstance(answer.json(), dict)
        run.seen.append(answer)
        for alert in answer.json().get("alerts", ()):
            run.alerts[alert["alert_id"]] = alert


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    base = tmp_path_factory.mktemp("api-vessel")
    data, recovery = base / "data", base / "recovery"
    flow = start_flow(data, recovery, **SIM)
    api: ApiServer | None = None
    try:
        deadline = time.monotonic() + 60
        while database_identity(table_path(data)) is None:
            assert flow.poll() is None and time.monotonic() < deadline, "no table appeared"
            time.sleep(0.05)
        api = start_api(data)
        result = Run(api, data)
        # Read while it writes, until a snapshot is committed: then kill it.
        while (committed_epoch(recovery) or 0) < 2 or len(result.seen) < 8:
            assert flow.poll() is None, "the flow ended before the kill"
            _read(result)
        flow.send_signal(signal.SIGKILL)
        flow.wait()
        assert flow.stderr is not None
        flow.stderr.close()
        dead_until = time.monotonic() + 1.0
        while time.monotonic() < dead_until:
            _read(result)
            result.reads_while_dead += 1
        flow = start_flow(data, recovery, **SIM)
        # The resumed flow replays from its snapshot: the table moves on only after it.
        asked = api.get(TABLES_ROUTE).position + 1
        started = time.monotonic()
        answer = api.get(f"{TABLES_ROUTE}?min_position={asked}&wait_ms=10000")
        result.waited = (asked, time.monotonic() - started, answer)
        while flow.poll() is None:
            _read(result)
        assert "resuming" in finish(flow)
        with TableReader(table_path(data)) as table:
            result.final = table.position() or 0
        # Answers may lag the writer by up to 100 ms: wait for its last write.
        assert api.get(f"{TABLES_ROUTE}?min_position={result.final}").status == 200
        yield result
    finally:
        if flow.poll() is None:
            flow.kill()
            flow.wait()
        if api is not None:
            api.stop()


def _table(run: Run) -> list[tuple[str, bytes]]:
    with TableReader(table_path(run.data)) as table:
        return list(table.items())


def test_reads_during_the_run_and_across_kill_9_stay_valid_and_never_go_back(run: Run) -> None:
    positions = [answer.position for answer in run.seen]
    assert positions == sorted(positions), "a position went back"
    assert positions[0] < positions[-1] <= run.final  # its last write may come after
    assert run.api.get(TABLES_ROUTE).position == run.final
    assert run.reads_while_dead > 0
    assert {a.status for a in run.seen} <= {200, 404}
    # The server was never restarted: the same process answered throughout.
    assert run.api.proc.poll() is None
    print(
        f"\n{len(run.seen)} answers during the run ({run.reads_while_dead * 4} while the "
        f"flow was dead), positions {positions[0]} .. {positions[-1]}"
    )


def test_min_position_waits_for_a_position_reached_later(run: Run) -> None:
    assert run.waited is not None
    asked, seconds, answer = run.waited
    assert answer.status == 200, answer
    assert answer.position >= asked
    assert [t["position"] for t in answer.json()["tables"]] == [answer.position]
    assert seconds < 10
    print(f"\nmin_position {asked} reached after {seconds * 1000:.0f} ms")


def test_min_position_not_reached_in_time_is_503_with_retry_after(run: Run) -> None:
    started = time.monotonic()
    answer = run.api.get(f"{ROWS}/{KNOWN}?min_position={run.final + 1}&wait_ms=300")
    assert time.monotonic() - started >= 0.3
    assert (answer.status, answer.headers["retry-after"], answer.position) == (503, "1", run.final)
    assert answer.json() == {
        "error": f"the stores are at position {run.final}, below min_position "
        f"{run.final + 1}, after waiting 300 ms; retry later"
    }
    reached = run.api.get(f"{ROWS}/{KNOWN}?min_position={run.final}")
    assert (reached.status, reached.position) == (200, run.final)


def test_tables_and_one_row(run: Run) -> None:
    tables = run.api.get(TABLES_ROUTE)
    assert (tables.status, tables.position, tables.headers["content-type"]) == (
        200,
        run.final,
        "application/json",
    )
    assert tables.json() == {
        "tables": [
            {
                "name": "container-state",
                "topic": "reefer.container-state",
                "store": "vessel",
                "key": "container_id",
                "rows": 200,
                "position": run.final,
            }
        ]
    }
    row = run.api.get(f"{ROWS}/{KNOWN}")
    assert row.status == 200
    assert row.body == dict(_table(run))[KNOWN]  # the stored bytes, verbatim
    assert list(row.json()) == FIELDS
    assert (row.json()["container_id"], row.json()["vessel_id"]) == (KNOWN, KNOWN_VESSEL)
    by_topic = run.api.get(f"/api/tables/reefer.container-state/rows/{KNOWN}")
    assert by_topic.body == row.body
    absent = run.api.get(f"{ROWS}/{ABSENT}")
    assert (absent.status, absent.position) == (404, run.final)
    assert absent.json() == {"error": f"no row '{ABSENT}' in the vessel table container-state"}


def test_every_row_by_key_is_the_row_in_the_table(run: Run) -> None:
    # Point lookups, not only scans: a secondary that outlived a kill -9 of its writer
    # answered gets from a stale memtable until they went through iterators
    # (state.reader.lookup).
    for key, value in _table(run):
        answer = run.api.get(f"{ROWS}/{key}")
        assert (answer.status, answer.body) == (200, value), key


def _pages(api: ApiServer, path: str, limit: int) -> tuple[list[tuple[str, bytes]], int]:
    rows: list[tuple[str, bytes]] = []
    after = ""
    pages = 0
    while True:
        sep = "&" if "?" in path else "?"
        answer = api.get(f"{path}{sep}limit={limit}{after}")
        assert answer.status == 200, answer
        page = answer.json()
        pages += 1
        rows += [(r["key"], orjson.dumps(r["value"])) for r in page["rows"]]
        if page["next"] is None:
            return rows, pages
        assert page["next"] == page["rows"][-1]["key"]
        after = f"&after={page['next']}"


def test_pages_in_key_order_return_every_row_once(run: Run) -> None:
    stored = [(k, orjson.dumps(orjson.loads(v))) for k, v in _table(run)]
    assert len(stored) == 200
    rows, pages = _pages(run.api, ROWS, 7)
    assert rows == stored
    assert pages == 29  # 28 full pages and one of 4: no empty last page
    caiu, _ = _pages(run.api, f"{ROWS}?prefix=CAIU", 10)
    assert caiu == [r for r in stored if r[0].startswith("CAIU")] and caiu
    first = run.api.get(f"{ROWS}?limit=1").json()
    assert (first["table"], first["rows"][0]["key"], first["next"]) == (
        "container-state",
        KNOWN,
        KNOWN,
    )
    assert run.api.get(f"{ROWS}?prefix=ZZZ").json() == {
        "table": "container-state",
        "rows": [],
        "next": None,
    }


def test_alerts_are_the_open_alerts_of_the_container_state_rows(run: Run) -> None:
    expected = sorted(
        (
            {"alert_id": row["alert_ids"][kind], "kind": kind}
            | {"vessel_id": row["vessel_id"], "container_id": row["container_id"]}
            for row in (orjson.loads(v) for _, v in _table(run))
            for kind in row["open_alerts"]
        ),
        key=lambda a: a["alert_id"],
    )
    answer = run.api.get(f"{ALERTS_ROUTE}?state=open&limit={MAX_LIMIT}")
    assert answer.json() == {"alerts": expected, "next": None}
    for kind in ALERT_KINDS[:3]:
        of_kind = run.api.get(f"{ALERTS_ROUTE}?kind={kind}&vessel={KNOWN_VESSEL}").json()
        assert of_kind["alerts"] == [a for a in expected if a["kind"] == kind][:100]


def test_alerts_seen_during_the_run_are_alerts_the_flow_opened(run: Run) -> None:
    lines = (run.data / "out" / "alerts.jsonl").read_bytes().splitlines()
    opened = {
        a["alert_id"]: {k: a[k] for k in ("alert_id", "kind", "vessel_id", "container_id")}
        for a in map(orjson.loads, lines)
        if a["state"] == "open"
    }
    assert run.alerts, "no open alert seen during the run"
    for alert_id, alert in run.alerts.items():
        assert opened[alert_id] == alert


def test_vessel_endpoints_say_they_are_fleet_endpoints(run: Run) -> None:
    for path in (VESSELS_ROUTE, f"{VESSELS_ROUTE}/{KNOWN_VESSEL}"):
        answer = run.api.get(path)
        assert answer.status == 404
        assert answer.json()["error"].startswith("vessels are a fleet endpoint")


def test_health_readiness_and_openapi(run: Run) -> None:
    assert run.api.get(HEALTHZ_ROUTE).json() == {"status": "ok"}
    ready = run.api.get(READYZ_ROUTE)
    body = ready.json()
    assert (ready.status, body["ready"], body["position"]) == (200, True, run.final)
    [line] = body["tables"]
    assert (line["name"], line["position"], line["error"]) == ("container-state", run.final, None)
    assert 0 <= line["caught_up_s_ago"] < 1
    spec = run.api.get(OPENAPI_ROUTE).json()
    assert set(spec["paths"]) == {
        TABLES_ROUTE, ROW_ROUTE, ROWS_ROUTE, ALERTS_ROUTE, VESSELS_ROUTE, VESSEL_ROUTE,
        HEALTHZ_ROUTE, READYZ_ROUTE, FLEET_VIEW_ROUTE, CONTAINER_VIEW_ROUTE, VESSEL_VIEW_ROUTE,
        CREW_VIEW_ROUTE,
    }  # fmt: skip
    assert all(list(methods) == ["get"] for methods in spec["paths"].values())


def _samples(api: ApiServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = api.get(METRICS_ROUTE).body.decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_and_time_requests_by_route(run: Run) -> None:
    def ok(status: str, route: str = ROW_ROUTE) -> tuple[str, tuple[tuple[str, str], ...]]:
        labels = {"method": "GET", "route": route, "status": status}
        return "coldwake_api_requests_total", tuple(sorted(labels.items()))

    timed = ("coldwake_api_request_duration_seconds_count", (("route", ROW_ROUTE),))
    before = _samples(run.api)
    for _ in range(5):
        run.api.get(f"{ROWS}/{KNOWN}")
    for _ in range(2):
        run.api.get(f"{ROWS}/{ABSENT}")
    for _ in range(3):
        run.api.get("/no/such/route")
    after = _samples(run.api)
    assert after[ok("200")] - before.get(ok("200"), 0) == 5
    assert after[ok("404")] - before.get(ok("404"), 0) == 2
    assert after[ok("404", UNMATCHED_ROUTE)] - before.get(ok("404", UNMATCHED_ROUTE), 0) == 3
    assert after[timed] - before[timed] == 7
    assert after[("coldwake_api_position", ())] == run.final


def test_a_get_answers_in_milliseconds(run: Run) -> None:
    # A figure for the report, not a timed test: the bound only catches a pathology
    # (such as Nagle's algorithm holding every answer ~40 ms).
    times = []
    for _ in range(300):
        started = time.perf_counter()
        assert run.api.get(f"{ROWS}/{KNOWN}").status == 200
        times.append(time.perf_counter() - started)
    times.sort()
    p50, p99 = times[150] * 1000, times[296] * 1000
    print(f"\nGET one row: p50 {p50:.2f} ms, p99 {p99:.2f} ms over 300 (keep-alive, 1 client)")
    assert p50 < 30
