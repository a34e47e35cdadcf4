"""The main screen: one row per drive, selection, and the way to every other screen."""

from __future__ import annotations

import dataclasses
import os
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import (
    DataTable,
    Footer,
    Static,
)
from textual.widgets.data_table import ColumnKey

from erase.record import Outcome
from host.drives import DriveEntry
from station.i18n import N_, _
from station.tui import model
from station.tui.messages import FollowRequested, QuitRequested, StationChanged, SyncChanged
from station.tui.model import (
    TrackedJob,
    bay_label,
    failure_summary,
    human_size,
    media_label,
    only_tabula,
    protection_explanations,
    protection_label,
    status_text,
)
from station.tui.screens.base import TabulaScreen
from station.tui.screens.details import DetailsScreen
from station.tui.screens.diagnostics import DiagnosticsScreen
from station.tui.screens.machine import MachineScreen
from station.tui.screens.policy import PolicyScreen
from station.tui.screens.result import ResultScreen
from station.tui.screens.settings import SettingsScreen
from station.tui.screens.widgets import Column, add_columns, clip, data_table

# 79 columns in all at 80 columns, so a vertical scrollbar (one column, see the CSS) never hides part of
# the status, which fits model.status_text's longest line; a wider terminal gives the status the rest.
DRIVE_COLUMNS: tuple[Column, ...] = (
    ("dev", N_("Drive"), 9),
    ("bay", N_("Bay"), 7),
    ("model", N_("Model"), 10),
    ("serial", N_("Serial"), 9),
    ("size", N_("Size"), 8),
    ("type", N_("Type"), 5),
    ("health", N_("Health"), 7),
    ("status", N_("Status"), model.STATUS_WIDTH),
)


#: The demo's drives (station.demo.DEMO_DRIVES), named in the technician's language.
DEMO_NAMES = {"laptop": N_("laptop"), "desktop": N_("desktop"), "4kn": N_("4K sectors")}


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
        """Refused for a reason of its own (mounted, in use by another program...): not Tabula's erasure."""
        return self.entry is not None and not self.entry.protection.allowed and not only_tabula(self.entry)

    @property
    def erasing(self) -> bool:
        """Tabula's own worker is writing to it (maybe a job this TUI does not follow: `station erase`)."""
        return self.entry is not None and not self.entry.protection.allowed and only_tabula(self.entry)

    @property
    def busy(self) -> bool:
        """Its job's worker still has the drive (erasing, or writing the certificate)."""
        return (self.job is not None and not self.job.settled) or self.erasing


