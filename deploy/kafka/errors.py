"""The launcher's errors; the CLI maps each to an exit code."""

from __future__ import annotations


class LauncherError(Exception):
    """A cluster could not be set up, started, stopped or inspected."""


class ToolMissingError(LauncherError):
    """``java`` or ``mvn`` is missing or too old."""


class StateMissingError(LauncherError):
    """The directory holds no clusters (no ``cluster.json``)."""
