"""The dashboard in a real headless Chromium, over a real API and stores the flows wrote.

The fleet (`tests.integration.dashboard_fleet`): four simulated vessels, 7.5 h into
their voyages; IMO9876012's link went down at 04:30. What the pages must show is
written out from the simulator's plan (its labels): e.g. MAEU2060536 on IMO9832080
lost power at 03:17 and is still without it, so a power-loss alert is open for it.
Every test fails on any console error or warning. The screenshots in `docs/` are
made here.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.integration.api_client import ApiServer, start_api
from tests.integration.browser import PHONE, Pages, chromium
from tests.integration.dashboard_fleet import LINK_DOWN, VESSELS, SimulatedFleet, build
from tests.integration.kafka_io import ROOT

pytestmark = pytest.mark.integration

DOCS = ROOT / "docs"
#: The contract's kinds from the most to the least urgent, as the desk ranks them.
RANKED = (
    "temperature_excursion",
    "power_loss",
    "atmosphere_out_of_range",
    "door_open_at_sea",
    "sensor_fault",
    "sensor_silent",
    "power_unstable",
)
WAIT_MS = 10_000  # a bound against hangs, not a timing requirement (see bench/)
#: The fleet page's frames: an update changes what is in them, never where they are.
FRAMES = ("#map", ".alerts-panel .box", "#alerts thead", "#alert-count", "#kind-filter", "#legend")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> SimulatedFleet:
    return build(tmp_path_factory.mktemp("dashboard"))


@pytest.fixture(scope="module")
def api(fleet: SimulatedFleet) -> Iterator[ApiServer]:
    server = start_api(fleet.fleet)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def pages(browser: Browser, api: ApiServer) -> Iterator[Pages]:
    opened = Pages(browser, f"http://{api.host}:{api.port}")
    yield opened
    opened.close()
    opened.check()


def _fleet_page(pages: Pages, viewport: dict[str, int] | None = None) -> Page:
    page = pages.open("/", viewport)
    expect(page.locator("#map g.vessel")).to_have_count(4, timeout=WAIT_MS)
    return page


def test_the_fleet_map_draws_every_vessel_and_marks_the_one_whose_link_is_down(
    pages: Pages,
) -> None:
    page = _fleet_page(pages)
    drawn = page.locator("#map g.vessel")
    assert sorted(drawn.evaluate_all("els => els.map(e => e.dataset.vessel)")) == sorted(VESSELS)
    expect(page.locator("#vessel-count")).to_have_text("4 vessels")
    stale = page.locator('#map g.vessel[data-stale="true"]')
    expect(stale).to_have_count(1)
    assert stale.get_attribute("data-vessel") == LINK_DOWN
    # Its last record (04:29:59) is 3 h behind the fleet's newest (07:29:46).
    expect(stale.locator(".stale-label")).to_have_text(re.compile(r"no data 3 h"))
    # The land outlines and the two cells with open alerts (Rotterdam, Cartagena).
    assert len(page.locator("#map path.land").get_attribute("d") or "") > 10_000
    expect(page.locator("#map rect.cell")).to_have_count(2)
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / "dashboard-fleet.png"))


def test_open_alerts_are_listed_most_severe_first_and_filter_by_kind(
    pages: Pages, api: ApiServer
) -> None:
    page = _fleet_page(pages)
    rows = page.locator("#alerts tbody tr")
    expected = api.get("/api/alerts?limit=1000").json()["alerts"]
    expect(rows).to_have_count(len(expected))
    kinds = rows.evaluate_all("els => els.map(e => e.dataset.kind)")
    assert kinds == sorted(kinds, key=RANKED.index)
    # MAEU2060536 lost power at 03:17 on IMO9832080 and has had none since.
    row = page.locator('#alerts tr[data-container="MAEU2060536"][data-kind="power_loss"]')
    expect(row).to_have_count(1)
    expect(row).to_contain_text("IMO9832080")
    expect(row).to_contain_text("Power loss")
    expect(row).to_contain_text("CRITICAL", ignore_case=True)

    page.select_option("#kind-filter", "power_loss")
    power = [a for a in expected if a["kind"] == "power_loss"]
    expect(rows).to_have_count(len(power))
    assert set(rows.evaluate_all("els => els.map(e => e.dataset.kind)")) == {"power_loss"}
    expect(page.locator("#alert-count")).to_contain_text(f"{len(power)} of {len(expected)}")
    page.select_option("#vessel-filter", "IMO9832080")
    # Two power cuts on IMO9832080 are going on: MAEU2060536 and CAIU8224293.
    expect(rows).to_have_count(2)


def test_clicking_an_alert_centres_the_map_on_it(pages: Pages) -> None:
    page = _fleet_page(pages)
    world = page.locator("#map").get_attribute("viewBox")
    row = page.locator('#alerts tr[data-container="HLXU2095985"][data-kind="power_loss"]')
    row.locator("td").first.click()
    # IMO9275012 was in Cartagena (10.395 N, 75.535 W) when the power went.
    expect(page.locator("#map")).to_have_attribute("data-center", "10.395,-75.535")
    expect(row).to_have_attribute("aria-selected", "true")
    assert page.locator("#map").get_attribute("viewBox") != world


def test_the_container_view_charts_its_windows_alerts_and_vessel(pages: Pages) -> None:
    page = pages.open("/containers/MAEU2060536")
    # Readings every few minutes from 00:00 to 07:30, never silent: 30 windows of 15 min.
    expect(page.locator("#chart circle.point")).to_have_count(30, timeout=WAIT_MS)
    spans = page.locator("#chart rect.alert-span")
    expect(spans).to_have_count(2)  # the power cut, then the excursion it caused
    assert sorted(spans.evaluate_all("els => els.map(e => e.dataset.kind)")) == [
        "power_loss",
        "temperature_excursion",
    ]
    expect(page.locator("#chart rect.vessel-span")).to_have_count(1)
    expect(page.locator("#chart")).to_contain_text("IMO9832080")
    expect(page.locator("#chart .band")).to_have_count(1)
    page.screenshot(path=str(DOCS / "dashboard-container.png"), full_page=True)


def test_an_unknown_container_says_so(pages: Pages) -> None:
    page = pages.open("/containers/ZZZU0000000")
    expect(page.locator("main")).to_contain_text("No container ZZZU0000000", timeout=WAIT_MS)


def test_the_vessel_view_shows_its_reefers_and_that_its_link_is_down(
    pages: Pages, api: ApiServer
) -> None:
    page = pages.open(f"/vessels/{LINK_DOWN}")
    expect(page.locator("#reefers tbody tr")).to_have_count(25, timeout=WAIT_MS)
    expect(page.locator("#link-status")).to_contain_text(re.compile("stale", re.IGNORECASE))
    expect(page.locator("#link-status")).to_contain_text("3 h")
    row = api.get(f"/api/vessels/{LINK_DOWN}").json()
    expect(page.locator("#late")).to_have_text(str(row["late"]))
    expect(page.locator("#dead-letters")).to_have_text(str(row["dead_letters"]))
    # Its reefers with open alerts come first: MWCU3534073 lost power at 03:34.
    first = page.locator("#reefers tbody tr").first
    expect(first).to_have_attribute("data-container", "MWCU3534073")


def test_a_phone_sees_the_map_and_the_alerts_without_sideways_scrolling(pages: Pages) -> None:
    page = _fleet_page(pages, PHONE)
    expect(page.locator("#map")).to_be_visible()
    expect(page.locator("#alerts")).to_be_attached()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    map_box, table_box = page.locator("#map").bounding_box(), page.locator("#alerts").bounding_box()
    assert map_box is not None and table_box is not None
    assert table_box["y"] >= map_box["y"] + map_box["height"] - 1  # stacked, not beside


def test_the_crews_page_on_a_vessel_data_dir_lists_its_reefers(
    browser: Browser, fleet: SimulatedFleet
) -> None:
    server = start_api(fleet.vessel)
    pages = Pages(browser, f"http://{server.host}:{server.port}")
    try:
        page = pages.open("/")
        # One vessel flow ran all four simulated vessels: 4 x 25 reefers.
        expect(page.locator("#reefers tbody tr")).to_have_count(100, timeout=WAIT_MS)
        expect(page.locator("#map")).to_have_count(0)
        row = page.locator('#reefers tr[data-container="MAEU2060536"]')
        expect(row).to_contain_text("Power loss")
    finally:
        pages.close()
        server.stop()
    pages.check()


def test_a_new_alert_shows_without_a_reload_and_nothing_moves(
    pages: Pages, fleet: SimulatedFleet, tmp_path: Path
) -> None:
    """Runs last: it adds a record to the module's fleet."""
    page = _fleet_page(pages)
    boxes = {sel: page.locator(sel).bounding_box() for sel in FRAMES}
    before = page.locator("#alerts tbody tr").count()
    alert_id = "d00r" * 8
    fleet.append(
        "IMO9609770",
        "reefer.alerts",
        {
            "type": "reefer.alert",
            "alert_id": alert_id,
            "state": "open",
            "kind": "door_open_at_sea",
            "container_id": "MSKU1234565",
            "vessel_id": "IMO9609770",
            "started_at": "2026-11-20T07:20:00Z",
            "opened_at": "2026-11-20T07:25:00Z",
            "closed_at": None,
            "lat": 51.97,
            "lon": 3.5,
            "detail": {"sog_kn": 14.0},
        },
    )
    log = fleet.run_fleet_flow()
    assert "resuming" in log
    written = time.monotonic()
    row = page.locator(f'#alerts tr[data-alert="{alert_id}"]')
    expect(row).to_have_count(1, timeout=WAIT_MS)
    print(f"new alert shown {time.monotonic() - written:.2f} s after the flow wrote it")
    expect(row).to_contain_text("MSKU1234565")
    expect(row).to_contain_text("Door open at sea")
    expect(page.locator("#alerts tbody tr")).to_have_count(before + 1)
    assert {sel: page.locator(sel).bounding_box() for sel in FRAMES} == boxes