class DrivesScreen(TabulaScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_drive", "Select", key_display=N_("Space")),
        Binding("a", "select_all", "All"),
        Binding("e", "erase", "Erase"),
        Binding("p", "bench", "Follow"),
        Binding("d", "details", "Info"),
        Binding("g", "diagnose", "Diagnostics"),
        Binding("l", "machine", "Lot"),
        Binding("s", "settings", "Settings"),
        Binding("q", "quit_app", "Quit"),
    ]

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        yield data_table("drives")
        yield Static(id="detail")
        yield Static(id="sync")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#drives", DataTable)
        self.status_width = model.STATUS_WIDTH
        add_columns(table, DRIVE_COLUMNS)
        self._row_keys: list[str] = []
        self._shown: dict[str, list[Text | str]] = {}
        self.refresh_rows()
        self.refresh_sync()

    def on_resize(self, event: object) -> None:
        """A wider terminal gives the status column what the other columns do not use."""
        fixed = sum(w for key, _label, w in DRIVE_COLUMNS if key != "status")
        width = max(model.STATUS_WIDTH, self.size.width - fixed - 1)
        if width == getattr(self, "status_width", None):
            return
        self.status_width = width
        table = self.query_one("#drives", DataTable)
        table.columns[ColumnKey("status")].width = width
        table.columns[ColumnKey("status")].auto_width = False
        self._shown = {}  # statuses are cut to the width: draw them again
        table.refresh()
        self.refresh_rows()

    def on_station_changed(self, message: StationChanged) -> None:
        self.refresh_rows()

    def on_screen_resume(self) -> None:
        """Back from another screen: what changed meanwhile was told to that screen; draw it now."""
        self.refresh_rows()

    def on_sync_changed(self, message: SyncChanged) -> None:
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
        return [
            dev,
            clip(bay_label(info), 6),
            self.model_cell(row),
            clip(info.serial, 8, keep_end=True),
            human_size(info.size_bytes),
            media_label(info),
            clip(health or "-", 6),
            self.status_cell(row),
        ]

    def model_cell(self, row: DriveRow) -> Text | str:
        """The model; for the demo's drives, which demonstration drive it is (the failing one marked)."""
        demo = self.tabula.demo_drives
        backing = getattr(row.info, "backing_file", None) or ""
        if demo is not None and backing in demo:
            name = os.path.splitext(os.path.basename(backing))[0].removeprefix("donor-")
            if demo[backing] == "failing":
                return Text("⚠ " + _("faulty"), style="bold yellow")
            known = DEMO_NAMES.get(name)
            return clip(_(known) if known is not None else name, 9)
        return clip(row.info.model, 9)

    def status_cell(self, row: DriveRow) -> Text:
        width = getattr(self, "status_width", model.STATUS_WIDTH)
        if row.entry is None:
            status = Text(_("removed") + ": ", style="bold red")
            if row.job is not None:
                status.append(status_text(row.job, width - len(status.plain)))
            return status
        if row.protected and not row.busy:  # a running erase holds its drive open: not a lock
            return Text(clip("🔒 " + protection_label(row.entry), width), style="yellow")
        if row.job is not None and not (row.selected and row.job.settled):
            style = {
                Outcome.VERIFIED: "bold green",
                Outcome.UNVERIFIED: "green",
                Outcome.FAILED: "bold red",
                Outcome.INTERRUPTED: "red",
                Outcome.RUNNING: "cyan",
            }[row.job.outcome]
            return Text(status_text(row.job, width), style=style)
        if row.erasing:  # Tabula's worker, of a job not followed here yet (the next rescan finds it)
            return Text(clip(_("erasing (Tabula)"), width), style="cyan")
        if row.selected:
            return Text(_("selected"), style="bold")
        return Text(_("idle"), style="dim")

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
        machine = self.tabula.machine.label()
        if machine:
            title += "  " + machine
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
        self.action_result()

    def update_detail(self) -> None:
        row = self.current()
        detail = self.query_one("#detail", Static)
        if row is None:
            detail.update(_("No drive found. Plug a drive in: it appears here by itself."))
            return
        info = row.info
        sn = _("S/N")
        line1 = f"{info.path}  {info.model or ''}  {sn} {info.serial or '-'}  {human_size(info.size_bytes)}"
        text = Text(line1.strip() + "\n")
        note = self.demo_note(row)
        if row.entry is None:
            text.append(_("This drive was removed.") + " ", style="bold red")
            if row.job is not None and row.job.outcome is not Outcome.RUNNING:
                text.append(failure_summary(row.job.state))
        elif row.protected and not row.busy:
            text.append(" ".join(protection_explanations(row.entry)), style="yellow")
        elif row.job is not None:
            text.append(self.job_sentence(row.job))
        elif row.erasing:
            text.append(
                _("Tabula is erasing this drive (a job started elsewhere): p follows it."), style="cyan"
            )
        elif note:
            text.append(note, style="yellow")
        else:
            text.append(_("Ready. Space selects it, E erases the selection."), style="dim")
        detail.update(text)

    def demo_note(self, row: DriveRow) -> str:
        demo = self.tabula.demo_drives
        backing = getattr(row.info, "backing_file", None) or ""
        if demo is None or demo.get(backing) != "failing":
            return ""
        return _(
            "Demonstration: this drive has bad sectors on purpose. Its erasure will FAIL, as a dying drive's would."
        )

    def job_sentence(self, job: TrackedJob) -> str:
        outcome = job.outcome
        if outcome is Outcome.RUNNING:
            return _("Erasing: {status}").format(status=status_text(job, 60))
        if outcome is Outcome.VERIFIED:
            if job.certificates:
                return _("Erased and verified, certificate signed. Enter: see it, print it, print a label.")
            return _("Erased and verified.")
        if outcome is Outcome.UNVERIFIED:
            return _("Erased, NOT verified: no NIST level. Enter: what now.")
        return _("Not erased: {why}. Enter: what now (again, other method, destroy).").format(
            why=failure_summary(job.state)
        )

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
        self.app.post_message(FollowRequested())

    def action_details(self) -> None:
        row = self.current()
        if row is not None:
            self.app.push_screen(DetailsScreen(row.entry, row.job))

    def action_result(self) -> None:
        """Enter: a finished drive's result and next step; otherwise its details."""
        row = self.current()
        if row is None:
            return
        if row.job is not None and row.job.settled:
            self.app.push_screen(ResultScreen(row.job))
        else:
            self.action_details()

    def action_settings(self) -> None:
        self.app.push_screen(SettingsScreen())

    def action_diagnose(self) -> None:
        self.app.push_screen(DiagnosticsScreen())

    def action_machine(self) -> None:
        self.app.push_screen(MachineScreen())

    def action_quit_app(self) -> None:
        self.app.post_message(QuitRequested())
