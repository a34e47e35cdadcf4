"""The bench: live progress of the erasures started together, then their results."""

from __future__ import annotations

import os
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.coordinate import Coordinate
from textual.widgets import (
    DataTable,
    Footer,
    Static,
)

from erase.purge.planner import PurgePlan
from erase.record import Outcome
from host.errors import TabulaError
from station.i18n import N_, _
from station.tui import model
from station.tui.messages import StationChanged
from station.tui.model import (
    TrackedJob,
    failure_summary,
    human_duration,
    human_rate,
    status_text,
)
from station.tui.screens.base import TabulaScreen
from station.tui.screens.confirm import ConfirmScreen
from station.tui.screens.result import ResultScreen
from station.tui.screens.widgets import Column, add_columns, bar, clip, data_table
from station.words import method_title

BENCH_COLUMNS: tuple[Column, ...] = (
    ("dev", N_("Drive"), 9),
    ("serial", N_("Serial"), 10),
    ("step", N_("Step"), 12),
    ("bar", N_("Progress"), 16),
    ("rate", N_("Speed"), 10),
    ("left", N_("Left"), 21),
)


def running_cells(job: TrackedJob) -> tuple[str, str, Text | str]:
    """(step, speed, time left) of a running job: firmware steps show the time they have taken."""
    st = job.state
    if st.phase == "firmware":
        step = _("firmware {i}/{n}").format(i=(st.current_step or 0) + 1, n=len(st.plan.purge_steps))
        elapsed = model.firmware_elapsed(st)
        return step, "", _("{t} elapsed").format(t=human_duration(elapsed)) if elapsed is not None else "…"
    if st.worker is None or st.phase == "planned":
        step = _("starting")
    elif st.phase == "verify":
        step = _("check")
    else:
        step = _("pass {cur}/{n}").format(cur=(st.current_pass or 0) + 1, n=len(st.plan.passes))
    eta = job.eta_seconds()
    return step, human_rate(st.rate) if st.rate else "…", human_duration(eta) if eta is not None else "…"


def firmware_line(job: TrackedJob) -> Text:
    """A running firmware step: its name and how long the drive has been at it."""
    d = job.plan.drive
    elapsed = model.firmware_elapsed(job.state)
    text = Text()
    text.append(f"… {d.kernel_name or d.path}: ", style="bold cyan")
    text.append(model.firmware_step_name(job.plan, job.state.current_step) + ": ")
    text.append(
        _("waiting for the drive's firmware ({t})").format(
            t=human_duration(elapsed) if elapsed is not None else "…"
        )
        + "\n"
    )
    return text


def bench_title(jobs: list[TrackedJob]) -> Text:
    """How the bench is doing: erased, failed and still running, each counted on its own."""
    ok = sum(1 for j in jobs if j.settled and j.outcome is Outcome.VERIFIED)
    failed = sum(1 for j in jobs if j.settled and j.outcome is not Outcome.VERIFIED)
    running = len(jobs) - ok - failed
    if running:
        text = _("Erasing {n} drive(s): {ok} erased, {failed} failed, {running} in progress.").format(
            n=len(jobs), ok=ok, failed=failed, running=running
        )
        return Text(text + " " + _("You may go back to the drives (Esc)."), style="bold")
    text = _("Finished: {ok} of {n} drive(s) erased and verified.").format(ok=ok, n=len(jobs))
    if failed:
        text += " " + _("{failed} NOT erased.").format(failed=failed)
    return Text(text, style="bold green" if ok == len(jobs) else "bold red")


