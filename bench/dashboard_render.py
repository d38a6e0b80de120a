"""Time to first render and weight of the dashboard's fleet page, in headless Chromium.

    python -m bench.dashboard_render [--vessels 500] [--alerts 2000] [--loads 5]

1. Writes a fleet of `--vessels` vessels (a fix each, spread over the oceans) and
   `--alerts` open alerts on them as fleet input files, and runs `flows.fleet` on them
   (with a recovery dir).
2. Starts `python -m state.api` on the fleet's data dir and loads `/` `--loads` times in
   Debian's Chromium (a new browser context each time: nothing cached). Prints, per
   load, Chromium's own time from navigation start to the page's
   `coldwake-rendered` mark (map, every vessel and the first 100 alert rows drawn: more
   than the screen shows), to its `coldwake-complete` mark (every alert row and the
   vessel list too), and the bytes it transferred (navigation and every resource,
   compressed as sent).
3. Appends one more open alert, resumes the fleet flow, and prints how long after the
   flow ended (the table changed) the open page showed it without a reload.
Figures, never asserts.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from flows.contract import ALERT_KINDS, ALERTS, POSITION
from flows.events import with_check_digit
from tests.integration.api_client import start_api
from tests.integration.browser import Pages, chromium
from tests.integration.dashboard_fleet import SimulatedFleet

_NOW = "2026-11-26T12:00:00Z"
# Functions, not expressions: the page's CSP forbids eval, which a string predicate needs.
_RENDERED = "() => performance.getEntriesByName('coldwake-rendered')[0]?.startTime ?? null"
_COMPLETE = "() => performance.getEntriesByName('coldwake-complete')[0]?.startTime ?? null"
_BYTES = """() => [performance.getEntriesByType('navigation')[0],
    ...performance.getEntriesByType('resource')].reduce((n, e) => n + e.transferSize, 0)"""


def _container(i: int) -> str:
    return with_check_digit(f"BNCU{i:06d}")


def _write_fleet(shore: Path, vessels: int, alerts: int, rng: random.Random) -> None:
    shore.mkdir(parents=True)
    fixes: list[dict[str, Any]] = []
    opened: list[dict[str, Any]] = []
    places = []
    for v in range(vessels):
        vessel = f"IMO{9_000_000 + v}"
        lat, lon = rng.uniform(-55, 60), rng.uniform(-180, 180)
        places.append((vessel, lat, lon))
        fix = {"type": "vessel.position", "vessel_id": vessel, "ts": _NOW, "lat": lat}
        fixes.append(fix | {"lon": lon, "sog_kn": 15.0, "cog_deg": rng.uniform(0, 360)})
    for a in range(alerts):
        vessel, lat, lon = places[a % vessels]
        opened.append(
            {
                "type": "reefer.alert",
                "alert_id": f"{a:032x}",
                "state": "open",
                "kind": rng.choice(ALERT_KINDS),
                "container_id": _container(a),
                "vessel_id": vessel,
                "started_at": "2026-11-26T10:00:00Z",
                "opened_at": "2026-11-26T10:30:00Z",
                "closed_at": None,
                "lat": lat,
                "lon": lon,
                "detail": {},
            }
        )
    for topic, records in ((POSITION, fixes), (ALERTS.topic, opened)):
        (shore / f"{topic}.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))


def _load(pages: Pages) -> tuple[float, float, int]:
    page = pages.open("/")
    page.wait_for_function(_COMPLETE, timeout=60_000)
    rendered, complete = float(page.evaluate(_RENDERED)), float(page.evaluate(_COMPLETE))
    page.wait_for_load_state("networkidle")
    weight = int(page.evaluate(_BYTES))
    page.context.close()
    return rendered, complete, weight


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vessels", type=int, default=500)
    ap.add_argument("--alerts", type=int, default=2000)
    ap.add_argument("--loads", type=int, default=5)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="coldwake-dashboard-") as tmp:
        root = Path(tmp)
        fleet = SimulatedFleet(root / "vessel", root / "shore", root / "fleet", root / "rec")
        _write_fleet(fleet.shore, args.vessels, args.alerts, random.Random(11))
        started = time.monotonic()
        fleet.run_fleet_flow()
        print(
            f"fleet flow wrote {args.vessels} vessels and {args.alerts} open alerts "
            f"in {time.monotonic() - started:.1f} s",
            flush=True,
        )
        server = start_api(fleet.fleet)
        try:
            with chromium() as browser:
                pages = Pages(browser, f"http://{server.host}:{server.port}")
                loads = [_load(pages) for _ in range(args.loads)]
                for i, (ms, whole, size) in enumerate(loads, 1):
                    print(
                        f"load {i}: first render {ms:.0f} ms, every row {whole:.0f} ms, "
                        f"{size / 1024:.0f} KB transferred"
                    )
                renders = [ms for ms, _, _ in loads]
                print(
                    f"first render: median {statistics.median(renders):.0f} ms, "
                    f"best {min(renders):.0f} ms, worst {max(renders):.0f} ms "
                    f"(target < 1000 ms); every row drawn: median "
                    f"{statistics.median(whole for _, whole, _ in loads):.0f} ms; "
                    f"page weight {loads[-1][2] / 1024:.0f} KB "
                    "(target < 500 KB)"
                )
                _live(pages, fleet)
                pages.check()
        finally:
            server.stop()
    return 0


def _live(pages: Pages, fleet: SimulatedFleet) -> None:
    page = pages.open("/")
    page.wait_for_function(_RENDERED, timeout=60_000)
    record: dict[str, Any] = {
        "type": "reefer.alert",
        "alert_id": "f" * 32,
        "state": "open",
        "kind": ALERT_KINDS[0],
        "container_id": _container(999_999),
        "vessel_id": "IMO9000000",
        "started_at": "2026-11-26T11:00:00Z",
        "opened_at": "2026-11-26T11:30:00Z",
        "closed_at": None,
        "lat": 0.0,
        "lon": 0.0,
        "detail": {},
    }
    with (fleet.shore / f"{ALERTS.topic}.jsonl").open("ab") as f:
        f.write(orjson.dumps(record) + b"\n")
    fleet.run_fleet_flow()
    written = time.monotonic()
    page.locator(f'#alerts tr[data-alert="{"f" * 32}"]').wait_for(timeout=30_000)
    print(
        f"live update: the new alert showed {time.monotonic() - written:.2f} s after "
        "the flow wrote it (target < 2 s)"
    )


if __name__ == "__main__":
    sys.exit(main())
