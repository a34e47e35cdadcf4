"""Typed errors for the station package, and the root every Tabula error derives from.

Each package (``station``, ``erase``, ``certs``, ``diagnostics``) has one base class derived from
:class:`TabulaError`.  Every error can explain itself to a person through :meth:`diagnostics`:
what went wrong, and what to do about it.  The CLI prints ``diagnostics()``; the TUI shows it.
"""

from __future__ import annotations


class TabulaError(Exception):
    """Root of every error Tabula raises on purpose."""

    #: One line telling a technician what to do next.  Subclasses override it.
    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def diagnostics(self) -> str:
        """A human explanation: the message, then the hint when there is one."""
        if self.hint:
            return f"{self.message}\n  -> {self.hint}"
        return self.message


class StationError(TabulaError):
    """Base of the station package's errors (discovery, protection, jobs, CLI)."""


class BadInput(StationError):
    """The user asked for something that cannot be done as asked; nothing was written."""


class CommandError(StationError):
    """An external command could not be run (missing tool, timeout)."""


class ToolMissing(CommandError):
    def __init__(self, tool: str, package: str | None = None) -> None:
        hint = f"install it (apt-get install {package})" if package else "install it and try again"
        super().__init__(f"the tool '{tool}' is not installed", hint=hint)
        self.tool = tool


class CommandTimeout(CommandError):
    def __init__(self, argv: list[str], timeout: float) -> None:
        super().__init__(f"command timed out after {timeout:.0f} s: {' '.join(argv)}")
        self.argv = argv
        self.timeout = timeout
