"""The query API: `python -m state.api --data DIR`, HTTP over a data dir's tables.

`names` (routes, headers, limits: every name once), `pages` (pure: parameter checks,
cursor pages, JSON bodies, open alerts from container-state rows), `sources` (one
store's reader, caught up, reopened when it fails), `stores`
(the sources behind one lock, a `View` per request), `middleware`
(metrics, bearer token, common headers), `app` (the FastAPI routes), `server` (the
command line: checks, then uvicorn). Reads only through `state.reader` and
`state.fleet_reader`; imports `flows.contract`, `flows.config` and `flows.fleet_core.names`.
"""
