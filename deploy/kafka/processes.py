"""The JVMs the launcher starts: starting them detached, telling whether they run, stopping them.

Whether a recorded PID is still "our" process is decided in two ways:

* A process started by *this* Python process is judged by its :class:`subprocess.Popen`
  alone. Until it is reaped its PID cannot be reused, so ``poll()`` is exact, at every
  moment, including the first milliseconds of its life.
* A PID read from ``cluster.json`` (another process started it) is trusted only if
  ``/proc/PID/cmdline`` names the node's config file: after a reboot or a crash the PID
  may belong to an unrelated process, which must never be signalled.

The second check alone is wrong for a process that has just been started: ``Popen``
returns as soon as the child's ``execve`` has closed its close-on-exec pipe, and the
kernel maps the new program's arguments only after that. For a moment the child's
``cmdline`` is empty, exactly as a zombie's is, and a broker that went on to start
was reported as "exited while starting". An empty ``cmdline`` of a live, non-kernel
process is therefore re-read briefly rather than taken as an answer. (A node that
another launcher is starting at this very instant, still before its ``execve``, reads
as not running; only ``status`` can see that, the other commands wait for the lock.)

MirrorMaker 2 and other Kafka tools reuse :func:`start_background` and
:func:`process_alive`.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Final, Protocol, TypeVar

from deploy.kafka.errors import LauncherError

log: Final = logging.getLogger("deploy.kafka")

PROC: Final = Path("/proc")
#: How long an empty ``cmdline`` of a live process is taken for an ``execve`` under way.
EXEC_GRACE_S: Final = 2.0
_PF_KTHREAD: Final = 0x00200000  # /proc/PID/stat flags: a kernel thread (no cmdline ever)


class Daemon(Protocol):
    """A long-running process of a deployment: a node, the link proxy, a MirrorMaker."""

    pid: int | None

    @property
    def name(self) -> str:
        """Human name for messages."""

    @property
    def marker(self) -> Path:
        """An argument of its command line that no other process has."""


D = TypeVar("D", bound=Daemon)

# Popen objects of the processes this process started, by PID: they decide liveness
# exactly (see the module docstring) and are reaped here, leaving no zombies.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def start_background(
    cmd: Sequence[str], *, cwd: Path, console_log: Path, env: Mapping[str, str] | None = None
) -> int:
    """Start a long-running process detached from the launcher; return its PID.

    Args:
        cmd: The command, e.g. from :func:`deploy.kafka.jars.java_cmd`.
        cwd: Its working directory.
        console_log: File that gets its stdout and stderr (appended).
        env: Variables to set on top of the launcher's environment.
    """
    with console_log.open("ab") as console:
        # A session of its own: Ctrl-C in the terminal that ran `up` must not stop the
        # clusters, which are meant to outlive the launcher. Popen closes every other
        # descriptor (close_fds), so the JVM holds no launcher lock or pipe.
        proc = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=None if env is None else {**os.environ, **env},
            start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    return proc.pid


def process_alive(pid: int | None, marker: Path) -> bool:
    """Whether ``pid`` is alive and really is the process started with ``marker``.

    Args:
        pid: A recorded PID, or None.
        marker: An argument (a config file path) the process was started with; checked
            on Linux for processes this Python process did not start.
    """
    if pid is None:
        return False
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _CHILDREN[pid]  # reaped: from now on the PID may be anyone's
        return False
    if not PROC.is_dir():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return os.fsencode(str(marker)) in _argv(pid)


def _argv(pid: int) -> list[bytes]:
    """The arguments of a live process; empty when it is gone, a zombie or a kernel thread."""
    deadline = time.monotonic() + EXEC_GRACE_S
    while True:
        try:
            raw = (PROC / str(pid) / "cmdline").read_bytes()
            stat = (PROC / str(pid) / "stat").read_text()
        except OSError:
            return []
        if raw:
            return raw.split(b"\0")
        # After the command name, which may hold spaces and parentheses: state, ppid,
        # pgrp, session, tty, tpgid, flags.
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[0] in ("Z", "X") or int(fields[6]) & _PF_KTHREAD:
            return []
        if time.monotonic() > deadline:
            return []
        time.sleep(0.005)  # inside execve(): its arguments are not mapped yet


def pids_naming(root: Path) -> list[int]:
    """Processes of this user whose command line has an argument inside ``root``.

    Finds a JVM whatever its recorded PID says, e.g. to prove that none outlived a test.
    Empty where there is no ``/proc``.
    """
    prefix = os.fsencode(str(root.resolve())) + b"/"
    uid = os.getuid()
    found = []
    for entry in PROC.glob("[0-9]*") if PROC.is_dir() else ():
        try:
            if entry.stat().st_uid != uid:
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.startswith(prefix) for a in argv) and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return sorted(found)


def running_pid(daemon: Daemon) -> int | None:
    """The PID of the daemon if it is alive (see :func:`process_alive`), else None."""
    return daemon.pid if process_alive(daemon.pid, daemon.marker) else None


def send_signal(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to ``pid``; a process that is already gone is no error."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def stop(daemons: Sequence[D], timeout: float) -> list[D]:
    """SIGTERM the live daemons (nodes, proxy, mirrors), SIGKILL those alive after ``timeout``.

    Returns:
        The daemons that were running. Every one's ``pid`` is None afterwards.

    Raises:
        LauncherError: One survived SIGKILL.
    """
    live = [b for b in daemons if running_pid(b) is not None]
    for b in live:
        log.info("stopping %s (pid %s)", b.name, b.pid)
        assert b.pid is not None
        send_signal(b.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    pending = list(live)
    while pending and time.monotonic() < deadline:
        time.sleep(0.1)
        pending = [b for b in pending if running_pid(b) is not None]
    for b in pending:
        assert b.pid is not None
        log.warning("%s (pid %s) ignored SIGTERM for %.0f s; killing it", b.name, b.pid, timeout)
        send_signal(b.pid, signal.SIGKILL)
    wait_gone(pending)
    for b in daemons:
        b.pid = None
    return live


def wait_gone(daemons: Sequence[Daemon], timeout: float = 10.0) -> None:
    """Wait until none of ``daemons`` runs.

    Raises:
        LauncherError: One still runs after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while any(running_pid(b) is not None for b in daemons):
        if time.monotonic() > deadline:
            names = ", ".join(b.name for b in daemons if running_pid(b) is not None)
            raise LauncherError(f"{names} still running after SIGKILL")
        time.sleep(0.05)


@contextlib.contextmanager
def locked(home: Path, name: str = ".lock") -> Iterator[None]:
    """Serialise launcher commands on one directory (they rewrite ``cluster.json``)."""
    home.mkdir(parents=True, exist_ok=True)
    with (home / name).open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
