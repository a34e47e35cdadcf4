"""The messages of the TUI: how the app and its screens tell each other what happened.

Screens never call the app to change the station's state, and the app never reaches into a screen
to redraw it: each side posts a message and the other handles it (``on_<message_name>``).

* app -> screens: :class:`StationChanged` (drives, jobs or benches changed) and
  :class:`SyncChanged` (the sync status line), posted to every screen on the stack; a screen that
  does not show them ignores them.
* screens -> app: :class:`StartRequested`, :class:`QuitRequested`, :class:`SettingsSubmitted`.
* threads -> app: :class:`DrivesChanged`, :class:`DrivesScanned`, :class:`JobsFound`, :class:`SyncPolled`.
"""

from __future__ import annotations

from pathlib import Path

from textual.message import Message

from erase.record import JobPlan
from host.drives import DriveEntry
from station.tui.model import StationSettings, SyncView

# -- app -> screens ------------------------------------------------------------------------------


class StationChanged(Message, bubble=False):
    """Drives, jobs or benches changed: redraw what shows them."""


class SyncChanged(Message, bubble=False):
    """The sync status changed: redraw the status line."""


# -- screens -> app ------------------------------------------------------------------------------


class StartRequested(Message):
    """The technician confirmed these plans: start their jobs and show their bench."""

    def __init__(self, plans: list[JobPlan]) -> None:
        super().__init__()
        self.plans = plans


class QuitRequested(Message):
    """The technician asked to quit (the app asks first while erasures run)."""


class SettingsSubmitted(Message):
    """The settings screen was saved with these settings."""

    def __init__(self, settings: StationSettings) -> None:
        super().__init__()
        self.settings = settings


# -- worker threads -> app ------------------------------------------------------------------------


class DrivesChanged(Message):
    """A drive came or went (posted from the monitor thread)."""

    def __init__(self, action: str, what: str) -> None:
        super().__init__()
        self.action = action
        self.what = what


class JobsFound(Message):
    def __init__(self, job_dirs: dict[Path, float], wanted: list[Path], problems: list[str]) -> None:
        super().__init__()
        self.job_dirs = job_dirs
        self.wanted = wanted
        self.problems = problems


class SyncPolled(Message):
    """What the sync outbox says (read in a thread): the status, and jobs whose certificate was sent."""

    def __init__(self, view: SyncView, sent: list[Path]) -> None:
        super().__init__()
        self.view = view
        self.sent = sent


class DrivesScanned(Message):
    def __init__(self, entries: list[DriveEntry], health: dict[str, str | None]) -> None:
        super().__init__()
        self.entries = entries
        self.health = health
