"""The real dataflow in this process, on in-memory inputs.

A real RocksDB in tmp_path where the table is the point."""
