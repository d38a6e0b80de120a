"""Cold-chain detection, pure: the contract's rules over records in canonical order.

`thresholds` (the tunable limits), `records` (output records and their JSON),
`clock` (a vessel's event time, positions and timers), `alerts` (opening, closing
and the per-reading alert rules), `windows` (tumbling windows), `detector` (the
`Detector` that drives them all). Deterministic: the same records in the same order
give byte-identical outputs. Imports only `flows.contract`, `flows.events`, stdlib
and orjson; never Bytewax, an edge or the config.
"""
