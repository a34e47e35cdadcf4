"""What the screens may read from the app, as a protocol: screens depend on this, never on the app.

:class:`station.tui.app.TabulaApp` provides it (mypy checks that it does); a screen reaches it as
``self.tabula``.  To *change* the station's state a screen posts a message
(:mod:`station.tui.messages`) instead of calling the app.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from diagnostics.diagnose import Bounds, Mode
from erase.purge.planner import PlanOptions, PurgePlan
from erase.record import JobPlan
from host.drives import DriveEntry
from host.identity import DriveInfo
from host.runner import Runner, SubprocessRunner
from station.tui.machine import Machine
from station.tui.model import Bench, JobBook, StationSettings, SyncView, TrackedJob


@dataclass(frozen=True)
class DiagnoseSetup:
    """How the diagnostics screen runs :func:`diagnostics.diagnose.diagnose` (tests replay a machine).

    ``runner`` builds the command runner (default: the real one); ``devices`` None diagnoses every
    drive of the inventory (the demo passes its own loop devices).
    """

    runner: Callable[[], Runner] | None = None
    sys_root: Path = Path("/sys")
    proc_root: Path = Path("/proc")
    bounds: Bounds | None = None
    mode: Mode = "quick"
    read_test: bool = True
    devices: tuple[str, ...] | None = None

    def make_runner(self) -> Runner:
        if self.runner is not None:
            return self.runner()
        return SubprocessRunner()


class StationContext(Protocol):
    """The station as the screens see it: drives, jobs, settings, the machine, sync status, planning."""

    entries: list[DriveEntry]
    selected: set[str]
    book: JobBook
    benches: list[Bench]
    settings: StationSettings
    settings_path: Path
    certificates: bool
    demo: bool
    demo_drives: dict[str, str] | None  # the demo's drives by backing file ("failing" or ""), else None
    home: Path
    sync: SyncView
    diagnose_setup: DiagnoseSetup
    machine: Machine  # the machine at the bench: its lot and asset number (station.tui.machine)

    def health_of(self, info: DriveInfo) -> str | None: ...

    def show_absent_job(self, job: TrackedJob) -> bool: ...

    def make_plan(self, entry: DriveEntry, policy: str) -> JobPlan: ...

    def plan_purge(
        self, entry: DriveEntry, policy: str, plan_options: PlanOptions
    ) -> tuple[JobPlan, PurgePlan]: ...

    def wake_sync(self) -> None: ...

    def request_sync_status(self) -> None: ...
