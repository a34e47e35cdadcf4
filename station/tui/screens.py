"""The screens of the station: drives, policy, plan + confirmation, bench progress/result, details, settings."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingsMap, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.coordinate import Coordinate
from textual.dom import DOMNode
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import (
    Button,
    Checkbox,
    DataTable,
    Footer,
    Input,
    Label,
    LoadingIndicator,
    OptionList,
    Select,
    Static,
)
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from erase.errors import EraseError
from erase.purge.planner import LEVEL_RANK, PlanOptions, PurgePlan
from erase.record import JobPlan, Outcome
from host.drives import DriveEntry
from host.errors import TabulaError
from station.i18n import N_, _
from station.tui import model
from station.tui.model import (
    StationSettings,
    TrackedJob,
    bay_label,
    confirmation_matches,
    confirmation_word,
    estimate_seconds,
    failure_summary,
    human_duration,
    human_rate,
    human_size,
    level_achieved,
    media_label,
    plan_steps,
    policies,
    policy_title,
    protection_explanations,
    protection_label,
    status_text,
)

if TYPE_CHECKING:
    from station.tui.app import TabulaApp

W = TypeVar("W", bound=Widget)


def translate_bindings(node: DOMNode) -> None:
    """Show this node's key hints in the current language (BINDINGS are written in English)."""
    keys = {
        key: [dataclasses.replace(b, description=_(b.description)) if b.description else b for b in bindings]
        for key, bindings in node._bindings.key_to_bindings.items()
    }
    node._bindings = BindingsMap.from_keys(keys)


def clip(text: str | None, width: int, *, keep_end: bool = False) -> str:
    if not text:
        return "-"
    if len(text) <= width:
        return text
    return "…" + text[-(width - 1) :] if keep_end else text[: width - 1] + "…"


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
    def tabula(self) -> TabulaApp:
        from station.tui.app import TabulaApp

        app = self.app
        assert isinstance(app, TabulaApp)
        return app

    def confirm_and_start(self, field: Input, word: str, plans: list[JobPlan]) -> None:
        """Start the jobs only if the technician typed ``word``; then show their bench."""
        if not confirmation_matches(word, field.value):
            field.value = ""
            self.notify(_("That is not {word}. Nothing was erased.").format(word=word), severity="error")
            return
        bench = self.tabula.start_jobs(plans)
        if bench is None:
            return
        # Back to the drive list, then show the bench on top of it.
        while len(self.app.screen_stack) > 2:
            self.app.pop_screen()
        self.app.push_screen(BenchScreen(bench))


# --------------------------------------------------------------------------------------------------
# Drives (main screen)

# 79 columns in all, so a vertical scrollbar (one column, see the CSS) never hides part of the status,
# which fits model.status_text's longest line.
DRIVE_COLUMNS = (
    ("dev", N_("Drive"), 9),
    ("bay", N_("Bay"), 7),
    ("model", N_("Model"), 10),
    ("serial", N_("Serial"), 9),
    ("size", N_("Size"), 8),
    ("type", N_("Type"), 5),
    ("health", N_("Health"), 7),
    ("status", N_("Status"), model.STATUS_WIDTH),
)


@dataclasses.dataclass
class DriveRow:
    key: str  # the drive's identity
    entry: DriveEntry | None  # None when the drive is gone but its job is still shown
    job: TrackedJob | None
    selected: bool

    @property
    def info(self) -> Any:
        if self.entry is not None:
            return self.entry.info
        assert self.job is not None
        return self.job.plan.drive

    @property
    def protected(self) -> bool:
        return self.entry is not None and not self.entry.protection.allowed

    @property
    def busy(self) -> bool:
        """Its job's worker still has the drive (erasing, or writing the certificate)."""
        return self.job is not None and not self.job.settled


