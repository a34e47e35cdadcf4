"""Choosing how the selected drives are erased: NIST Clear, NIST Purge or an overwrite method."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import (
    Footer,
    OptionList,
    Static,
)
from textual.widgets.option_list import Option

from host.drives import DriveEntry
from station.i18n import _
from station.tui import model
from station.tui.model import (
    policies,
)
from station.tui.screens.base import TabulaScreen
from station.tui.screens.plan import PlanScreen
from station.tui.screens.purge_plan import PurgePlanScreen


class PolicyScreen(TabulaScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, entries: list[DriveEntry]) -> None:
        super().__init__()
        self.entries = entries

    def compose(self) -> ComposeResult:
        n = len(self.entries)
        yield Static(
            Text(_("How should these {n} drive(s) be erased?").format(n=n), style="bold"), id="title"
        )
        options = [
            Option(
                _(p.title) if p.key.startswith("nist") else f"{p.title}: {_(p.description)}",
                id=p.key,
                disabled=not p.available,
            )
            for p in policies()
        ]
        yield OptionList(*options, id="policies")
        yield Static(id="policy-help")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        default = self.tabula.settings.default_policy
        for i, p in enumerate(policies()):
            if p.key == default:
                ol.highlighted = i
        ol.focus()
        self.show_help()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.show_help()

    def show_help(self) -> None:
        ol = self.query_one(OptionList)
        if ol.highlighted is None:
            return
        p = policies()[ol.highlighted]
        text = Text(_(p.description) + "\n", style="bold" if not p.available else "")
        flash = any(e.info.media_type in model.FLASH for e in self.entries)
        if p.key == model.NIST_CLEAR:
            text.append(
                _(
                    "On SSD, NVMe and USB flash, overwriting reaches Clear only (spare areas are out of reach): "
                    "choose NIST Purge for them."
                )
                if flash
                else _("Right for hard disks. On SSD, NVMe and USB flash, NIST Purge is stronger."),
                style="yellow" if flash else "dim",
            )
        elif p.key == model.NIST_PURGE:
            text.append(
                _(
                    "The drive is checked first (read-only): the plan shows what it can do and why, "
                    "before anything is erased."
                ),
                style="dim",
            )
        elif p.available:
            text.append(_("Every method ends with a full read-back check of the last pass."), style="dim")
        self.query_one("#policy-help", Static).update(text)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        key = event.option.id
        assert key is not None
        if key == model.NIST_PURGE:
            self.app.push_screen(PurgePlanScreen(self.entries, key))
        else:
            self.app.push_screen(PlanScreen(self.entries, key))

    def action_back(self) -> None:
        self.app.pop_screen()
