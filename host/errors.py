"""The root every Tabula error derives from, and the errors of the host layer.

Each package (``host``, ``station``, ``erase``, ``certs``, ``diagnostics``, ``hub``) has one base class derived from
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


class HostError(TabulaError):
    """Base of the host layer's errors: drive discovery and identity, protection, external commands."""


class BadInput(HostError):
    """The user asked for something that cannot be done as asked; nothing was written."""


class InvalidDrive(HostError):
    """A drive description could not be built because it would state something false."""


class CommandError(HostError):
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
