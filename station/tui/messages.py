"""The messages of the TUI: how the app and its screens tell each other what happened.

Screens never call the app to change the station's state, and the app never reaches into a screen
to redraw it: each side posts a message and the other handles it (``on_<message_name>``).

* app -> screens: :class:`StationChanged` (drives, jobs or benches changed) and
  :class:`SyncChanged` (the sync status line), posted to every screen on the stack; a screen that
  does not show them ignores them.
* screens -> app: :class:`StartRequested`, :class:`QuitRequested`, :class:`SettingsSubmitted`,
  :class:`MachineSubmitted`, :class:`FollowRequested`, :class:`PrintRequested`, :class:`DestroyRequested`.
* threads -> app: :class:`DrivesChanged`, :class:`DrivesScanned`, :class:`JobsFound`, :class:`SyncPolled`,
  :class:`Printed`, :class:`Destroyed`, :class:`LotChecked`.
"""

from __future__ import annotations

from pathlib import Path

from textual.message import Message

from erase.record import JobPlan
from host.drives import DriveEntry
from station.sync.lots import LotCheck
from station.tui.machine import Machine
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


class MachineSubmitted(Message):
    """The machine at the bench: its lot and asset number (every job started next carries them)."""

    def __init__(self, machine: Machine) -> None:
        super().__init__()
        self.machine = machine


class FollowRequested(Message):
    """Show the erasures in progress (the newest bench, or the jobs found running at start)."""


class PrintRequested(Message):
    """Print a job's signed document (``what="document"``) or its label (``what="label"``)."""

    def __init__(self, job_dir: Path, what: str) -> None:
        super().__init__()
        self.job_dir = job_dir
        self.what = what


class DestroyRequested(Message):
    """Sign the record of the physical destruction of a failed job's drive."""

    def __init__(self, job_dir: Path, method: str, by: str, witness: str, photo: str) -> None:
        super().__init__()
        self.job_dir = job_dir
        self.method = method
        self.by = by
        self.witness = witness
        self.photo = photo


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


class Printed(Message):
    """A print job was handed to CUPS (``request``), or could not be (``error``)."""

    def __init__(self, what: str, path: Path | None, request: str, error: str) -> None:
        super().__init__()
        self.what = what
        self.path = path
        self.request = request
        self.error = error


class Destroyed(Message):
    """A destruction record was signed for a job (``paths``), or could not be (``error``)."""

    def __init__(self, job_dir: Path, paths: list[Path], error: str) -> None:
        super().__init__()
        self.job_dir = job_dir
        self.paths = paths
        self.error = error


class LotChecked(Message):
    """What the hub said of the machine's lot (station.sync.lots); None: no hub is configured."""

    def __init__(self, check: LotCheck | None) -> None:
        super().__init__()
        self.check = check


class DrivesScanned(Message):
    def __init__(self, entries: list[DriveEntry], health: dict[str, str | None]) -> None:
        super().__init__()
        self.entries = entries
        self.health = health
