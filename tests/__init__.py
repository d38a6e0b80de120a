"""Coldwake's tests: `unit/` (pure, in-process), `flows/` (whole dataflows in memory),
`integration/` (real processes, RocksDB and Kafka clusters), `support/` (shared builders)."""
