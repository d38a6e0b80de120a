"""Kafka helpers for tests: empty contract topics per test, and no broker left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from deploy.kafka.admin import admin_client, create_topics
from deploy.kafka.errors import LauncherError
from deploy.kafka.processes import pids_naming
from deploy.kafka.topics import contract_topics


def reset_topics(bootstrap: str, timeout: float = 60.0) -> None:
    """Delete and recreate the contract's topics, so that each test starts empty."""
    specs = contract_topics()
    admin = admin_client(bootstrap)
    names = [s.name for s in specs]
    existing = set(admin.list_topics(timeout=10).topics)
    doomed = [n for n in names if n in existing]
    if doomed:
        for fut in admin.delete_topics(doomed, operation_timeout=timeout).values():
            fut.result(timeout=timeout)
    deadline = time.monotonic() + timeout
    while set(names) & set(admin.list_topics(timeout=10).topics):
        if time.monotonic() > deadline:
            raise TimeoutError("contract topics were not deleted in time")
        time.sleep(0.2)
    while True:  # a just-deleted name can be refused for a moment
        try:
            create_topics(bootstrap, specs, timeout=timeout)
            return
        except LauncherError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def kill_strays(home: Path, timeout: float = 10.0) -> list[int]:
    """SIGKILL every process still running from the deployment in ``home``; return their PIDs.

    A backstop after ``down``: it finds JVMs by the config paths on their command lines,
    whatever ``cluster.json`` recorded, so a launcher bug cannot leave one running.
    """
    strays = pids_naming(home)
    for pid in strays:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while set(strays) & set(pids_naming(home)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return strays
