"""What wraps every request of the query API: metrics, the bearer token, common headers.

Plain ASGI middleware (cheaper than Starlette's BaseHTTPMiddleware on the hot path),
outermost first: `Metrics` (every request counted and timed, refused ones too),
`BearerAuth` (401 without the token), `CommonHeaders` (the position header on
every answer that lacks one, no caching). `json_response` builds every answer.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Mapping
from typing import Final

import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from state.api.names import (
    AUTHORIZATION,
    BEARER,
    FIXED_ROUTES,
    POSITION_HEADER,
    UNMATCHED_ROUTE,
    is_open,
)

JSON: Final = "application/json"
#: Seconds; a get answers in well under a millisecond, a `min_position` wait up to 10 s.
LATENCY_BUCKETS: Final = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
_POSITION: Final = POSITION_HEADER.lower().encode()
_EXTRA: Final = [(b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff")]


def json_response(
    body: bytes,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    position: int | None = None,
) -> Response:
    """An answer of JSON bytes, with the position it reflects when one is known."""
    out = dict(headers or {})
    if position is not None:
        out[POSITION_HEADER] = str(position)
    return Response(body, status, out, media_type=JSON)


def error_response(
    status: int,
    message: str,
    headers: Mapping[str, str] | None = None,
    position: int | None = None,
) -> Response:
    """`{"error": "<one sentence>"}` with this status."""
    return json_response(orjson.dumps({"error": message}), status, headers, position)


class ApiMetrics:
    """The API's own Prometheus registry: requests by route, latency, position."""

    def __init__(self, position: Callable[[], float]) -> None:
        # No `_created` series: a scrape of this process needs only the counts.
        disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "coldwake_api_requests",
            "HTTP requests answered by the query API, by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "coldwake_api_request_duration_seconds",
            "Time from a request's arrival to its answer's last byte, by route template",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        gauge = Gauge(
            "coldwake_api_position",
            "The position the query API's readers last caught up to (sum over its stores)",
            registry=self.registry,
        )
        gauge.set_function(position)

    def render(self) -> Response:
        """The registry in Prometheus text format."""
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class Metrics:
    """Count and time every HTTP request by the route template it matched."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            # The template, never the path: one series per route, whatever the keys.
            # (FastAPI names the route in the scope for its own routes only.)
            route = getattr(scope.get("route"), "path", None)
            if not isinstance(route, str):
                route = scope["path"] if scope["path"] in FIXED_ROUTES else UNMATCHED_ROUTE
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)


class BearerAuth:
    """401 for a request without `Authorization: Bearer <token>`, except open paths."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = (BEARER + token).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not is_open(scope["path"]):
            given = b""
            for name, value in scope["headers"]:
                if name == AUTHORIZATION:
                    given = value
            # Constant time: how much of a guess matched must not show in the timing.
            if not hmac.compare_digest(given, self._expected):
                refused = error_response(
                    401,
                    "this server requires Authorization: Bearer <COLDWAKE_API_TOKEN>",
                    {"WWW-Authenticate": 'Bearer realm="coldwake"'},
                )
                await refused(scope, receive, send)
                return
        await self.app(scope, receive, send)


class CommonHeaders:
    """Add the last known position where an answer has none, and forbid caching."""

    def __init__(self, app: ASGIApp, position: Callable[[], int]) -> None:
        self.app = app
        self.position = position

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name == _POSITION for name, _ in headers):
                    headers.append((_POSITION, str(self.position()).encode()))
                message["headers"] = headers + _EXTRA
            await send(message)

        await self.app(scope, receive, sending)
