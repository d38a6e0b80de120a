"""Kafka edges that fail loudly: a bounded-time input and an output that loses nothing.

`admin` (topics and partitions, the start-up check), `source` (one Bytewax partition
per Kafka partition), `idle` (the pure rule for when a quiet partition stops holding
the merge back), `sink` (idempotent, acks=all), `producer` (JSONL files into the input
topics), `lag` (consumer lag for the metrics) and `errors`; for the fleet ashore,
`fleet_source` (every vessel's mirrored topics, found by pattern, in fixed slots),
`fleet_admin` (its shore clients), `vessel_gaps` (records lost on a vessel before
MirrorMaker copied them), `changelog` (the compacted `fleet.*` topics) and
`compacted` (a compacted topic read as a table, for `state.restore`). Offsets live in
Bytewax snapshots, never in consumer groups.
"""
