"""Blink a drive bay's locate LED (ledmon's ``ledctl``), so a technician finds the right drive.

On a bench with many bays the ``/dev`` name says nothing about which tray to pull: ``ledctl
locate=/dev/sdX`` lights the bay's identify LED on enclosures that support it (SES-2, VMD, NPEM,
SGPIO).  Everything runs through the station's command runner.  ``--listed-only`` makes ledctl touch
only the named drive, never the others' LED state.  Most desktop PCs and every virtual or USB drive
have no such LED: that is reported plainly, not as an error of the erase.
"""

from __future__ import annotations

from dataclasses import dataclass

from host.errors import ToolMissing
from host.runner import Runner


@dataclass(frozen=True)
class LocateResult:
    ok: bool
    message: str  # English, for logs; the TUI shows its own translated text from ``reason``
    reason: str  # "ok", "unsupported", "no-tool", "error"


def locate(runner: Runner, device: str, *, on: bool = True) -> LocateResult:
    """Turn ``device``'s locate LED on (or off)."""
    pattern = "locate" if on else "locate_off"
    if not runner.which("ledctl"):
        return LocateResult(False, "ledctl (package ledmon) is not installed", "no-tool")
    try:
        result = runner.run(["ledctl", "--listed-only", f"{pattern}={device}"], timeout=15, mutating=True)
    except ToolMissing:
        return LocateResult(False, "ledctl (package ledmon) is not installed", "no-tool")
    text = (result.stdout + "\n" + result.stderr).strip()
    if result.ok and "not supported" not in text and "missing block device" not in text:
        return LocateResult(True, f"locate LED {'on' if on else 'off'} for {device}", "ok")
    if "not supported" in text or "missing block device" in text:
        return LocateResult(False, f"{device} has no controllable bay LED", "unsupported")
    last = text.splitlines()[-1] if text else f"exit code {result.returncode}"
    return LocateResult(False, f"ledctl failed for {device}: {last}", "error")
