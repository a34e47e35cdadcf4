"""The station settings: technician, organisation, location, language, default policy, printers, and
whether each machine's lot and asset number are asked at start.

At first start (no technician's name yet: every certificate names the person who erased) the screen
opens by itself, says why, and cannot be left without a name.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import (
    Checkbox,
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

    def __init__(self, *, first_start: bool = False) -> None:
        super().__init__()
        self.first_start = first_start

    def compose(self) -> ComposeResult:
        s = self.tabula.settings
        title = Text(_("Settings"), style="bold")
        if self.first_start:
            title = Text(_("Welcome to Tabula. Who erases here?") + "\n", style="bold")
            title.append(
                _(
                    "Every certificate names the person who erased the drive and the organisation. Type them, then Enter."
                ),
                style="",
            )
        yield Static(title, id="title")
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
            yield Label(_("Printer for certificates (empty: the default printer)"))
            yield Input(s.printer, id="printer")
            yield Label(_("Printer for labels (empty: the printer above)"))
            yield Input(s.label_printer, id="label_printer")
            yield Checkbox(
                _("Ask each machine's lot and asset number at start (l asks them any time)"),
                s.ask_machine,
                id="ask_machine",
            )
            yield Static(Text(str(self.tabula.settings_path), style="dim"))
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#technician", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in a field: on to the next one; in the organisation at first start, save."""
        if self.first_start and event.input.id == "organisation":
            self.action_save()
        else:
            self.focus_next()

    def action_save(self) -> None:
        lang = self.query_one("#language", Select).value
        policy = self.query_one("#policy", Select).value
        settings = StationSettings(
            technician=self.query_one("#technician", Input).value.strip(),
            organisation=self.query_one("#organisation", Input).value.strip(),
            location=self.query_one("#location", Input).value.strip(),
            language=lang if isinstance(lang, str) else "",
            default_policy=policy if isinstance(policy, str) else model.NIST_CLEAR,
            printer=self.query_one("#printer", Input).value.strip(),
            label_printer=self.query_one("#label_printer", Input).value.strip(),
            ask_machine=self.query_one("#ask_machine", Checkbox).value,
        )
        if not settings.technician:
            self.notify(_("Type the technician's name: certificates name who erased."), severity="error")
            self.query_one("#technician", Input).focus()
            return
        self.app.post_message(SettingsSubmitted(settings))

    def action_back(self) -> None:
        if self.first_start and not self.tabula.settings.technician:
            self.notify(
                _("Type the technician's name first: certificates name who erased."), severity="warning"
            )
            return
        self.app.pop_screen()
