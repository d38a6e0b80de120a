"""Every name and bound the query API shows the world, defined once.

Routes, headers, query parameters and limits: the app, the command line, the
tests and `docs/api.md` refer to these constants. Pure: imports nothing.
"""

from __future__ import annotations

from typing import Final

# -- routes ----------------------------------------------------------------------

TABLES_ROUTE: Final = "/api/tables"
ROWS_ROUTE: Final = "/api/tables/{table}/rows"
ROW_ROUTE: Final = "/api/tables/{table}/rows/{key}"
ALERTS_ROUTE: Final = "/api/alerts"
VESSELS_ROUTE: Final = "/api/vessels"
VESSEL_ROUTE: Final = "/api/vessels/{vessel_id}"
HEALTHZ_ROUTE: Final = "/healthz"
READYZ_ROUTE: Final = "/readyz"
METRICS_ROUTE: Final = "/metrics"
OPENAPI_ROUTE: Final = "/openapi.json"

# The dashboard: its pages, their data (one JSON view per page) and static files.
FLEET_PAGE: Final = "/"
CONTAINER_PAGE: Final = "/containers/{container_id}"
VESSEL_PAGE: Final = "/vessels/{vessel_id}"
FLEET_VIEW_ROUTE: Final = "/api/view/fleet"
CONTAINER_VIEW_ROUTE: Final = "/api/view/containers/{container_id}"
VESSEL_VIEW_ROUTE: Final = "/api/view/vessels/{vessel_id}"
CREW_VIEW_ROUTE: Final = "/api/view/vessel"
STATIC_PREFIX: Final = "/static"

#: Routes without parameters: their path is their template (the metrics' route label).
FIXED_ROUTES: Final = frozenset(
    {TABLES_ROUTE, ALERTS_ROUTE, VESSELS_ROUTE, HEALTHZ_ROUTE, READYZ_ROUTE}
    | {METRICS_ROUTE, OPENAPI_ROUTE, FLEET_PAGE, FLEET_VIEW_ROUTE, CREW_VIEW_ROUTE}
)

#: Answered without a token: a liveness probe carries none, and says nothing of the data;
#: nor do the dashboard's pages and static files (their data comes from /api/view/…,
#: which the page's script fetches with the token).
OPEN_ROUTES: Final = frozenset({HEALTHZ_ROUTE, FLEET_PAGE})
# A page route's prefix: its template up to the parameter.
OPEN_PREFIXES: Final = (
    STATIC_PREFIX + "/",
    *(page.partition("{")[0] for page in (CONTAINER_PAGE, VESSEL_PAGE)),
)


def is_open(path: str) -> bool:
    """Whether a path is answered without the token."""
    return path in OPEN_ROUTES or path.startswith(OPEN_PREFIXES)


#: The metrics' route label of a request that matched no route (or was refused before).
UNMATCHED_ROUTE: Final = "unmatched"

# -- headers ---------------------------------------------------------------------

#: The input position an answer reflects: the sum of its stores' positions.
POSITION_HEADER: Final = "X-Coldwake-Position"
AUTHORIZATION: Final = b"authorization"
BEARER: Final = "Bearer "

# -- query parameters --------------------------------------------------------------

#: `/api/alerts?state=`: the stores keep open alerts only.
OPEN_STATE: Final = "open"

# -- limits ------------------------------------------------------------------------

DEFAULT_LIMIT: Final = 100
#: Rows a page may hold: a bigger page would hold the readers' lock too long.
MAX_LIMIT: Final = 1000
#: Bytes (UTF-8) of a key, and of every text parameter (`prefix`, `after`, `vessel`, ...).
MAX_KEY_BYTES: Final = 1024
#: Bytes of a whole query string.
MAX_QUERY_BYTES: Final = 8 * 1024
#: Bytes of a request's head (request line and headers), enforced by the HTTP parser.
MAX_REQUEST_HEAD: Final = 16 * 1024
#: The largest position `min_position` may ask for (positions are 8-byte counters).
MAX_POSITION: Final = (1 << 63) - 1

DEFAULT_WAIT_MS: Final = 2000
MAX_WAIT_MS: Final = 10_000
#: How often a request waiting for `min_position` catches the readers up.
POLL_S: Final = 0.02
#: A request catches the readers up if they last did longer ago than this: fresh
#: answers without catching up 8 shards on every request.
REFRESH_S: Final = 0.1
#: `Retry-After` (seconds) of a 503: a position not reached, or a store not readable.
RETRY_AFTER_S: Final = 1

# -- command line ------------------------------------------------------------------

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8787
TOKEN_VAR: Final = "COLDWAKE_API_TOKEN"
#: A token shorter than this is refused at start: it would be guessable.
MIN_TOKEN_CHARS: Final = 16
