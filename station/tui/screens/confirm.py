"""A yes/no question in a dialog."""

from __future__ import annotations

from typing import ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import (
    Button,
    Static,
)

from station.i18n import _


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question; "no" has the focus, so Enter alone never confirms by accident."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "answer(False)", "No", show=False),
    ]

    def __init__(self, question: str, *, yes: str, no: str) -> None:
        super().__init__()
        self.question = question
        self.yes = yes
        self.no = no
        # The letters of "yes" and "no" in the technician's language: y/n, o/n in French.
        self.yes_key = _("y")
        self.no_key = _("n")

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(self.question, id="confirm-text")
            with Horizontal(id="confirm-buttons"):
                yield Button(f"{self.yes} ({self.yes_key})", id="yes", variant="error")
                yield Button(f"{self.no} ({self.no_key})", id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def on_key(self, event: events.Key) -> None:
        if event.character is not None and event.character.lower() in (self.yes_key, self.no_key):
            event.stop()
            self.dismiss(event.character.lower() == self.yes_key)

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
