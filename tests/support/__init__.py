"""Shared by the suites.

`builders` (contract records), `memory` (the dataflow on in-memory edges), `kafka`
(topic helpers for the clusters)."""