class DrivesScreen(TabulaScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_drive", "Select"),
        Binding("a", "select_all", "All"),
        Binding("e", "erase", "Erase"),
        Binding("p", "bench", "Follow"),
        Binding("d", "details", "Details"),
        Binding("g", "diagnose", "Diagnostics"),
        Binding("s", "settings", "Settings"),
        Binding("q", "quit_app", "Quit"),
    ]

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        table: DataTable[Any] = DataTable(id="drives", cursor_type="row", cell_padding=0, zebra_stripes=True)
        yield table
        yield Static(id="detail")
        yield Static(id="sync")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#drives", DataTable)
        for key, label, width in DRIVE_COLUMNS:
            table.add_column(_(label), key=key, width=width)
        self._row_keys: list[str] = []
        self._shown: dict[str, list[Text | str]] = {}
        self.refresh_rows()
        self.refresh_sync()

    def refresh_sync(self) -> None:
        view = self.tabula.sync
        line = self.part("#sync", Static)
        if line is None:
            return
        line.update(clip(view.text, max(10, self.size.width - 2)) if view.text else "")
        line.set_classes(view.level)

    def rows(self) -> list[DriveRow]:
        app = self.tabula
        latest = app.book.latest_by_identity()
        out: list[DriveRow] = []
        seen: set[str] = set()
        for entry in app.entries:
            ident = entry.identity
            seen.add(ident)
            out.append(DriveRow(ident, entry, latest.get(ident), ident in app.selected))
        for ident, job in latest.items():
            if ident not in seen and app.show_absent_job(job):
                out.append(DriveRow(ident, None, job, False))
        return out

    def cells(self, row: DriveRow) -> list[Text | str]:
        info = row.info
        mark = "●" if row.selected else ("✗" if row.protected and not row.busy else " ")
        dev = mark + (info.kernel_name or os.path.basename(info.path))
        health = self.tabula.health_of(info) if row.entry is not None else None
        if row.entry is None:
            status = Text(_("removed") + ": ", style="bold red")
            if row.job is not None:
                status.append(status_text(row.job))
        elif row.protected and not row.busy:  # a running erase holds its drive open: not a lock
            status = Text("🔒 " + protection_label(row.entry), style="yellow")
        elif row.job is not None and not (row.selected and row.job.settled):
            style = {
                Outcome.VERIFIED: "bold green",
                Outcome.UNVERIFIED: "green",
                Outcome.FAILED: "bold red",
                Outcome.INTERRUPTED: "red",
                Outcome.RUNNING: "cyan",
            }[row.job.outcome]
            status = Text(status_text(row.job), style=style)
        elif row.selected:
            status = Text(_("selected"), style="bold")
        else:
            status = Text(_("idle"), style="dim")
        return [
            dev,
            clip(bay_label(info), 6),
            clip(info.model, 9),
            clip(info.serial, 8, keep_end=True),
            human_size(info.size_bytes),
            media_label(info),
            clip(health or "-", 6),
            status,
        ]

    def refresh_rows(self) -> None:
        table = self.part("#drives", DataTable)
        if table is None:
            return
        rows = self.rows()
        keys = [r.key for r in rows]
        if keys != self._row_keys:
            cursor_key = (
                self._row_keys[table.cursor_row] if 0 <= table.cursor_row < len(self._row_keys) else None
            )
            table.clear()
            self._shown = {}
            for r in rows:
                cells = self.cells(r)
                table.add_row(*cells, key=r.key)
                self._shown[r.key] = cells
            self._row_keys = keys
            if cursor_key in keys:
                table.move_cursor(row=keys.index(cursor_key))
        else:
            for r in rows:
                cells = self.cells(r)
                shown = self._shown.get(r.key)
                for i, ((col, _label, _w), value) in enumerate(zip(DRIVE_COLUMNS, cells, strict=True)):
                    if shown is None or shown[i] != value:  # only what changed: cheap with 24+ drives
                        table.update_cell(r.key, col, value)
                self._shown[r.key] = cells
        self._rows = {r.key: r for r in rows}
        n_sel = len(self.tabula.selected)
        title = _("Drives: {n}").format(n=len(self.tabula.entries))
        if n_sel:
            title += "  " + _("selected: {n}").format(n=n_sel)
        if self.tabula.demo:
            title += "  " + _("(demonstration)")
        self.query_one("#title", Static).update(Text(title, style="bold"))
        self.update_detail()

    def current(self) -> DriveRow | None:
        table = self.query_one("#drives", DataTable)
        if not self._row_keys or not 0 <= table.cursor_row < len(self._row_keys):
            return None
        return self._rows.get(self._row_keys[table.cursor_row])

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.update_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_details()

    def update_detail(self) -> None:
        row = self.current()
        detail = self.query_one("#detail", Static)
        if row is None:
            detail.update(_("No drive found. Plug a drive in: it appears here by itself."))
            return
        info = row.info
        line1 = (
            f"{info.path}  {info.model or ''}  {_('S/N')} {info.serial or '-'}  {human_size(info.size_bytes)}"
        )
        text = Text(line1.strip() + "\n")
        if row.entry is None:
            text.append(_("This drive was removed.") + " ", style="bold red")
            if row.job is not None and row.job.outcome is not Outcome.RUNNING:
                text.append(failure_summary(row.job.state))
        elif row.protected and not row.busy:
            text.append(" ".join(protection_explanations(row.entry)), style="yellow")
        elif row.job is not None:
            text.append(self.job_sentence(row.job))
        else:
            text.append(_("Ready. Space selects it, E erases the selection."), style="dim")
        detail.update(text)

    def job_sentence(self, job: TrackedJob) -> str:
        outcome = job.outcome
        if outcome is Outcome.RUNNING:
            return _("Erasing: {status}").format(status=status_text(job))
        if outcome.success:
            if job.certificates:
                return _("Erased and verified. Certificate: {path}").format(path=job.certificates[-1])
            return _("Erased and verified.") if outcome is Outcome.VERIFIED else _("Erased, not verified.")
        return _("Not erased: {why}").format(why=failure_summary(job.state))

    # -- actions ----------------------------------------------------------------------------
    def action_toggle_drive(self) -> None:
        row = self.current()
        if row is None:
            return
        if row.entry is None:
            self.notify(_("This drive was removed."), severity="warning")
            return
        if row.protected:
            self.notify(
                _("This drive is protected and cannot be erased: {why}").format(
                    why=" ".join(protection_explanations(row.entry))
                ),
                severity="error",
            )
            return
        if row.busy:
            self.notify(_("This drive is being erased."), severity="warning")
            return
        selected = self.tabula.selected
        if row.key in selected:
            selected.discard(row.key)
        else:
            selected.add(row.key)
        self.refresh_rows()
        table = self.query_one("#drives", DataTable)
        if table.cursor_row < len(self._row_keys) - 1:
            table.move_cursor(row=table.cursor_row + 1)

    def action_select_all(self) -> None:
        rows = [r for r in self._rows.values() if r.entry is not None and not r.protected and not r.busy]
        selected = self.tabula.selected
        if rows and all(r.key in selected for r in rows):
            selected.clear()
        else:
            selected.update(r.key for r in rows)
        self.refresh_rows()

    def action_erase(self) -> None:
        app = self.tabula
        chosen = [e for e in app.entries if e.identity in app.selected]
        if not chosen:
            row = self.current()
            if row is not None and row.entry is not None and not row.protected and not row.busy:
                chosen = [row.entry]
            elif row is not None and row.protected:
                self.action_toggle_drive()  # explains the refusal
                return
        if not chosen:
            self.notify(_("Select one or more drives first (space)."), severity="warning")
            return
        self.app.push_screen(PolicyScreen(chosen))

    def action_bench(self) -> None:
        if not self.tabula.benches:
            self.notify(_("No erasure started yet."), severity="information")
            return
        self.app.push_screen(BenchScreen(self.tabula.benches[-1]))

    def action_details(self) -> None:
        row = self.current()
        if row is not None:
            self.app.push_screen(DetailsScreen(row.entry, row.job))

    def action_settings(self) -> None:
        self.app.push_screen(SettingsScreen())

    def action_diagnose(self) -> None:
        from station.tui.diagnose import DiagnosticsScreen

        self.app.push_screen(DiagnosticsScreen())

    def action_quit_app(self) -> None:
        self.tabula.request_quit()


