"""A finished job and what to do next: the signed record in a few lines, its QR code, and the choices.

After a certificate: print it (``i``), print a label (``t``).  After a failure: the signed failure report
(named as such, never a certificate), and the choices NIST SP 800-88 leaves: erase it again (``r``),
another method or NIST Purge (``m``), or destroy the drive and record it (``k``).  After a destruction:
its record and its label.  The QR code drawn here is the one printed on the PDF (same encoder).
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, Static

from erase.record import JobPlan
from host.drives import DriveEntry
from station.i18n import _
from station.tui import qr
from station.tui.messages import PrintRequested, StationChanged
from station.tui.model import NIST_PURGE, TrackedJob
from station.tui.outcome import Result, result_of, steps_for
from station.tui.screens.base import TabulaScreen
from station.tui.screens.destroy import DestroyScreen
from station.tui.screens.plan import PlanScreen
from station.tui.screens.policy import PolicyScreen
from station.tui.screens.purge_plan import PurgePlanScreen

_STYLES = {
    "certificate": "bold green",
    "failure_report": "bold red",
    "destroyed": "bold",
    "unsigned": "bold red",
}
_MARKS = {"certificate": "✔", "failure_report": "✘", "destroyed": "■", "unsigned": "✘"}


class ResultScreen(TabulaScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("i", "print", "Print"),
        Binding("t", "label", "Label"),
        Binding("r", "retry", "Erase again"),
        Binding("m", "other", "Other method"),
        Binding("k", "destroy", "Destroyed"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, job: TrackedJob) -> None:
        super().__init__()
        self.job = job
        self.result: Result = result_of(job)

    def compose(self) -> ComposeResult:
        with Horizontal(id="result-screen"):
            yield VerticalScroll(Static(self.describe(), id="result-text"), id="result-left")
            yield Static(self.qr_text(), id="result-qr")
        yield Footer(compact=True)

    def describe(self) -> Text:
        r = self.result
        text = Text()
        text.append(f"{_MARKS[r.kind]} {r.title}\n", style=_STYLES[r.kind])
        for label, value in r.lines:
            text.append(f"{label}: ", style="bold")
            text.append(f"{value}\n")
        steps = steps_for(r.kind)
        if steps:
            text.append("\n" + _("Next:") + "\n", style="bold underline")
            for key, _action, label in steps:
                text.append(f" {key.upper()} ", style="reverse")
                text.append(f" {_(label)}\n")
        if r.pdf is not None:
            text.append("\n" + str(r.pdf) + "\n", style="dim")
        return text

    def qr_text(self) -> Text:
        """The certificate's QR code; when the verification URL makes it taller than the screen, the
        code of its id and hash (what a QR code without a URL holds: ``tabula-cert:ID;sha256=HASH``)."""
        r = self.result
        if r.qr is None:
            return Text("")
        lines = qr.half_blocks(r.qr, border=1)
        room = max(1, (self.app.size.height or 24) - 1)  # the footer's line
        if len(lines) > room and r.qr_short is not None:
            lines = qr.half_blocks(r.qr_short, border=1)
        return Text("\n".join(lines), style=qr.STYLE, no_wrap=True)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        allowed = {a for _key, a, _label in steps_for(self.result.kind)}
        if action in ("print", "label", "retry", "other", "destroy"):
            return action in allowed
        return True

    def on_station_changed(self, message: StationChanged) -> None:
        fresh = result_of(self.job)
        if fresh.kind != self.result.kind:
            self.result = fresh
            self.query_one("#result-text", Static).update(self.describe())
            self.query_one("#result-qr", Static).update(self.qr_text())
            self.refresh_bindings()

    # -- actions --------------------------------------------------------------------------------
    def action_print(self) -> None:
        self.app.post_message(PrintRequested(self.job.job_dir, "document"))

    def action_label(self) -> None:
        self.app.post_message(PrintRequested(self.job.job_dir, "label"))

    def entry(self) -> DriveEntry | None:
        """The drive of this job as it is now, if it is here and may be erased."""
        ident = self.job.identity
        entry = next((e for e in self.tabula.entries if e.identity == ident), None)
        if entry is None:
            self.notify(_("This drive is not connected any more."), severity="warning")
            return None
        if not entry.protection.allowed:
            self.notify(_("This drive cannot be erased now (see its details: d)."), severity="error")
            return None
        return entry

    def action_retry(self) -> None:
        entry = self.entry()
        if entry is None:
            return
        policy = policy_of(self.job.plan)
        screen = PurgePlanScreen([entry], policy) if policy == NIST_PURGE else PlanScreen([entry], policy)
        self.app.push_screen(screen)

    def action_other(self) -> None:
        entry = self.entry()
        if entry is not None:
            self.app.push_screen(PolicyScreen([entry]))

    def action_destroy(self) -> None:
        self.app.push_screen(DestroyScreen(self.job))

    def action_back(self) -> None:
        self.app.pop_screen()


def policy_of(plan: JobPlan) -> str:
    """The policy a job was planned with: NIST Purge, or its overwrite method (NIST Clear plans one)."""
    if plan.purge is not None:
        return str(plan.purge.get("policy", NIST_PURGE))
    return plan.method
