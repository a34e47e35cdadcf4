"""Errors of the station package (jobs, CLI, TUI, sync).

The root of every Tabula error, and the errors of discovery, protection and external commands, live
in :mod:`host.errors`.
"""

from __future__ import annotations

from host.errors import TabulaError


class StationError(TabulaError):
    """Base of the station package's own errors."""


class Refused(StationError):
    """The drive is protected: nothing was written."""