class BenchScreen(TabulaScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "stop", "Stop"),
        Binding("enter", "result", "Result"),
        Binding("escape", "back", "Drives"),
    ]

    def __init__(self, bench: model.Bench) -> None:
        super().__init__()
        self.bench = bench

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        yield data_table("bench")
        yield VerticalScroll(Static(id="result"), id="result-box")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#bench", DataTable)
        add_columns(table, BENCH_COLUMNS)
        for job in self.jobs():
            table.add_row(*self.cells(job), key=str(job.job_dir))
        self.refresh_rows()

    def jobs(self) -> list[TrackedJob]:
        book = self.tabula.book.jobs
        return [book[d] for d in self.bench.job_dirs if d in book]

    def cells(self, job: TrackedJob) -> list[Text | str]:
        st = job.state
        d = st.plan.drive
        outcome = job.outcome
        if outcome is Outcome.RUNNING:
            step, rate, left = running_cells(job)
        else:
            step = status_text(job)
            rate = ""
            style = "bold green" if outcome.success else "bold red"
            left = Text(_("done") if outcome.success else clip(failure_summary(st), 20), style=style)
        frac = 1.0 if outcome.success else st.overall_fraction
        return [
            d.kernel_name or os.path.basename(d.path),
            clip(d.serial, 9, keep_end=True),
            step,
            f"{bar(frac)} {int(frac * 100):3d}%",
            rate,
            left,
        ]

    def refresh_rows(self) -> None:
        table = self.part("#bench", DataTable)
        if table is None:
            return
        jobs = self.jobs()
        for job in jobs:
            key = str(job.job_dir)
            for (col, _label, _width), value in zip(BENCH_COLUMNS, self.cells(job), strict=True):
                table.update_cell(key, col, value)
        self.query_one("#title", Static).update(bench_title(jobs))
        self.query_one("#result", Static).update(self.summary(jobs))
        self.refresh_bindings()  # "x Stop" only while something runs

    def summary(self, jobs: list[TrackedJob]) -> Text:
        text = Text()
        for job in jobs:
            if job.settled:
                text.append_text(self.result_line(job))
            elif job.outcome is Outcome.RUNNING and job.state.phase == "firmware":
                text.append_text(firmware_line(job))
        return text

    def result_line(self, job: TrackedJob) -> Text:
        """A settled job: what it reached, and where its certificate (or its signed failure report) is."""
        d = job.plan.drive
        name = d.kernel_name or d.path
        outcome = job.outcome
        text = Text()
        if outcome is not Outcome.VERIFIED:
            text.append(f"✘ {name}: ", style="bold red")
            text.append(failure_summary(job.state) if not outcome.success else _("erased, NOT verified"))
            text.append(" " + self.where(job, failed=True) + "\n")
            return text
        text.append(f"✔ {name}: ", style="bold green")
        if job.plan.purge is not None:
            text.append_text(self.purge_result(job))
        else:
            text.append(_("{method}: erased and verified.").format(method=method_title(job.plan.method)))
        text.append(" " + self.where(job, failed=False) + "\n")
        return text

    def where(self, job: TrackedJob, *, failed: bool) -> str:
        pdf = next((p for p in job.certificates if p.endswith(".pdf")), None)
        if pdf is not None and failed:
            return _("Signed failure report: {path} (Enter: what now)").format(path=pdf)
        if pdf is not None:
            return _("Certificate: {path} (Enter: print, label)").format(path=pdf)
        if self.tabula.certificates:
            return _("Nothing was signed: see {path}").format(path=job.job_dir / "worker.log")
        return _("Record: {path}").format(path=job.job_dir / "record.json")

    def purge_result(self, job: TrackedJob) -> Text:
        """The NIST level a purge-policy job reached, and why it is lower than requested."""
        try:
            level, note = model.level_result(job.state)
        except TabulaError as exc:
            return Text(exc.diagnostics(), style="red")
        text = Text(_("{level} reached.").format(level=model.level_name(level or "none")), style="bold")
        purge = job.plan.purge or {}
        if note and note == purge.get("level_note"):
            # The planner's reasons, in the technician's language (the record keeps them in English).
            why = model.purge_reasons(PurgePlan.from_dict(purge))
            text.append(" " + _("Purge was not possible: {why}.").format(why=why), style="yellow")
        elif note:
            text.append(" " + _("Lower than requested: {why}").format(why=note), style="yellow")
        return text

    def current(self) -> TrackedJob | None:
        table = self.query_one("#bench", DataTable)
        jobs = self.jobs()
        if not 0 <= table.cursor_row < len(jobs):
            return None
        key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
        return next((j for j in jobs if str(j.job_dir) == key), None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return any(j.outcome is Outcome.RUNNING for j in self.jobs())
        if action == "result":
            return any(j.settled for j in self.jobs())
        return True

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a row (the table has the focus and takes the key): that drive's result."""
        self.action_result()

    def action_result(self) -> None:
        """The highlighted drive's result and next step, once its job is over."""
        job = self.current()
        if job is None or not job.settled:
            self.notify(_("This erasure is not over yet."), severity="warning")
            return
        self.app.push_screen(ResultScreen(job))

    def action_stop(self) -> None:
        job = self.current()
        if job is None:
            return
        name = job.plan.drive.kernel_name or job.plan.drive.path
        if job.outcome is not Outcome.RUNNING:
            self.notify(_("The erasure of {drive} is not running.").format(drive=name), severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.stop(job, name)

        self.app.push_screen(
            ConfirmScreen(
                _(
                    "Stop the erasure of {drive}? The drive will be left partly erased: "
                    "it gets a failure report instead of a certificate, and must be erased again."
                ).format(drive=name),
                yes=_("Stop it"),
                no=_("Keep erasing"),
            ),
            answered,
        )

    def stop(self, job: TrackedJob, name: str) -> None:
        try:
            result = model.stop_worker(job)
        except OSError as exc:
            self.notify(_("Could not stop {drive}: {error}").format(drive=name, error=exc), severity="error")
            return
        if result == "signalled":
            self.notify(_("Stopping the erasure of {drive}…").format(drive=name))
        elif result == "not-ours":
            self.notify(
                _(
                    "The worker of {drive} is gone and its process number is now another program's: nothing was stopped."
                ).format(drive=name),
                severity="warning",
            )
        else:
            self.notify(_("The erasure of {drive} is not running.").format(drive=name), severity="warning")

    def on_station_changed(self, message: StationChanged) -> None:
        self.refresh_rows()

    def on_screen_resume(self) -> None:
        """Back from another screen: what changed meanwhile was told to that screen; draw it now."""
        self.refresh_rows()

    def action_back(self) -> None:
        self.app.pop_screen()
