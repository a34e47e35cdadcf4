"""Recording the physical destruction of a drive whose erasure failed (NIST SP 800-88 Destroy).

The technician destroys the drive (shred, drill, crush, degauss, incinerate), then says here how, who
did it, who saw it and where a photo is; the station signs a destruction record linked to the failed
job and its failure report (:mod:`station.destroy`), after a last question.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Footer, Input, Label, Select, Static

from certs.destruction import METHODS
from station.i18n import _
from station.tui.messages import DestroyRequested
from station.tui.model import TrackedJob
from station.tui.outcome import destruction_method
from station.tui.screens.base import TabulaScreen
from station.tui.screens.confirm import ConfirmScreen
from station.words import short_id


class DestroyScreen(TabulaScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Sign the record"),
        Binding("escape", "back", "Cancel"),
    ]

    def __init__(self, job: TrackedJob) -> None:
        super().__init__()
        self.job = job

    def compose(self) -> ComposeResult:
        d = self.job.plan.drive
        head = Text(_("Record the destruction of this drive") + "\n", style="bold")
        head.append(f"{d.path}  {d.model or ''}  {d.serial or ''}\n")
        head.append(
            _(
                "Its erasure failed (job {job}). NIST SP 800-88: a drive that cannot be erased is destroyed. "
                "Destroy it first, then fill this in: the station signs a destruction record."
            ).format(job=short_id(self.job.plan.job_id)),
            style="dim",
        )
        yield Static(head, id="title")
        with VerticalScroll(id="settings"):
            yield Label(_("How was it destroyed?"))
            yield Select(
                [(f"{destruction_method(m)} ({m})", m) for m in METHODS],
                value="shred",
                allow_blank=False,
                id="method",
            )
            yield Label(_("Destroyed by"))
            yield Input(self.tabula.settings.technician, id="by")
            yield Label(_("Witness (optional)"))
            yield Input(id="witness")
            yield Label(_("Photo of the destroyed drive: path of the file (optional)"))
            yield Input(id="photo", placeholder="/media/photos/IMG_0042.jpg")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#method", Select).focus()

    def action_save(self) -> None:
        method = self.query_one("#method", Select).value
        by = self.query_one("#by", Input).value.strip()
        if not isinstance(method, str) or not by:
            self.notify(_("Say who destroyed the drive."), severity="error")
            return
        witness = self.query_one("#witness", Input).value.strip()
        photo = self.query_one("#photo", Input).value.strip()

        def answered(yes: bool | None) -> None:
            if yes:
                self.app.post_message(DestroyRequested(self.job.job_dir, method, by, witness, photo))
                self.app.pop_screen()

        self.app.push_screen(
            ConfirmScreen(
                _("Sign a record saying that {drive} was {how} by {who}? It cannot be taken back.").format(
                    drive=self.job.plan.drive.serial or self.job.plan.drive.path,
                    how=destruction_method(method),
                    who=by,
                ),
                yes=_("Sign"),
                no=_("Not yet"),
            ),
            answered,
        )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_save()

    def action_back(self) -> None:
        self.app.pop_screen()
