"""The diagnostics screen: inventory, SMART, quick tests and the reuse / repair / recycle verdict.

:func:`diagnostics.diagnose.diagnose` runs in a Textual thread worker, never in the UI thread; its
``on_event`` callback posts each step to the screen as it happens, and leaving the screen sets the
``cancel`` event so the diagnosis stops between (and inside) its steps.  What was not checked is
shown as *unknown*, never as passed.  The report can be saved as JSON to
``$TABULA_HOME/reports/<timestamp>.json`` and queued for the hub with the certificates
(:mod:`station.tui.diagnose` renders and saves it).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Static

from diagnostics.diagnose import DiagnosticReport, diagnose
from host.errors import TabulaError
from station.i18n import _
from station.tui.diagnose import event_line, queue_report, render_report, save_report
from station.tui.screens.base import TabulaScreen


class DiagEvent(Message):
    def __init__(self, kind: str, data: dict[str, Any]) -> None:
        super().__init__()
        self.kind = kind
        self.data = data


class DiagDone(Message):
    def __init__(self, report: DiagnosticReport) -> None:
        super().__init__()
        self.report = report


class DiagFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class DiagnosticsScreen(TabulaScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "save", "Save report"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.cancel = threading.Event()
        self.steps: list[str] = []
        self.report: DiagnosticReport | None = None
        self.error: str | None = None
        self.saved: Path | None = None
        self.thread: threading.Thread | None = None  # the worker thread running the diagnosis
        self.finished = threading.Event()  # set when diagnose() has returned (or failed)

    def compose(self) -> ComposeResult:
        yield Static(id="diag-title")
        with VerticalScroll(id="diag-scroll"):
            yield Static(id="diag-body")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.show()
        self.run_diagnosis()

    def on_unmount(self) -> None:
        self.cancel.set()  # the thread stops at its next check; its messages then go nowhere

    @work(thread=True, exclusive=True, group="diagnose", exit_on_error=False)
    def run_diagnosis(self) -> None:
        self.thread = threading.current_thread()
        setup = self.tabula.diagnose_setup
        machine = self.tabula.machine  # the report names the machine (lot, asset number)
        devices = list(setup.devices) if setup.devices is not None else None
        if devices is None and self.tabula.demo:
            devices = [e.path for e in self.tabula.entries]  # the demo's own drives only

        def on_event(kind: str, data: dict[str, Any]) -> None:
            self.post_message(DiagEvent(kind, dict(data)))

        try:
            report = diagnose(
                setup.make_runner(),
                mode=setup.mode,
                devices=devices,
                bounds=setup.bounds,
                read_test=setup.read_test,
                sys_root=setup.sys_root,
                proc_root=setup.proc_root,
                cancel=self.cancel,
                on_event=on_event,
                lot=machine.lot or None,
                asset_number=machine.asset_number,
            )
        except (TabulaError, OSError, ValueError) as exc:
            self.post_message(DiagFailed(exc.diagnostics() if isinstance(exc, TabulaError) else str(exc)))
            return
        finally:
            self.finished.set()
        if not self.cancel.is_set():  # a cancelled diagnosis was abandoned: its report goes nowhere
            self.post_message(DiagDone(report))

    def on_diag_event(self, message: DiagEvent) -> None:
        line = event_line(message.kind, message.data)
        if line is not None:
            self.steps.append(line)
            self.show()

    def on_diag_done(self, message: DiagDone) -> None:
        if self.cancel.is_set():  # posted just before Esc: the technician has already left
            return
        self.report = message.report
        self.show()

    def on_diag_failed(self, message: DiagFailed) -> None:
        self.error = message.error
        self.show()

    def show(self) -> None:
        title = Text()
        body = Text()
        if self.error is not None:
            title.append(_("Diagnosis failed"), style="bold red")
            body.append(self.error + "\n", style="red")
        elif self.report is None:
            title.append(_("Diagnosing this machine… (Esc stops)"), style="bold")
            for line in self.steps[:-1]:
                body.append(f"  ✔ {line}\n", style="dim")
            if self.steps:
                body.append(f"  … {self.steps[-1]}\n", style="bold")
        else:
            title.append(_("Diagnosis finished. S saves the report."), style="bold")
            if self.saved is not None:
                title.append("  " + _("Saved: {path}").format(path=self.saved), style="green")
            body = render_report(self.report)
        machine = self.tabula.machine.label()
        if machine:
            title.append("\n" + machine, style="dim")
        self.query_one("#diag-title", Static).update(title)
        self.query_one("#diag-body", Static).update(body)

    def action_save(self) -> None:
        report = self.report
        if report is None:
            self.notify(_("Wait for the diagnosis to finish."), severity="warning")
            return
        home = self.tabula.home
        try:
            self.saved = save_report(report, home)
        except OSError as exc:
            self.notify(_("Report not saved: {error}").format(error=exc), severity="error")
            return
        self.show()
        try:
            queue_report(self.saved, home)
        except TabulaError as exc:
            self.notify(
                _("Report saved to {path}, but not queued for sync: {error}").format(
                    path=self.saved, error=exc.message
                ),
                severity="warning",
                timeout=10,
            )
            return
        self.tabula.wake_sync()
        self.notify(_("Report saved to {path} and queued for sync.").format(path=self.saved))
        self.tabula.request_sync_status()

    def action_back(self) -> None:
        self.cancel.set()
        self.app.pop_screen()
