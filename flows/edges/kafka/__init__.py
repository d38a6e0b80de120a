"""Kafka edges that fail loudly: a bounded-time input and an output that loses nothing.

`admin` (topics and partitions, the start-up check), `source` (one Bytewax partition
per Kafka partition), `idle` (the pure rule for when a quiet partition stops holding
the merge back), `sink` (idempotent, acks=all), `producer` (JSONL files into the input
topics) and `errors`; for the fleet ashore, `fleet_source` (every vessel's mirrored
topics, found by pattern, in fixed slots) and `changelog` (the compacted `fleet.*`
topics). Offsets live in Bytewax snapshots, never in consumer groups.
"""
