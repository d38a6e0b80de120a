"""Queryable state: the container-state KTable on RocksDB (rocksdict).

`table` (names, layout, options shared by writer and readers), `store` (the single
writer), `reader` (read-only secondary views for other processes), `sink` (the
Bytewax sink around the writer), `query` (the command line). Only `sink` imports
Bytewax; from the project, only `flows.contract` is imported.
"""
