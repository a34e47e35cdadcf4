"""A NIST Purge plan: each drive probed read-only in a thread, what its firmware can do, confirmation."""

from __future__ import annotations

import dataclasses

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import (
    Checkbox,
    Footer,
    Input,
    Label,
    LoadingIndicator,
    Static,
)
from textual.worker import Worker, WorkerState

from erase.purge.planner import LEVEL_RANK, PlanOptions, PurgePlan
from erase.record import JobPlan
from host.drives import DriveEntry
from host.errors import TabulaError
from station.i18n import _
from station.tui import model
from station.tui.model import (
    human_duration,
    human_size,
    policy_title,
)
from station.tui.screens.base import PlanningScreen


class PurgePlanned(Message):
    """The purge plans of a plan screen, computed in a thread (one result per drive)."""

    def __init__(self, results: list[PurgeResult], generation: int) -> None:
        super().__init__()
        self.results = results
        self.generation = generation


@dataclasses.dataclass(frozen=True)
class PurgeResult:
    entry: DriveEntry
    plan: JobPlan | None
    purge: PurgePlan | None
    error: str = ""  # the error's diagnostics() when the drive could not be planned


def plans_head(policy: str, views: list[model.PurgeView]) -> Text:
    """The policy, the level every drive reaches at least (and how many fall short), the time."""
    head = Text(_("Plan: {policy}").format(policy=policy_title(policy)) + "\n", style="bold")
    lower = [v for v in views if v.lower]
    if views:
        worst = min((v.level for v in views), key=lambda lv: LEVEL_RANK[lv])
        head.append(_("Result: {level}").format(level=model.level_name(worst)))
        if lower:
            head.append(
                "  " + _("lower than requested on {n} drive(s): see why below").format(n=len(lower)),
                style="bold yellow",
            )
        head.append("\n")
    total = max((v.estimate for v in views), default=0.0)
    head.append(_("Estimated time: about {t} (drives run side by side)").format(t=human_duration(total)))
    return head


def drive_plan(entry: DriveEntry, v: model.PurgeView) -> Text:
    """One drive's steps with their level and time, and why Purge is out of reach when it is."""
    d = entry.info
    body = Text()
    body.append(f"{d.kernel_name or d.path}  {d.model or ''}  {human_size(d.size_bytes)}\n", style="bold")
    for n, (what, level, eta) in enumerate(v.steps, start=1):
        body.append(f" {n}. {what}  → {level}, ~{eta}\n")
    if not v.lower:
        body.append(" " + _("Reaches {level}.").format(level=model.level_name(v.level)) + "\n")
        return body
    body.append(
        " "
        + _("Purge is not possible on this drive; it will reach {level} only:").format(
            level=model.level_name(v.level)
        )
        + "\n",
        style="yellow",
    )
    for what, why in dict.fromkeys(v.ruled_out):
        body.append(f"   • {what}: {why}\n", style="yellow")
    return body


