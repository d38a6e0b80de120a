"""The fleet flow's pure core: fleet-wide tables that converge.

`names` (input kinds and tables, defined once), `inputs` (one vessel record to a
typed value), `deltas` (the message between the stages, and row keys), `entities`
(stage 1: each entity's latest version, as deltas), `tables` (stage 2: rows sum their
deltas and encode to JSON), `local` (both stages in memory, split over any number of
instances). A table's final content depends only on the set of vessel records: not
on their order, duplicates, the number of instances or where a run was resumed.
No Bytewax, Kafka or RocksDB import.
"""
