"""The query API's routes (FastAPI): tables, rows, pages, alerts, vessels, health, metrics.

Read-only: every route is a GET. Every answer is JSON (`/metrics` excepted) and
carries `X-Coldwake-Position`; every error is `{"error": "<one sentence>"}`, never
a traceback. Store work runs in FastAPI's thread pool under the stores' lock
(`Stores.read`); a request waiting for `min_position` sleeps on the event loop
between tries, holding no thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Final

import anyio
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import Response

from flows.fleet_core.names import OPEN_ALERTS, VESSELS
from state.api.dashboard import DEFAULT_TOLERANCE_C, add_dashboard
from state.api.link import MirrorWatch
from state.api.middleware import (
    ApiMetrics,
    BearerAuth,
    CommonHeaders,
    Metrics,
    error_response,
    json_response,
)
from state.api.names import (
    ALERTS_ROUTE,
    DEFAULT_LIMIT,
    DEFAULT_WAIT_MS,
    HEALTHZ_ROUTE,
    MAX_LIMIT,
    MAX_POSITION,
    MAX_QUERY_BYTES,
    MAX_WAIT_MS,
    METRICS_ROUTE,
    OPEN_STATE,
    OPENAPI_ROUTE,
    POLL_S,
    READYZ_ROUTE,
    RETRY_AFTER_S,
    ROW_ROUTE,
    ROWS_ROUTE,
    TABLES_ROUTE,
    VESSEL_ROUTE,
    VESSELS_ROUTE,
)
from state.api.pages import (
    ApiError,
    after_key,
    alert_filter,
    check_alert_filter,
    check_limit,
    check_text,
    echo,
    json_body,
    merge_unique,
    rows_body,
    take_page,
    values_body,
    vessel_alerts,
)
from state.api.sources import VESSEL_TABLES, fleet_table
from state.api.stores import Stores, View

__all__ = ["create_app"]

_OPEN_ALERTS: Final = fleet_table(OPEN_ALERTS)
_VESSELS: Final = fleet_table(VESSELS)
_VESSEL_STATE: Final = VESSEL_TABLES[0]
#: Smaller answers (a row, an error) are sent as they are: compressing costs more.
_GZIP_MIN_BYTES: Final = 2048

_DESCRIPTION: Final = (
    "Read-only HTTP access to Coldwake's tables: a vessel's container-state table and "
    "the fleet's sharded tables, readable while the flows write them. Every answer "
    "carries the input position it reflects in `X-Coldwake-Position`; `min_position` "
    "waits for at least that position. See docs/api.md."
)

# -- parameters, documented once -------------------------------------------------------

Limit = Annotated[
    int, Query(description=f"rows a page, 1 to {MAX_LIMIT} (more is refused with 400)")
]
After = Annotated[
    str | None, Query(description="the cursor: the `next` of the previous page (a key)")
]
Prefix = Annotated[str, Query(description="only keys starting with this")]
MinPosition = Annotated[
    int | None,
    Query(ge=0, le=MAX_POSITION, description="answer only once the stores reach this position"),
]
WaitMs = Annotated[
    int,
    Query(ge=0, le=MAX_WAIT_MS, description="how long to wait for min_position, in milliseconds"),
]


@dataclass(frozen=True, slots=True)
class Wanted:
    """The consistency a request asks for: a position, and how long it may wait for it."""

    min_position: int | None
    wait_ms: int


async def wanted(min_position: MinPosition = None, wait_ms: WaitMs = DEFAULT_WAIT_MS) -> Wanted:
    # async: FastAPI would run a plain function in the thread pool, a hop per request.
    return Wanted(min_position, wait_ms)


async def bounded_query(request: Request) -> None:
    if len(request.scope["query_string"]) > MAX_QUERY_BYTES:
        raise ApiError(414, f"the query string is longer than {MAX_QUERY_BYTES} bytes")


Consistency = Annotated[Wanted, Depends(wanted)]


async def answer(stores: Stores, fn: Callable[[View], bytes], want: Wanted) -> Response:
    """Run `fn` on the stores once they reach `want.min_position`; 503 if they do not in time."""
    deadline = time.monotonic() + want.wait_ms / 1000
    max_age = 0.0  # the first try catches up at once; later ones share a catch-up
    while True:
        position, body, done = await run_in_threadpool(stores.read, fn, want.min_position, max_age)
        max_age = POLL_S
        if done and body is not None:
            return json_response(body, position=position)
        if time.monotonic() >= deadline:
            raise ApiError(
                503,
                f"the stores are at position {position}, below min_position "
                f"{want.min_position}, after waiting {want.wait_ms} ms; retry later",
                {"Retry-After": str(RETRY_AFTER_S)},
                position,
            )
        await anyio.sleep(POLL_S)


def create_app(
    stores: Stores,
    token: str | None,
    tolerance_c: float = DEFAULT_TOLERANCE_C,
    mirrors: MirrorWatch | None = None,
) -> FastAPI:
    """The app over these stores; with a token, every route but /healthz and the
    dashboard's pages requires it. `tolerance_c`: the band the container chart draws."""
    app = FastAPI(
        title="Coldwake query API",
        description=_DESCRIPTION,
        version="1",
        openapi_url=OPENAPI_ROUTE,
        docs_url=None,  # the docs pages load scripts from a CDN: not on a vessel
        redoc_url=None,
        redirect_slashes=False,  # a redirect is not an answer: 404 instead
        dependencies=[Depends(bounded_query)],
    )
    metrics = ApiMetrics(stores.position)
    _errors(app)

    @app.get(TABLES_ROUTE, summary="Every table: name, topic, store, key, rows, position")
    async def tables(want: Consistency) -> Response:
        def fn(view: View) -> bytes:
            return json_body({"tables": [view.describe(t) for t in stores.tables]})

        return await answer(stores, fn, want)

    @app.get(ROW_ROUTE, summary="One row, 404 when absent")
    async def row(table: str, key: str, want: Consistency) -> Response:
        ref = stores.resolve(table)
        check_text("key", key)

        def fn(view: View) -> bytes:
            value = view.get(ref, key)
            if value is None:
                raise ApiError(404, f"no row {echo(key)} in the {ref.store} table {ref.name}")
            return value

        return await answer(stores, fn, want)

    @app.get(ROWS_ROUTE, summary="A page of rows in key order, and the cursor of the next")
    async def rows(
        table: str,
        want: Consistency,
        prefix: Prefix = "",
        after: After = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Response:
        ref = stores.resolve(table)
        _texts(prefix=prefix, after=after)
        check_limit(limit)

        def fn(view: View) -> bytes:
            return rows_body(ref.name, take_page(view.rows(ref, prefix, after), limit))

        return await answer(stores, fn, want)

    @app.get(ALERTS_ROUTE, summary="Open alerts, by alert id")
    async def alerts(
        want: Consistency,
        state: Annotated[str, Query(description="`open`: the only state kept")] = OPEN_STATE,
        vessel: Annotated[str | None, Query(description="only this vessel's")] = None,
        kind: Annotated[str | None, Query(description="only this kind")] = None,
        after: After = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Response:
        check_alert_filter(state, kind)
        _texts(vessel=vessel, after=after)
        check_limit(limit)

        def fn(view: View) -> bytes:
            # The fleet's rows first: where a dir has both, its rows say more.
            found = []
            if view.has("fleet"):
                found.append(view.rows(_OPEN_ALERTS, after=after))
            if view.has("vessel"):
                found.append(after_key(vessel_alerts(view.rows(_VESSEL_STATE)), after))
            page = take_page(alert_filter(merge_unique(*found), vessel, kind), limit)
            return values_body("alerts", page)

        return await answer(stores, fn, want)

    @app.get(VESSELS_ROUTE, summary="The fleet's vessels (fleet data dirs)")
    async def vessels(
        want: Consistency, after: After = None, limit: Limit = DEFAULT_LIMIT
    ) -> Response:
        _fleet_only(stores)
        _texts(after=after)
        check_limit(limit)

        def fn(view: View) -> bytes:
            return values_body("vessels", take_page(view.rows(_VESSELS, after=after), limit))

        return await answer(stores, fn, want)

    @app.get(VESSEL_ROUTE, summary="One vessel (fleet data dirs), 404 when absent")
    async def vessel(vessel_id: str, want: Consistency) -> Response:
        _fleet_only(stores)
        check_text("vessel_id", vessel_id)

        def fn(view: View) -> bytes:
            value = view.get(_VESSELS, vessel_id)
            if value is None:
                raise ApiError(404, f"no vessel {echo(vessel_id)} in the fleet tables")
            return value

        return await answer(stores, fn, want)

    @app.get(HEALTHZ_ROUTE, summary="Liveness: the process answers (no token needed)")
    async def healthz() -> Response:
        return json_response(json_body({"status": "ok"}))

    @app.get(READYZ_ROUTE, summary="Readiness: every store readable, how fresh each reader is")
    async def readyz() -> Response:
        ready, lines = await run_in_threadpool(stores.status)
        body = json_body({"ready": ready, "position": stores.position(), "tables": lines})
        headers = {} if ready else {"Retry-After": str(RETRY_AFTER_S)}
        return json_response(body, 200 if ready else 503, headers, stores.position())

    @app.get(METRICS_ROUTE, include_in_schema=False)
    async def prometheus() -> Response:
        return metrics.render()

    add_dashboard(app, stores, tolerance_c, mirrors)
    # Added last = outermost: metrics see every request, the refused ones too.
    # Compressed when asked: the dashboard's views are JSON that shrinks tenfold.
    app.add_middleware(GZipMiddleware, minimum_size=_GZIP_MIN_BYTES, compresslevel=6)
    app.add_middleware(CommonHeaders, position=stores.position)
    if token is not None:
        app.add_middleware(BearerAuth, token=token)
    app.add_middleware(Metrics, metrics=metrics)
    return app


def _texts(**texts: str | None) -> None:
    for name, text in texts.items():
        check_text(name, text)


def _fleet_only(stores: Stores) -> None:
    if "fleet" not in stores.kinds:
        raise ApiError(
            404,
            "vessels are a fleet endpoint: this server reads a vessel's data dir "
            f"({stores.data_dir}); ask the fleet's API ashore",
        )


def _errors(app: FastAPI) -> None:
    """Every error as `{"error": ...}`: ours, FastAPI's validation, routing, crashes."""

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.message, exc.headers, exc.position)

    async def validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        where = first.get("loc", ())
        name = str(where[-1]) if where else "request"
        msg = str(first.get("msg", "is not valid"))
        what = f"{where[0]} parameter" if len(where) > 1 else "parameter"
        status = 414 if first.get("type") == "string_too_long" else 400
        return error_response(status, f"{what} {name!r} is not valid: {msg[:1].lower()}{msg[1:]}")

    async def routing(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            message = f"no endpoint at this path; the endpoints are listed at {OPENAPI_ROUTE}"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed: the API is read-only (GET)"
        else:
            message = str(exc.detail)
        return error_response(exc.status_code, message, exc.headers)

    async def crash(request: Request, exc: Exception) -> Response:
        # The traceback goes to the server's log, not to the client.
        return error_response(500, f"internal error ({type(exc).__name__}); see the server log")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(HTTPException, routing)
    app.add_exception_handler(Exception, crash)
