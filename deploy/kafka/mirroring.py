"""Ship to shore: starting and stopping the link proxy and the MirrorMakers, and their commands.

:func:`start_shipping` and :func:`stop_shipping` are what ``up`` and ``down`` call for a
mirrored deployment; :func:`set_link_mode`, :func:`stop_mirror`, :func:`start_mirror`
and :func:`kill_mirror` are the ``link`` and ``mirror`` commands. Each command that
changes a deployment holds its directory's lock, as in :mod:`deploy.kafka.commands`.
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from deploy.kafka import mirror as mm2
from deploy.kafka.backlog import PartitionBacklog, Skipped, skipped_in_log, vessel_backlog
from deploy.kafka.errors import LauncherError
from deploy.kafka.internal import copied_offsets, task_states
from deploy.kafka.jars import ensure_jars, require_java
from deploy.kafka.layout import Deployment, existing
from deploy.kafka.link import LinkMode, Toxiproxy, link_mode, set_link, start_link
from deploy.kafka.parts import Link, Mirror
from deploy.kafka.processes import Daemon, locked, running_pid, send_signal, stop, wait_gone

log: Final = logging.getLogger("deploy.kafka")

MIRROR_START_TIMEOUT_S: Final = 60.0


def shipping_daemons(dep: Deployment) -> list[Link | Mirror]:
    """The MirrorMakers and the link proxy, in the order to stop them."""
    return [*dep.mirrors.values(), *([dep.link] if dep.link else [])]


def all_running(dep: Deployment) -> bool:
    """Whether every node, the link proxy and every MirrorMaker run."""
    daemons: list[Daemon] = [*dep.brokers, *shipping_daemons(dep)]
    return all(running_pid(d) is not None for d in daemons)


def start_shipping(
    dep: Deployment,
    java: str,
    *,
    started: list[Link | Mirror],
    timeout: float = MIRROR_START_TIMEOUT_S,
) -> None:
    """Start the link proxy and every MirrorMaker not running (the clusters run already).

    Records each PID in ``dep`` and appends each process to ``started`` as soon as it
    is started, so the caller can stop exactly those if anything fails.

    Raises:
        LauncherError: One could not be started.
    """
    if dep.link is not None and running_pid(dep.link) is None:
        started.append(dep.link)
        start_link(dep.link, dep.vessels)
        dep.save()
    mirrors = []
    for m in dep.mirrors.values():
        if running_pid(m) is None:
            started.append(m)
            mm2.start_mirror(dep, m, java)
            dep.save()
            mirrors.append(m)
    deadline = time.monotonic() + timeout
    for m in mirrors:
        mm2.wait_mirror_serving(m, max(deadline - time.monotonic(), 1.0))


def stop_shipping(dep: Deployment, timeout: float) -> list[Link | Mirror]:
    """Stop every MirrorMaker, then the link proxy; return those that were running."""
    return stop(shipping_daemons(dep), timeout)


def _link_api(dep: Deployment) -> Toxiproxy:
    if dep.link is None:
        raise LauncherError(f"{dep.home} has no link; start one with `up --vessels N`")
    if running_pid(dep.link) is None:
        raise LauncherError(f"the link proxy of {dep.home} is not running; run `up` first")
    return Toxiproxy(dep.link.api)


def set_link_mode(home: Path, vessel: str, mode: LinkMode) -> None:
    """Put ``vessel``'s link in ``mode``: ``up``, ``down``, ``blackhole`` or ``satellite``.

    Raises:
        LauncherError: No such vessel, no link, or the proxy refused.
    """
    home = existing(home)
    with locked(home):
        dep = Deployment.load(home)
        dep.mirror(vessel)  # a mirrored vessel, or a clear error
        set_link(_link_api(dep), dep.cluster(vessel), mode)


def link_modes(home: Path) -> dict[str, LinkMode]:
    """Every vessel's link mode, by vessel id.

    Raises:
        LauncherError: No link, or it is not running.
    """
    dep = Deployment.load(existing(home))
    api = _link_api(dep)
    return {v.name: link_mode(api, v) for v in dep.vessels}


def stop_mirror(home: Path, vessel: str, *, timeout: float = 30.0) -> bool:
    """Stop ``vessel``'s MirrorMaker (SIGTERM; SIGKILL after ``timeout``); False if not running.

    Raises:
        LauncherError: No such vessel.
    """
    home = existing(home)
    with locked(home):
        dep = Deployment.load(home)
        stopped = stop([dep.mirror(vessel)], timeout)
        dep.save()
    return bool(stopped)


def kill_mirror(home: Path, vessel: str) -> bool:
    """SIGKILL ``vessel``'s MirrorMaker, as a crash would; False if it was not running.

    Raises:
        LauncherError: No such vessel.
    """
    home = existing(home)
    with locked(home):
        dep = Deployment.load(home)
        m = dep.mirror(vessel)
        pid = running_pid(m)
        if pid is not None:
            log.info("killing %s (pid %d)", m.name, pid)
            send_signal(pid, signal.SIGKILL)
            wait_gone([m])
        m.pid = None
        dep.save()
    return pid is not None


def start_mirror(home: Path, vessel: str, *, timeout: float = MIRROR_START_TIMEOUT_S) -> None:
    """Start ``vessel``'s MirrorMaker if it is not running; return once it serves.

    It resumes from the offsets it committed ashore, whether the link is up or not.

    Raises:
        LauncherError: No such vessel, or it did not start.
    """
    java = require_java()
    home = existing(home)
    with locked(home):
        dep = Deployment.load(home)
        m = dep.mirror(vessel)
        if running_pid(m) is not None:
            log.info("%s is already running (pid %s)", m.name, m.pid)
            return
        if not dep.lib.is_dir():
            dep.lib = ensure_jars()
        try:
            mm2.start_mirror(dep, m, java)
            dep.save()
            mm2.wait_mirror_serving(m, timeout)
        except BaseException:
            try:
                stop([m], timeout=10.0)
            finally:
                dep.save()
            raise


@dataclass(frozen=True, slots=True)
class MirrorStatus:
    """One vessel's MirrorMaker, link and backlog.

    Attributes:
        vessel: Vessel id.
        pid: The MirrorMaker's PID, None when it is not running.
        link: The link's mode, None when the link proxy is not running.
        transactional_ids: Its task producers' transactional ids (empty: exactly-once
            not confirmed yet; see :func:`deploy.kafka.mirror.transactional_ids`).
        partitions: Every mirrored partition's backlog.
        skipped: Gaps MirrorMaker's log shows it skipped (see
            :func:`deploy.kafka.backlog.skipped_in_log`).
        tasks: ``task -> (state, error)`` as MirrorMaker last recorded it ashore.
    """

    vessel: str
    pid: int | None
    link: LinkMode | None
    transactional_ids: list[str]
    partitions: list[PartitionBacklog]
    skipped: list[Skipped]
    tasks: dict[str, tuple[str, str | None]]

    @property
    def failed(self) -> list[str]:
        """One line per failed task of a running MirrorMaker (it does not restart them)."""
        if self.pid is None:
            return []
        return [
            f"FAILED {self.vessel} task {task}: {error or 'no error recorded'}; restart it "
            f"with `mirror stop {self.vessel}` and `mirror start {self.vessel}`"
            for task, (state, error) in sorted(self.tasks.items())
            if state == "FAILED"
        ]

    @property
    def healthy(self) -> bool:
        """Running, no failed task, no gap."""
        return self.pid is not None and not self.failed and not self.gaps

    @property
    def gaps(self) -> list[str]:
        """One line per gap: lost records still visible in the offsets, then skips.

        A skip of a partition whose gap the offsets still show (MirrorMaker skipped it
        but has copied nothing since) is that same gap, reported once.
        """
        pending = [p for p in self.partitions if p.lost]
        seen = {(p.topic, p.partition) for p in pending}
        return [p.gap_line() for p in pending] + [
            s.gap_line() for s in self.skipped if (s.topic, s.partition) not in seen
        ]

    def lines(self, now_ms: int | None = None) -> list[str]:
        """The report: a head line, one line per topic, then one line per gap."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        state = "down" if self.pid is None else f"up (pid {self.pid})"
        eos = (
            f"exactly-once on ({', '.join(self.transactional_ids)})"
            if self.transactional_ids
            else "exactly-once not confirmed yet (no task has started)"
        )
        out = [f"{self.vessel}: mirror {state}, link {self.link or 'unknown'}, {eos}"]
        for topic in dict.fromkeys(p.topic for p in self.partitions):
            parts = [p for p in self.partitions if p.topic == topic]
            waiting = sum(p.waiting for p in parts)
            stamps = [p.oldest_ms for p in parts if p.waiting and p.oldest_ms is not None]
            age = f"  (oldest {max(now_ms - min(stamps), 0) / 1000:.0f} s)" if stamps else ""
            out.append(f"  {topic:<26} waiting {waiting:>9}{age}")
        return out + self.failed + self.gaps


def mirror_status(home: Path, *, ages: bool = True) -> list[MirrorStatus]:
    """Every vessel's MirrorMaker, link mode and backlog (see :mod:`deploy.kafka.backlog`).

    Raises:
        LauncherError: Not a mirrored deployment, or the shore or a vessel is unreachable.
    """
    dep = Deployment.load(existing(home))
    if not dep.mirrors:
        raise LauncherError(f"{dep.home} has no mirror; start one with `up --vessels N`")
    modes: dict[str, LinkMode] = {}
    if dep.link is not None and running_pid(dep.link) is not None:
        api = Toxiproxy(dep.link.api)
        modes = {v.name: link_mode(api, v) for v in dep.vessels}
    result = []
    for m in dep.mirrors.values():
        copied = copied_offsets(dep.shore, m)
        rows = vessel_backlog(dep.cluster(m.vessel), m, copied, ages=ages)
        result.append(
            MirrorStatus(
                m.vessel,
                running_pid(m),
                modes.get(m.vessel),
                mm2.transactional_ids(m),
                rows,
                skipped_in_log(m),
                task_states(dep.shore, m),
            )
        )
    return result