# --------------------------------------------------------------------------------------------------
# Policy


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


# --------------------------------------------------------------------------------------------------
# Plan + confirmation


class PlanScreen(TabulaScreen):
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
        table: DataTable[Any] = DataTable(id="plan", cursor_type="none", cell_padding=0, show_cursor=False)
        yield table
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
        for key, label, width in (
            ("dev", N_("Drive"), 9),
            ("model", N_("Model"), 16),
            ("serial", N_("Serial"), 12),
            ("size", N_("Size"), 9),
            ("method", N_("Method"), 12),
            ("passes", N_("Passes"), 7),
            ("time", N_("Time"), 7),
        ):
            table.add_column(_(label), key=key, width=width)
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

    def action_back(self) -> None:
        self.app.pop_screen()


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


class PurgePlanScreen(TabulaScreen):
    """NIST Purge: probe each drive read-only (in a thread), show what its firmware can do, confirm.

    Changing an option (suspend-to-RAM consent, the PSID) plans again; a result from an older
    planning is dropped.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, entries: list[DriveEntry], policy: str) -> None:
        super().__init__()
        self.entries = entries
        self.policy = policy
        self.results: list[PurgeResult] = []
        self.plans: list[JobPlan] = []
        self.errors: list[str] = []
        self.word = confirmation_word(entries)
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
        head = Text(_("Plan: {policy}").format(policy=policy_title(self.policy)) + "\n", style="bold")
        lower = [v for _r, v in views if v.lower]
        if views:
            worst = min((v.level for _r, v in views), key=lambda lv: LEVEL_RANK[lv])
            head.append(_("Result: {level}").format(level=model.level_name(worst)))
            if lower:
                head.append(
                    "  " + _("lower than requested on {n} drive(s): see why below").format(n=len(lower)),
                    style="bold yellow",
                )
            head.append("\n")
        total = max((v.estimate for _r, v in views), default=0.0)
        head.append(_("Estimated time: about {t} (drives run side by side)").format(t=human_duration(total)))
        self.query_one("#title", Static).update(head)

        body = Text()
        for r, v in views:
            d = r.entry.info
            body.append(
                f"{d.kernel_name or d.path}  {d.model or ''}  {human_size(d.size_bytes)}\n", style="bold"
            )
            for n, (what, level, eta) in enumerate(v.steps, start=1):
                body.append(f" {n}. {what}  → {level}, ~{eta}\n")
            if v.lower:
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
            else:
                body.append(" " + _("Reaches {level}.").format(level=model.level_name(v.level)) + "\n")
        for err in self.errors:
            body.append(err + "\n", style="bold red")
        self.query_one("#purge-steps", Static).update(body)

        frozen = any(v.frozen for _r, v in views) or self.unfreeze
        self.query_one("#unfreeze").display = frozen
        self.query_one("#unfreeze-help").display = frozen
        psid = len(self.entries) == 1 and (any(v.psid_possible for _r, v in views) or self.psid is not None)
        self.query_one("#psid-row").display = psid

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

    def action_back(self) -> None:
        self.app.pop_screen()


# --------------------------------------------------------------------------------------------------
# Bench: live progress, then result


def bar(fraction: float, width: int = 10) -> str:
    filled = int(round(max(0.0, min(1.0, fraction)) * width))
    return "█" * filled + "░" * (width - filled)


class BenchScreen(TabulaScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "stop", "Stop"),
        Binding("escape", "back", "Drives"),
    ]

    def __init__(self, bench: model.Bench) -> None:
        super().__init__()
        self.bench = bench

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        yield DataTable(id="bench", cursor_type="row", cell_padding=0, zebra_stripes=True)
        yield VerticalScroll(Static(id="result"), id="result-box")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#bench", DataTable)
        for key, label, width in (
            ("dev", N_("Drive"), 9),
            ("serial", N_("Serial"), 10),
            ("step", N_("Step"), 12),
            ("bar", N_("Progress"), 16),
            ("rate", N_("Speed"), 10),
            ("left", N_("Left"), 21),
        ):
            table.add_column(_(label), key=key, width=width)
        for job in self.jobs():
            table.add_row(*self.cells(job), key=str(job.job_dir))
        self.refresh_rows()

    def jobs(self) -> list[TrackedJob]:
        book = self.tabula.book.jobs
        return [book[d] for d in self.bench.job_dirs if d in book]

    def cells(self, job: TrackedJob) -> list[Text | str]:
        st = job.state
        d = st.plan.drive
        outcome = job.outcome
        if outcome is Outcome.RUNNING:
            n = len(st.plan.passes)
            if st.worker is None or st.phase == "planned":
                step = _("starting")
            elif st.phase == "firmware":
                step = _("firmware {i}/{n}").format(i=(st.current_step or 0) + 1, n=len(st.plan.purge_steps))
            elif st.phase == "verify":
                step = _("check")
            else:
                step = _("pass {cur}/{n}").format(cur=(st.current_pass or 0) + 1, n=n)
            eta = job.eta_seconds()
            left: Text | str = human_duration(eta) if eta is not None else "…"
            rate = human_rate(st.rate) if st.rate else "…"
            if st.phase == "firmware":
                elapsed = model.firmware_elapsed(st)
                rate = ""
                left = _("{t} elapsed").format(t=human_duration(elapsed)) if elapsed is not None else "…"
        else:
            step = status_text(job)
            rate = ""
            style = "bold green" if outcome.success else "bold red"
            left = Text(_("done") if outcome.success else clip(failure_summary(st), 20), style=style)
        frac = 1.0 if outcome.success else st.overall_fraction
        return [
            d.kernel_name or os.path.basename(d.path),
            clip(d.serial, 9, keep_end=True),
            step,
            f"{bar(frac)} {int(frac * 100):3d}%",
            rate,
            left,
        ]

    def refresh_rows(self) -> None:
        table = self.part("#bench", DataTable)
        if table is None:
            return
        jobs = self.jobs()
        for job in jobs:
            key = str(job.job_dir)
            for col, value in zip(
                ("dev", "serial", "step", "bar", "rate", "left"), self.cells(job), strict=True
            ):
                table.update_cell(key, col, value)
        settled = [j for j in jobs if j.settled]
        title = Text()
        if len(settled) == len(jobs):
            ok = sum(1 for j in jobs if j.outcome.success)
            title.append(
                _("Finished: {ok} of {n} drive(s) erased and verified.").format(ok=ok, n=len(jobs)),
                style="bold green" if ok == len(jobs) else "bold red",
            )
        else:
            title.append(
                _("Erasing {n} drive(s): {done} finished. You may go back to the drives (Esc).").format(
                    n=len(jobs), done=len(settled)
                ),
                style="bold",
            )
        self.query_one("#title", Static).update(title)
        self.query_one("#result", Static).update(self.summary(jobs))

    def summary(self, jobs: list[TrackedJob]) -> Text:
        text = Text()
        for job in jobs:
            st = job.state
            if not job.settled:
                if job.outcome is Outcome.RUNNING and st.phase == "firmware":
                    d = job.plan.drive
                    elapsed = model.firmware_elapsed(st)
                    text.append(f"… {d.kernel_name or d.path}: ", style="bold cyan")
                    text.append(model.firmware_step_name(job.plan, st.current_step) + ": ")
                    text.append(
                        _("waiting for the drive's firmware ({t})").format(
                            t=human_duration(elapsed) if elapsed is not None else "…"
                        )
                        + "\n"
                    )
                continue
            d = job.plan.drive
            name = d.kernel_name or d.path
            outcome = job.outcome
            if outcome.success and job.plan.purge is not None:
                text.append(f"✔ {name}: ", style="bold green")
                text.append_text(self.purge_result(job))
                text.append(" ")
                if job.certificates:
                    text.append(_("Certificate: {path}").format(path=job.certificates[-1]))
                elif self.tabula.certificates:
                    text.append(_("No certificate: see {path}").format(path=job.job_dir / "worker.log"))
                else:
                    text.append(_("Record: {path}").format(path=job.job_dir / "record.json"))
            elif outcome.success:
                text.append(f"✔ {name}: ", style="bold green")
                text.append(
                    _("{method}, {n} pass(es), verified.").format(
                        method=job.plan.method, n=len(job.plan.passes)
                    )
                    if outcome is Outcome.VERIFIED
                    else _("{method}, {n} pass(es), not verified.").format(
                        method=job.plan.method, n=len(job.plan.passes)
                    )
                )
                if job.certificates:
                    text.append(" " + _("Certificate: {path}").format(path=job.certificates[-1]))
                elif self.tabula.certificates:
                    text.append(" " + _("No certificate: see {path}").format(path=job.job_dir / "worker.log"))
                else:
                    text.append(" " + _("Record: {path}").format(path=job.job_dir / "record.json"))
            else:
                text.append(f"✘ {name}: ", style="bold red")
                text.append(failure_summary(job.state))
                text.append(" " + _("Journal: {path}").format(path=job.job_dir))
            text.append("\n")
        return text

    def purge_result(self, job: TrackedJob) -> Text:
        """The NIST level a purge-policy job reached, and why it is lower than requested."""
        try:
            level, note = model.level_result(job.state)
        except TabulaError as exc:
            return Text(exc.diagnostics(), style="red")
        text = Text(_("{level} reached.").format(level=model.level_name(level or "none")), style="bold")
        purge = job.plan.purge or {}
        if note and note == purge.get("level_note"):
            # The planner's reasons, in the technician's language (the record keeps them in English).
            why = model.purge_reasons(PurgePlan.from_dict(purge))
            text.append(" " + _("Purge was not possible: {why}.").format(why=why), style="yellow")
        elif note:
            text.append(" " + _("Lower than requested: {why}").format(why=note), style="yellow")
        return text

    def current(self) -> TrackedJob | None:
        table = self.query_one("#bench", DataTable)
        jobs = self.jobs()
        if not 0 <= table.cursor_row < len(jobs):
            return None
        key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
        return next((j for j in jobs if str(j.job_dir) == key), None)

    def action_stop(self) -> None:
        job = self.current()
        if job is None:
            return
        name = job.plan.drive.kernel_name or job.plan.drive.path
        if job.outcome is not Outcome.RUNNING:
            self.notify(_("The erasure of {drive} is not running.").format(drive=name), severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.stop(job, name)

        self.app.push_screen(
            ConfirmScreen(
                _(
                    "Stop the erasure of {drive}? The drive will be left partly erased: "
                    "it gets a failure report instead of a certificate, and must be erased again."
                ).format(drive=name),
                yes=_("Stop it"),
                no=_("Keep erasing"),
            ),
            answered,
        )

    def stop(self, job: TrackedJob, name: str) -> None:
        try:
            result = model.stop_worker(job)
        except OSError as exc:
            self.notify(_("Could not stop {drive}: {error}").format(drive=name, error=exc), severity="error")
            return
        if result == "signalled":
            self.notify(_("Stopping the erasure of {drive}…").format(drive=name))
        elif result == "not-ours":
            self.notify(
                _(
                    "The worker of {drive} is gone and its process number is now another program's: nothing was stopped."
                ).format(drive=name),
                severity="warning",
            )
        else:
            self.notify(_("The erasure of {drive} is not running.").format(drive=name), severity="warning")

    def action_back(self) -> None:
        self.app.pop_screen()


# --------------------------------------------------------------------------------------------------
# Confirmation dialog


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


# --------------------------------------------------------------------------------------------------
# Details (drive, protection, job, certificate)


class DetailsScreen(TabulaScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("l", "locate", "Locate LED"),
    ]

    def __init__(self, entry: DriveEntry | None, job: TrackedJob | None) -> None:
        super().__init__()
        self.entry = entry
        self.job = job
        self.locating = False

    def action_locate(self) -> None:
        """Blink (or stop blinking) this drive's bay LED, in a thread: ledctl may take a moment."""
        if self.entry is None:
            self.notify(_("This drive was removed."), severity="warning")
            return
        self.run_worker(
            lambda: self._locate(self.entry.info.path if self.entry else "", not self.locating),
            thread=True,
            exit_on_error=False,
        )

    def _locate(self, device: str, on: bool) -> None:
        from erase.purge.machine import current_machine
        from station.leds import locate

        result = locate(current_machine().runner, device, on=on)
        self.app.call_from_thread(self._located, result.reason, on)

    def _located(self, reason: str, on: bool) -> None:
        if reason == "ok":
            self.locating = on
            self.notify(_("The bay LED of this drive is blinking.") if on else _("The bay LED is off."))
        elif reason == "unsupported":
            self.notify(_("This drive's bay has no LED that Tabula can control."), severity="warning")
        elif reason == "no-tool":
            self.notify(_("LED control needs the ledmon package (ledctl)."), severity="warning")
        else:
            self.notify(_("Could not blink the bay LED."), severity="error")

    def compose(self) -> ComposeResult:
        yield VerticalScroll(Static(self.describe()), id="details")
        yield Footer(compact=True)

    def describe(self) -> Text:
        info = self.entry.info if self.entry is not None else (self.job.plan.drive if self.job else None)
        text = Text()
        if info is None:
            return text
        text.append(_("Drive") + "\n", style="bold underline")
        for label, value in (
            (_("Device"), info.path),
            (_("Model"), info.model),
            (_("Serial"), info.serial),
            (_("WWN"), info.wwn),
            (_("Size"), _("{size} ({n} bytes)").format(size=human_size(info.size_bytes), n=info.size_bytes)),
            (_("Type"), f"{media_label(info)} ({info.transport})"),
            (_("Bay"), ", ".join(info.by_path) or None),
            (_("Health"), self.tabula.health_of(info)),
        ):
            text.append(f"  {label}: ", style="bold")
            text.append(f"{value or '-'}\n")
        if self.entry is not None and not self.entry.protection.allowed:
            text.append("\n" + _("Protected: cannot be erased") + "\n", style="bold yellow")
            for r in self.entry.protection.reasons:
                why = _(model.REASON_EXPLANATIONS.get(r.code, N_("This drive is protected.")))
                text.append(f"  • {why}\n")
                text.append(f"    {info.path} {r.message}\n", style="dim")
                if r.hint:
                    text.append(f"    → {r.hint}\n", style="dim")
        job = self.job
        if job is not None:
            st = job.state
            text.append("\n" + _("Last erasure") + "\n", style="bold underline")
            for label, value in (
                (_("Job"), st.plan.job_id),
                (
                    _("Method"),
                    _("{method}, {n} pass(es)").format(method=st.plan.method, n=len(st.plan.passes)),
                ),
                (_("Started"), st.started_at),
                (_("Ended"), st.ended_at),
                (_("Status"), status_text(job)),
                (_("Folder"), str(job.job_dir)),
            ):
                text.append(f"  {label}: ", style="bold")
                text.append(f"{value or '-'}\n")
            if job.outcome is not Outcome.RUNNING and not job.outcome.success:
                text.append(f"  {failure_summary(st)}\n", style="red")
                if st.failure:
                    text.append(f"  {st.failure}\n", style="dim")
            if job.certificates:
                text.append("\n" + _("Certificate") + "\n", style="bold underline")
                for p in job.certificates:
                    text.append(f"  {p}\n")
                text.append_text(certificate_check(job.certificates))
        return text

    def action_back(self) -> None:
        self.app.pop_screen()


