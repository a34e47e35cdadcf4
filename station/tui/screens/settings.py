"""The station settings: technician, organisation, location, language, default policy."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import (
    Footer,
    Input,
    Label,
    Select,
    Static,
)

from station.i18n import _
from station.tui import model
from station.tui.messages import SettingsSubmitted
from station.tui.model import (
    StationSettings,
    policy_title,
)
from station.tui.screens.base import TabulaScreen


class SettingsScreen(TabulaScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save"),
        Binding("escape", "back", "Cancel"),
    ]

    def compose(self) -> ComposeResult:
        s = self.tabula.settings
        yield Static(Text(_("Settings"), style="bold"), id="title")
        with VerticalScroll(id="settings"):
            yield Label(_("Technician"))
            yield Input(s.technician, id="technician")
            yield Label(_("Organisation"))
            yield Input(s.organisation, id="organisation")
            yield Label(_("Location"))
            yield Input(s.location, id="location")
            yield Label(_("Language"))
            yield Select(
                [(_("Automatic"), ""), ("English", "en"), ("Français", "fr")],
                value=s.language,
                allow_blank=False,
                id="language",
            )
            yield Label(_("Default erase policy"))
            yield Select(
                [(policy_title(k), k) for k in model.policy_keys()],
                value=s.default_policy,
                allow_blank=False,
                id="policy",
            )
            yield Static(Text(str(self.tabula.settings_path), style="dim"))
        yield Footer(compact=True)

    def action_save(self) -> None:
        lang = self.query_one("#language", Select).value
        policy = self.query_one("#policy", Select).value
        settings = StationSettings(
            technician=self.query_one("#technician", Input).value.strip(),
            organisation=self.query_one("#organisation", Input).value.strip(),
            location=self.query_one("#location", Input).value.strip(),
            language=lang if isinstance(lang, str) else "",
            default_policy=policy if isinstance(policy, str) else model.NIST_CLEAR,
        )
        self.app.post_message(SettingsSubmitted(settings))

    def action_back(self) -> None:
        self.app.pop_screen()
