"""The vessel flow: `python -m bytewax.run flows.vessel`.

Data flows one way: an edge reads raw lines (`edges/`), `lines` parses them into
records (`events`), `watermark` merges partitions into one canonical order, `rules/`
detect alerts and close windows, `detect_step` wraps that in Bytewax, and the edges
and `state` write the outputs. Pure modules (`contract`, `events`, `watermark`,
`lines`, `rules/`, `sim/`) never import Bytewax, an edge or `config`; `config` reads
the environment; `dataflow` wires; `vessel` is the job.
"""
