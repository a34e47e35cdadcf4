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
from station.tui.screens.widgets import Column, add_columns, bar, clip, data_table

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


class BenchScreen(TabulaScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "stop", "Stop"),
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
        settled = [j for j in jobs if j.settled]
        title = Text()
        if len(settled) == len(jobs):
            ok = sum(1 for j in jobs if j.outcome.success)
            title.append(
                _("Finished: {ok} of {n} drive(s) erased and verified.").format(ok=ok, n=len(jobs)),
                style="bold green" if ok == len(jobs) else "bold red",
            )
        else:
            title.append(
                _("Erasing {n} drive(s): {done} finished. You may go back to the drives (Esc).").format(
                    n=len(jobs), done=len(settled)
                ),
                style="bold",
            )
        self.query_one("#title", Static).update(title)
        self.query_one("#result", Static).update(self.summary(jobs))

    def summary(self, jobs: list[TrackedJob]) -> Text:
        text = Text()
        for job in jobs:
            if job.settled:
                text.append_text(self.result_line(job))
            elif job.outcome is Outcome.RUNNING and job.state.phase == "firmware":
                text.append_text(firmware_line(job))
        return text

    def result_line(self, job: TrackedJob) -> Text:
        """A settled job: what it reached, and where its certificate (or its journal) is."""
        d = job.plan.drive
        name = d.kernel_name or d.path
        outcome = job.outcome
        text = Text()
        if not outcome.success:
            text.append(f"✘ {name}: ", style="bold red")
            text.append(failure_summary(job.state))
            text.append(" " + _("Journal: {path}").format(path=job.job_dir) + "\n")
            return text
        text.append(f"✔ {name}: ", style="bold green")
        if job.plan.purge is not None:
            text.append_text(self.purge_result(job))
        elif outcome is Outcome.VERIFIED:
            text.append(
                _("{method}, {n} pass(es), verified.").format(method=job.plan.method, n=len(job.plan.passes))
            )
        else:
            text.append(
                _("{method}, {n} pass(es), not verified.").format(
                    method=job.plan.method, n=len(job.plan.passes)
                )
            )
        text.append(" " + self.where(job) + "\n")
        return text

    def where(self, job: TrackedJob) -> str:
        if job.certificates:
            return _("Certificate: {path}").format(path=job.certificates[-1])
        if self.tabula.certificates:
            return _("No certificate: see {path}").format(path=job.job_dir / "worker.log")
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

    def action_back(self) -> None:
        self.app.pop_screen()
