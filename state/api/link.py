"""Records waiting to cross each vessel's link, from `mirror status`, for the vessel pages.

With `python -m state.api --mirror-dir DIR` (a `python -m deploy.kafka up --vessels …`
deployment), a thread asks `deploy.kafka.mirroring.mirror_status` every
`INTERVAL_S` seconds what each vessel's MirrorMaker has yet to copy ashore, and keeps
the answer per vessel id (a mirror's alias is the vessel id without dots). Each new
answer bumps `generation`, which the vessel views carry in their ETag: a page sees a
new backlog even while the tables stand still.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from deploy.kafka.layout import existing
from deploy.kafka.mirroring import MirrorStatus, mirror_status

#: Seconds between two looks: each reads every vessel's end offsets and the shore's.
INTERVAL_S: Final = 5.0


def link_report(status: MirrorStatus, checked_at: str) -> dict[str, Any]:
    """What the vessel page shows of one vessel's mirror: state, link, backlog, gaps."""
    waiting: dict[str, int] = {}
    for p in status.partitions:
        waiting[p.topic] = waiting.get(p.topic, 0) + p.waiting
    return {
        "mirror": "down" if status.pid is None else "up",
        "link": status.link,
        "waiting": sum(waiting.values()),
        "waiting_by_topic": waiting,
        "problems": status.failed + status.gaps,
        "checked_at": checked_at,
        "error": None,
    }


def _alias(vessel_id: str) -> str:
    return vessel_id.replace(".", "")


class MirrorWatch:
    """The latest `mirror status` of one deployment, refreshed by a daemon thread.

    Raises:
        StateMissingError: `home` holds no deployment (said at start, in one line).
    """

    def __init__(self, home: Path, interval_s: float = INTERVAL_S) -> None:
        self.home = existing(home)
        self.interval_s = interval_s
        self.generation = 0
        self._reports: dict[str, dict[str, Any]] = {}
        self._error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mirror-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def report(self, vessel_id: str) -> dict[str, Any] | None:
        """The vessel's latest report; its error when the last look failed; None if unknown."""
        if self._error is not None:
            return {"error": self._error}
        return self._reports.get(_alias(vessel_id))

    def _run(self) -> None:
        while not self._stop.is_set():
            checked_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            try:
                found = mirror_status(self.home, ages=False)
                reports = {_alias(s.vessel): link_report(s, checked_at) for s in found}
                error = None
            # Any failure: the watch must outlive a cluster that is down. Say it; look again.
            except Exception as exc:
                reports, error = self._reports, f"mirror status failed at {checked_at}: {exc}"
            changed = error != self._error or _unstamped(reports) != _unstamped(self._reports)
            # Swapped whole, never mutated: readers on other threads see one or the other.
            self._reports, self._error = reports, error
            if changed:
                self.generation += 1
            self._stop.wait(self.interval_s)


def _unstamped(reports: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {k: {f: v for f, v in r.items() if f != "checked_at"} for k, r in reports.items()}
