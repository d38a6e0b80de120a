"""The README's quickstart as a new user runs it: the default job, then the query example."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import orjson

from flows.contract import ALERT_KINDS
from tests.integration.kafka_io import ROOT, finish, start_flow


def test_the_default_job_raises_every_alert_kind_and_the_readme_query_finds_its_container(
    tmp_path: Path,
) -> None:
    err = finish(start_flow(tmp_path))  # `python -m bytewax.run flows.vessel`, defaults
    assert err.splitlines()[0].startswith("coldwake: starting afresh: reading the simulator")
    for kind in ALERT_KINDS:
        [line] = [x for x in err.splitlines() if x.strip().startswith(f"coldwake:     {kind} ")]
        opened = int(line.split()[2].replace(",", ""))
        assert opened >= 1, line

    readme = (ROOT / "README.md").read_text()
    [cid] = re.findall(r"python -m state\.query data get (\w+) --pretty", readme)
    done = subprocess.run(
        [sys.executable, "-m", "state.query", str(tmp_path), "get", cid],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout)["container_id"] == cid