class PurgePlanScreen(PlanningScreen):
    """NIST Purge: probe each drive read-only (in a thread), show what its firmware can do, confirm.

    Changing an option (suspend-to-RAM consent, the PSID) plans again; a result from an older
    planning is dropped.
    """

    def __init__(self, entries: list[DriveEntry], policy: str) -> None:
        super().__init__(entries, policy)
        self.results: list[PurgeResult] = []
        self.unfreeze = False
        self.psid: str | None = None
        self.ready = False
        self.generation = 0

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        yield LoadingIndicator(id="purge-loading")
        yield VerticalScroll(Static(id="purge-steps"), id="steps")
        with Vertical(id="purge-options"):
            yield Checkbox(_("Allow a suspend-to-RAM cycle to unfreeze the drive"), id="unfreeze")
            yield Static(
                Text(
                    _(
                        "The computer sleeps a few seconds and wakes up by itself: this clears the BIOS "
                        "security freeze that blocks the drive's erase command. Other programs pause too."
                    ),
                    style="dim",
                ),
                id="unfreeze-help",
            )
            with Horizontal(id="psid-row"):
                yield Label(_("PSID printed on the drive's label (optional):"), id="psid-label")
                yield Input(id="psid", placeholder="PSID")
        with Horizontal(id="confirm-row"):
            yield Label(id="confirm-label")
            yield Input(id="confirm", placeholder=self.word)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#unfreeze").display = False
        self.query_one("#unfreeze-help").display = False
        self.query_one("#psid-row").display = False
        self.replan()

    def replan(self) -> None:
        """Probe and plan every drive again, in a thread (the probe can take seconds)."""
        self.generation += 1
        self.ready = False
        self.query_one("#purge-loading").display = True
        self.query_one("#title", Static).update(
            Text(
                _("Plan: {policy}").format(policy=policy_title(self.policy))
                + "\n"
                + _("Asking the drives what they can do (read-only)…"),
                style="bold",
            )
        )
        self.query_one("#confirm-label", Label).update(_("Wait for the plan…"))
        confirm = self.query_one("#confirm", Input)
        confirm.disabled = True
        options = PlanOptions(unfreeze_suspend=self.unfreeze, psid=self.psid)
        generation = self.generation
        self.run_worker(
            lambda: self.plan_all(options, generation),
            thread=True,
            exclusive=True,
            group="purge-plan",
            exit_on_error=False,
        )

    def plan_all(self, options: PlanOptions, generation: int) -> None:
        """Worker thread: one result per drive; a drive that cannot be planned gets its diagnostics."""
        results: list[PurgeResult] = []
        for e in self.entries:
            try:
                plan, purge = self.tabula.plan_purge(e, self.policy, options)
            except TabulaError as exc:
                results.append(PurgeResult(e, None, None, exc.diagnostics()))
            except OSError as exc:
                results.append(PurgeResult(e, None, None, f"{e.path}: {exc}"))
            else:
                results.append(PurgeResult(e, plan, purge))
        self.post_message(PurgePlanned(results, generation))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "purge-plan" or event.state is not WorkerState.ERROR:
            return
        err = event.worker.error
        self.query_one("#purge-loading").display = False
        self.errors = [_("Internal error: {error}").format(error=f"{type(err).__name__}: {err}")]
        self.query_one("#purge-steps", Static).update(Text(self.errors[0], style="bold red"))
        self.query_one("#confirm-label", Label).update(_("This plan cannot start: fix the problems above."))

    def on_purge_planned(self, message: PurgePlanned) -> None:
        if message.generation != self.generation:
            return  # an older planning, before an option changed
        self.results = message.results
        self.plans = [r.plan for r in message.results if r.plan is not None]
        self.errors = [r.error for r in message.results if r.error]
        self.ready = True
        self.query_one("#purge-loading").display = False
        self.show_plans()

    def show_plans(self) -> None:
        views = [
            (r, model.purge_view(r.plan, r.purge))
            for r in self.results
            if r.plan is not None and r.purge is not None
        ]
        self.query_one("#title", Static).update(plans_head(self.policy, [v for _r, v in views]))
        body = Text()
        for r, v in views:
            body.append_text(drive_plan(r.entry, v))
        for err in self.errors:
            body.append(err + "\n", style="bold red")
        self.query_one("#purge-steps", Static).update(body)
        frozen = any(v.frozen for _r, v in views) or self.unfreeze
        self.query_one("#unfreeze").display = frozen
        self.query_one("#unfreeze-help").display = frozen
        psid = len(self.entries) == 1 and (any(v.psid_possible for _r, v in views) or self.psid is not None)
        self.query_one("#psid-row").display = psid
        self.show_confirmation()

    def show_confirmation(self) -> None:
        label = self.query_one("#confirm-label", Label)
        confirm = self.query_one("#confirm", Input)
        if self.errors or not self.plans:
            label.update(_("This plan cannot start: fix the problems above."))
            confirm.disabled = True
        else:
            label.update(_("All data will be lost. Type {word} to start:").format(word=self.word))
            confirm.disabled = False
            confirm.focus()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        if event.checkbox.id == "unfreeze" and event.value != self.unfreeze:
            self.unfreeze = event.value
            self.replan()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "psid":
            psid = event.value.strip() or None
            if psid != self.psid:
                self.psid = psid
                self.replan()
            return
        if not self.ready or self.errors or not self.plans:
            return
        self.confirm_and_start(event.input, self.word, self.plans)
