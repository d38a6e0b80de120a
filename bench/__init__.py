"""Benchmarks: scripts that print figures; they never assert."""
