"""The dashboard's routes: three pages, their JSON views, and the static files.

The pages are static HTML shells (`state/api/static/`) whose scripts fetch one view
each (`state.api.views`) and poll it every second. A view is tagged with the
store position it reflects (`ETag`): a poll that sends `If-None-Match` with the
current position gets a bodyless 304, and a view is built once per position and
kept (`ViewCache`), so that a room full of open pages costs one build per change.
"""

from __future__ import annotations

import gzip
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson
from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from flows.config import threshold_var, value
from state.api.link import MirrorWatch
from state.api.middleware import json_response
from state.api.names import (
    CONTAINER_PAGE,
    CONTAINER_VIEW_ROUTE,
    CREW_VIEW_ROUTE,
    FLEET_PAGE,
    FLEET_VIEW_ROUTE,
    POSITION_HEADER,
    REFRESH_S,
    STATIC_PREFIX,
    VESSEL_PAGE,
    VESSEL_VIEW_ROUTE,
)
from state.api.pages import ApiError, check_text
from state.api.stores import Stores, View
from state.api.views import container_view, crew_view, fleet_vessel_view, fleet_view

STATIC_DIR: Final = Path(__file__).parent / "static"
#: The container chart draws setpoint ± the vessel flow's excursion tolerance: the
#: server's `COLDWAKE_TOLERANCE_C` if set, else the flow's default.
TOLERANCE_VAR: Final = threshold_var("tolerance_c")
DEFAULT_TOLERANCE_C: Final[float] = value({}, TOLERANCE_VAR)
#: The pages load only their own files; styles may be set by script (SVG attributes).
_PAGE_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "Referrer-Policy": "no-referrer",
}
#: Views kept, newest used last out: a few pages' worth of containers and vessels.
_CACHED_VIEWS: Final = 64
_UNCHANGED: Final = b""
#: gzip's default trade-off: level 9 takes twice as long for a few per cent less.
_GZIP_LEVEL: Final = 6


class ViewCache:
    """Built views by (route, argument), each with the position it was built at, as
    JSON and, once a client asked for it, gzipped (a fleet view is ~0.6 MB of JSON:
    compressing it costs more than building it from the cache).

    Used only under the stores' lock (inside `Stores.read`), so it needs none itself.
    """

    def __init__(self) -> None:
        self._views: OrderedDict[tuple[str, str], _Built] = OrderedDict()

    def get(
        self,
        view: View,
        name: tuple[str, str],
        build: Callable[[View], dict[str, Any]],
        gzipped: bool = False,
        generation: int = 0,
    ) -> bytes:
        """The view `name` at `view.position` (and the link watch's `generation`): kept,
        or built now and kept."""
        kept = self._views.get(name)
        if kept is None or (kept.position, kept.generation) != (view.position, generation):
            body = orjson.dumps({**build(view), "position": view.position})
            kept = _Built(view.position, generation, body)
            self._views[name] = kept
        self._views.move_to_end(name)
        while len(self._views) > _CACHED_VIEWS:
            self._views.popitem(last=False)
        if not gzipped:
            return kept.body
        if kept.gzipped is None:
            kept.gzipped = gzip.compress(kept.body, _GZIP_LEVEL, mtime=0)
        return kept.gzipped


@dataclass(slots=True)
class _Built:
    position: int
    generation: int
    body: bytes
    gzipped: bytes | None = None


def _etag(position: int, generation: int) -> str:
    return f'"{position}.{generation}"'


def add_dashboard(
    app: FastAPI, stores: Stores, tolerance_c: float, mirrors: MirrorWatch | None = None
) -> None:
    """Add the pages, views and static files to the query API's app; with `mirrors`,
    the vessel views show what waits to cross each vessel's link."""
    cache = ViewCache()
    fleet = "fleet" in stores.kinds
    names = ("index.html", "container.html", "vessel.html")
    pages = {name: (STATIC_DIR / name).read_bytes() for name in names}

    def page(name: str) -> Response:
        return Response(pages[name], media_type="text/html", headers=_PAGE_HEADERS)

    async def serve(
        request: Request,
        name: tuple[str, str],
        build: Callable[[View], dict[str, Any]],
        generation: int = 0,
    ) -> Response:
        tag = request.headers.get("if-none-match")
        gzipped = "gzip" in request.headers.get("accept-encoding", "")

        def fn(view: View) -> bytes:
            if tag == _etag(view.position, generation):
                return _UNCHANGED  # the page has this position: nothing to build
            return cache.get(view, name, build, gzipped, generation)

        position, body, _ = await run_in_threadpool(stores.read, fn, None, REFRESH_S)
        headers = {"ETag": _etag(position, generation), "Vary": "Accept-Encoding"}
        if body == _UNCHANGED:
            return Response(status_code=304, headers={**headers, POSITION_HEADER: str(position)})
        assert body is not None  # no min_position: the callback always ran
        if gzipped:
            headers["Content-Encoding"] = "gzip"  # the GZip middleware leaves it as it is
        return json_response(body, headers=headers, position=position)

    def fleet_only(what: str) -> None:
        if not fleet:
            raise ApiError(404, f"{what} needs fleet tables; this data dir is a vessel's")

    @app.get(FLEET_PAGE, include_in_schema=False)
    async def fleet_page() -> Response:
        # A vessel data dir gets the crew's page: its own reefers, no map.
        return page("index.html" if fleet else "vessel.html")

    @app.get(CONTAINER_PAGE, include_in_schema=False)
    async def container_page(container_id: str) -> Response:
        return page("container.html")

    @app.get(VESSEL_PAGE, include_in_schema=False)
    async def vessel_page(vessel_id: str) -> Response:
        return page("vessel.html")

    @app.get(FLEET_VIEW_ROUTE, summary="The fleet page's data: vessels, open alerts, cells")
    async def fleet_data(request: Request) -> Response:
        fleet_only("the fleet view")
        return await serve(request, ("fleet", ""), fleet_view)

    @app.get(CONTAINER_VIEW_ROUTE, summary="A container page's data: windows, alerts, vessels")
    async def container_data(request: Request, container_id: str) -> Response:
        fleet_only("a container view")
        check_text("container_id", container_id)
        return await serve(
            request,
            ("container", container_id),
            lambda view: container_view(view, container_id, tolerance_c),
        )

    @app.get(VESSEL_VIEW_ROUTE, summary="A vessel page's data: link, reefers, alerts")
    async def vessel_data(request: Request, vessel_id: str) -> Response:
        fleet_only("a vessel view")
        check_text("vessel_id", vessel_id)
        generation = 0 if mirrors is None else mirrors.generation
        mirror = None if mirrors is None else mirrors.report(vessel_id)
        return await serve(
            request,
            ("vessel", vessel_id),
            lambda view: fleet_vessel_view(view, vessel_id, mirror),
            generation,
        )

    @app.get(CREW_VIEW_ROUTE, summary="A vessel data dir's page data: its reefers and alerts")
    async def crew_data(request: Request) -> Response:
        if "vessel" not in stores.kinds:
            raise ApiError(404, "the crew's view needs a vessel data dir; this one is the fleet's")
        return await serve(request, ("crew", ""), crew_view)

    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="static")