def certificate_check(paths: list[str]) -> Text:
    """Verify the signed certificate as ``station verify`` does, against this station's own keys."""
    from certs.errors import CertError
    from certs.trust import TrustStore
    from certs.verify import Verifier
    from host import paths as station_paths

    signed = [p for p in paths if p.endswith(".json")] or paths[:1]
    store = TrustStore()
    key_dir = station_paths.keys_dir()
    try:
        store.add_key_dir(key_dir)  # the station key bound to its id, the organisation key if any
        verdict = Verifier(store).verify_file(Path(signed[0]))
    except (CertError, OSError) as exc:
        return Text("  " + _("Signature not checked: {error}").format(error=exc) + "\n", style="yellow")
    if verdict.ok:
        return Text("  ✔ " + _("Signature valid, signed by this station.") + "\n", style="bold green")
    if verdict.authentic and verdict.certificate is not None and not verdict.certificate.success:
        # A genuine failure report: the signature is fine, the drive is NOT erased.
        return Text(
            "  ✔ " + _("Signature valid: this is a failure report, the drive is NOT erased.") + "\n",
            style="bold yellow",
        )
    why = "; ".join(m for _code, m in verdict.problems) or verdict.reason
    return Text("  ✘ " + _("Signature NOT valid: {why}").format(why=why) + "\n", style="bold red")


# --------------------------------------------------------------------------------------------------
# Settings


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
        self.tabula.save_settings(settings)

    def action_back(self) -> None:
        self.app.pop_screen()
