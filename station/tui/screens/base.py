"""The base of every full screen: translated key hints, the station context, confirmation."""

from __future__ import annotations

from typing import Any, ClassVar, cast

from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import (
    Input,
)

from erase.record import JobPlan
from host.drives import DriveEntry
from station.i18n import _
from station.tui.context import StationContext
from station.tui.messages import StartRequested
from station.tui.model import confirmation_matches, confirmation_word
from station.tui.screens.widgets import W, translate_bindings


class TabulaScreen(Screen[Any]):
    def __init__(self) -> None:
        super().__init__()
        translate_bindings(self)

    def part(self, selector: str, kind: type[W]) -> W | None:
        """The widget, or None while this screen is still composing or being torn down.

        Timer ticks (job polling, sync status) can land in either window; a refresh then has
        nothing to draw, which is not an error.
        """
        for widget in self.query(selector).results(kind):
            return widget
        return None

    @property
    def tabula(self) -> StationContext:
        """The station as this screen may read it (the app provides it: see station.tui.context)."""
        return cast(StationContext, self.app)

    def confirm_and_start(self, field: Input, word: str, plans: list[JobPlan]) -> None:
        """Start the jobs only if the technician typed ``word``; then show their bench."""
        if not confirmation_matches(word, field.value):
            field.value = ""
            self.notify(_("That is not {word}. Nothing was erased.").format(word=word), severity="error")
            return
        self.app.post_message(StartRequested(plans))


class PlanningScreen(TabulaScreen):
    """A plan for the chosen drives, and the word the technician types to start it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, entries: list[DriveEntry], policy: str) -> None:
        super().__init__()
        self.entries = entries
        self.policy = policy
        self.plans: list[JobPlan] = []
        self.errors: list[str] = []
        self.word = confirmation_word(entries)

    def action_back(self) -> None:
        self.app.pop_screen()
