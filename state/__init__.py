"""Queryable state: the vessel's container-state KTable and the fleet's sharded tables,
on RocksDB (rocksdict).

`table` (names, layout, options shared by writers and readers), `store` (the vessel
table's single writer), `reader` (read-only secondary views for other processes),
`sink` (the Bytewax sink around the writer), `fleet_store` (a fleet shard's writer,
with the undo log that rolls it back to a recovery snapshot), `fleet_reader` (all
shards merged), `fleet_sink` (the Bytewax sink, one partition per shard, and the
changelog it publishes to), `query` (the command line), `restore` and
`restore_fleet` (rebuild a lost store consistently with a recovery snapshot). Only the
sinks import Bytewax; from the project, only `flows.contract` and `flows.fleet_core`
(names and the change type) are imported, except by `restore`, which reads the flows'
recovery state and Kafka edges.
"""
