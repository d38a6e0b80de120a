"""The launcher tells a JVM that is starting from one that exited, and leaves none behind.

A process is judged alive from its first instant: in CI a broker checked right after
its start was once reported as "exited while starting" (its ``/proc/PID/cmdline`` was
still empty inside ``execve``), and the JVM it went on to become outlived the run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.kafka import commands
from deploy.kafka.errors import LauncherError
from deploy.kafka.layout import Broker
from deploy.kafka.processes import pids_naming, process_alive, start_background, stop

pytestmark = pytest.mark.integration


def _cmd(marker: Path) -> list[str]:
    # Like a broker: one long-running process with its config file among its arguments.
    return [sys.executable, "-c", "import time; time.sleep(30)", str(marker)]


def test_a_process_is_alive_from_the_moment_it_is_started(tmp_path: Path) -> None:
    broker = Broker("vessel", 1, 0, 0, tmp_path)
    broker.properties.touch()
    for _ in range(100):
        broker.pid = start_background(
            _cmd(broker.properties), cwd=tmp_path, console_log=broker.console_log
        )
        try:
            assert process_alive(broker.pid, broker.properties)
        finally:
            assert stop([broker], timeout=5.0) == [broker]
        assert broker.pid is None


def test_a_process_started_elsewhere_is_alive_while_it_execs(tmp_path: Path) -> None:
    marker = tmp_path / "server.properties"
    for _ in range(100):
        # Not started by the launcher, so only its command line can tell who it is.
        proc = subprocess.Popen(_cmd(marker), stdin=subprocess.DEVNULL)
        try:
            assert process_alive(proc.pid, marker)
        finally:
            proc.kill()
            proc.wait()
        assert not process_alive(proc.pid, marker)


def test_a_recorded_pid_of_another_program_is_not_alive(tmp_path: Path) -> None:
    assert not process_alive(os.getpid(), tmp_path / "server.properties")


def test_a_failed_up_leaves_no_jvm_running(tmp_path: Path) -> None:
    home = tmp_path / "kafka"

    with pytest.raises(LauncherError, match="not ready"):
        commands.up(home, timeout=1.0)  # the brokers cannot register in time

    assert pids_naming(home) == []
    assert [s.state for s in commands.status(home)] == ["down"] * 4
