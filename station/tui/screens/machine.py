"""Which machine is at the bench: its donation lot and its asset number, typed or scanned.

A USB barcode scanner types like a keyboard, fast, and ends with Enter: Enter in the lot field checks
the lot and moves on to the asset number; Enter there keeps both (Ctrl+S too), and every job started
afterwards carries them (signed in its certificate), as does the diagnostics report.  Escape leaves
the machine as it was.  A field's text is selected when it gets the focus (Textual's
``select_on_focus``), so the next machine's scan replaces it and Enter alone keeps it (the same lot,
machine after machine).  Opened with ``l`` on the drive list, and at start when the settings ask for it
(``[station] ask_machine = true``).
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Footer, Input, Label, Static

from station.i18n import _
from station.tui.machine import Refused, lot_refused, read_machine
from station.tui.messages import MachineSubmitted
from station.tui.screens.base import TabulaScreen


class MachineScreen(TabulaScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Keep"),
        Binding("escape", "back", "Cancel"),
    ]

    def compose(self) -> ComposeResult:
        m = self.tabula.machine
        head = Text(_("Which machine? Scan or type its lot and asset number") + "\n", style="bold")
        head.append(
            _(
                "Every erasure started next, and the diagnostics, name this machine in their signed records. "
                "Enter moves to the next field; both may stay empty."
            ),
            style="dim",
        )
        yield Static(head, id="title")
        with VerticalScroll(id="settings"):
            yield Label(_("Donation lot (e.g. LOT-2026-03)"))
            yield Input(m.lot, id="lot")
            yield Label(_("Asset number of the machine"))
            yield Input(m.asset_number, id="asset")
            yield Static(id="machine-problem")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#lot", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter (a scanner's last key): check the lot and go on to the asset number, or keep both."""
        if event.input.id == "lot":
            refused = lot_refused(event.input.value)
            if refused is not None:
                self.refuse(refused)
                return
            self.say("")
            self.query_one("#asset", Input).focus()
            return
        self.action_save()

    def refuse(self, refused: Refused) -> None:
        self.say(refused.message)
        self.notify(refused.message, severity="error")
        field = self.query_one(f"#{refused.field}", Input)
        field.focus()
        field.action_select_all()  # the next scan replaces it

    def say(self, text: str) -> None:
        line = self.part("#machine-problem", Static)
        if line is not None:
            line.update(Text(text, style="bold red"))

    def action_save(self) -> None:
        read = read_machine(self.query_one("#lot", Input).value, self.query_one("#asset", Input).value)
        if isinstance(read, Refused):
            self.refuse(read)
            return
        self.app.post_message(MachineSubmitted(read))

    def action_back(self) -> None:
        self.app.pop_screen()
