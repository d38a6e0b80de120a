"""The query API's readers when a writer dies, restarts, or its table is deleted."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from state.api.names import HEALTHZ_ROUTE, READYZ_ROUTE
from state.api.stores import Stores
from state.store import TableWriter
from state.table import table_path
from tests.integration.api_client import api_env, start_api
from tests.integration.kafka_io import ROOT

pytestmark = pytest.mark.integration

KNOWN = "CAIU0436357"
ROWS = "/api/tables/container-state/rows"


def test_a_table_deleted_under_the_server_is_503_until_it_is_back(tmp_path: Path) -> None:
    with TableWriter(table_path(tmp_path)) as writer:
        writer.apply(7, [(KNOWN, b'{"container_id":"CAIU0436357"}')])
    api = start_api(tmp_path)
    try:
        assert api.get(f"{ROWS}/{KNOWN}").position == 7
        shutil.rmtree(table_path(tmp_path))  # as a restore would, before rebuilding it
        ready = api.get(READYZ_ROUTE)
        assert (ready.status, ready.headers["retry-after"], ready.json()["ready"]) == (
            503,
            "1",
            False,
        )
        assert ready.json()["tables"][0]["error"].startswith("no container-state table at")
        gone = api.get(f"{ROWS}/{KNOWN}?min_position=0")
        assert (gone.status, gone.headers["retry-after"], gone.position) == (503, "1", 7)
        assert gone.json()["error"].startswith("the vessel store cannot be read now: no ")
        assert api.get(HEALTHZ_ROUTE).status == 200
        with TableWriter(table_path(tmp_path)) as writer:
            writer.apply(9, [(KNOWN, b"{}")])
            back = api.get(f"{ROWS}/{KNOWN}?min_position=9")
        assert (back.status, back.body, back.position) == (200, b"{}", 9)
        assert api.get(READYZ_ROUTE).json()["ready"] is True
    finally:
        api.stop()


_WRITER = """
import sys, time
from pathlib import Path
from state.store import TableWriter
writer = TableWriter(Path(sys.argv[1]))
writer.apply(int(sys.argv[2]), [("K", sys.argv[3].encode())])
writer.flush()
print("written", flush=True)
time.sleep(600) if sys.argv[4] == "hang" else writer.close()
"""


def test_stores_kept_across_a_kill_9_of_the_writer_read_what_it_wrote_next(tmp_path: Path) -> None:
    def write(position: int, value: str, then: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(table_path(tmp_path)), str(position), value, then],
            cwd=ROOT,
            env=api_env(),
            stdout=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stdout.readline() == b"written\n"
        proc.stdout.close()
        return proc

    first = write(1, "v1", "hang")
    stores = Stores(tmp_path)
    try:
        ref = stores.resolve("container-state")
        assert stores.read(lambda view: view.get(ref, "K")) == (1, b"v1", True)
        first.kill()
        first.wait()
        write(2, "v2", "close").wait()
        # The secondary keeps the killed writer's memtable: a RocksDB Get said v1, position 1.
        assert stores.read(lambda view: view.get(ref, "K"), need=2) == (2, b"v2", True)
        write(3, "v3", "close").wait()
        assert stores.read(lambda view: view.get(ref, "K"), need=3) == (3, b"v3", True)
    finally:
        stores.close()
        if first.poll() is None:
            first.kill()
            first.wait()
