"""Pure logic and in-process code, fast: no subprocess, no cluster, no network."""
