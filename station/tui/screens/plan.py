"""An overwrite plan and its confirmation: the technician types the word before anything is written."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import (
    DataTable,
    Footer,
    Input,
    Label,
    Static,
)

from erase.errors import EraseError
from host.errors import TabulaError
from station.i18n import N_, _
from station.tui.model import (
    estimate_seconds,
    human_duration,
    human_size,
    level_achieved,
    plan_steps,
    policy_title,
)
from station.tui.screens.base import PlanningScreen
from station.tui.screens.widgets import Column, add_columns, clip, data_table

PLAN_COLUMNS: tuple[Column, ...] = (
    ("dev", N_("Drive"), 9),
    ("model", N_("Model"), 16),
    ("serial", N_("Serial"), 12),
    ("size", N_("Size"), 9),
    ("method", N_("Method"), 12),
    ("passes", N_("Passes"), 7),
    ("time", N_("Time"), 7),
)


class PlanScreen(PlanningScreen):
    def compose(self) -> ComposeResult:
        app = self.tabula
        for e in self.entries:
            try:
                self.plans.append(app.make_plan(e, self.policy))
            except (TabulaError, EraseError) as exc:
                self.errors.append(f"{e.path}: {exc}")
        total = max((estimate_seconds(p) for p in self.plans), default=0.0)
        head = Text(_("Plan: {policy}").format(policy=policy_title(self.policy)) + "\n", style="bold")
        if self.plans:
            head.append(_("Result: {level}").format(level=level_achieved(self.plans[0])) + "\n")
        head.append(_("Estimated time: about {t} (drives run side by side)").format(t=human_duration(total)))
        yield Static(head, id="title")
        yield data_table("plan", cursor=False, zebra=False)
        steps = Text()
        if len({(p.method, len(p.passes)) for p in self.plans}) == 1:
            steps.append(_("Steps for each drive:") + "\n", style="bold")
            for s in plan_steps(self.plans[0]):
                steps.append(f" • {s}\n")
        else:
            for p in self.plans:
                steps.append(f"{p.drive.kernel_name}: " + "; ".join(plan_steps(p)) + "\n")
        for err in self.errors:
            steps.append(err + "\n", style="bold red")
        yield VerticalScroll(Static(steps), id="steps")
        with Horizontal(id="confirm-row"):
            if self.errors:
                yield Label(_("This plan cannot start: fix the problems above."), id="confirm-label")
            else:
                yield Label(
                    _("All data will be lost. Type {word} to start:").format(word=self.word),
                    id="confirm-label",
                )
                yield Input(id="confirm", placeholder=self.word)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#plan", DataTable)
        add_columns(table, PLAN_COLUMNS)
        for p in self.plans:
            d = p.drive
            table.add_row(
                d.kernel_name,
                clip(d.model, 15),
                clip(d.serial, 11, keep_end=True),
                human_size(d.size_bytes),
                p.method,
                str(len(p.passes)),
                human_duration(estimate_seconds(p)),
            )
        if not self.errors:
            self.query_one("#confirm", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.confirm_and_start(event.input, self.word, self.plans)
