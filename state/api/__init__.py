"""The query API: `python -m state.api --data DIR`, HTTP over a data dir's tables.

`names` (routes, headers, limits: every name once), `pages` (pure: parameter checks,
cursor pages, JSON bodies, open alerts from container-state rows), `sources` (one
store's reader, caught up, reopened when it fails), `stores`
(the sources behind one lock, a `View` per request), `middleware`
(metrics, bearer token, common headers), `app` (the FastAPI routes), `server` (the
command line: checks, then uvicorn); the dashboard: `views` (each page's data, from a
`View`), `dashboard` (its routes, view cache and static files under `static/`), `link`
(what waits to cross each vessel's link, from `deploy.kafka`'s `mirror status`).
Reads only through `state.reader` and `state.fleet_reader`; imports `flows.contract`,
`flows.config`, `flows.timestamps`, `flows.fleet_core` and, in `link` only, `deploy.kafka`.
"""
