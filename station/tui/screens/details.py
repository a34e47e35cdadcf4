"""A drive in full: identity, protection, last erasure, and its certificate checked."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import (
    Footer,
    Static,
)

from certs.errors import CertError
from certs.trust import TrustStore
from certs.verify import Verifier
from erase.purge.machine import current_machine
from erase.record import Outcome
from host import paths as station_paths
from host.drives import DriveEntry
from station.i18n import _
from station.leds import locate
from station.tui import model
from station.tui.model import (
    TrackedJob,
    failure_summary,
    human_size,
    media_label,
    status_text,
)
from station.tui.screens.base import TabulaScreen
from station.tui.text import append_fields, heading


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
        heading(text, _("Drive"), first=True)
        append_fields(
            text,
            (
                (_("Device"), info.path),
                (_("Model"), info.model),
                (_("Serial"), info.serial),
                (_("WWN"), info.wwn),
                (
                    _("Size"),
                    _("{size} ({n} bytes)").format(size=human_size(info.size_bytes), n=info.size_bytes),
                ),
                (_("Type"), f"{media_label(info)} ({info.transport})"),
                (_("Bay"), ", ".join(info.by_path) or None),
                (_("Health"), self.tabula.health_of(info)),
            ),
        )
        if self.entry is not None and not self.entry.protection.allowed:
            text.append_text(protection_text(self.entry, info.path))
        if self.job is not None:
            text.append_text(job_text(self.job))
        return text

    def action_back(self) -> None:
        self.app.pop_screen()


def protection_text(entry: DriveEntry, path: str) -> Text:
    """Why a protected drive cannot be erased: each reason explained, then its details and hint."""
    text = Text()
    text.append("\n" + _("Protected: cannot be erased") + "\n", style="bold yellow")
    for r in entry.protection.reasons:
        why = _(model.REASON_EXPLANATIONS.get(r.code, model.PROTECTED_EXPLANATION))
        text.append(f"  • {why}\n")
        text.append(f"    {path} {r.message}\n", style="dim")
        if r.hint:
            text.append(f"    → {r.hint}\n", style="dim")
    return text


def job_text(job: TrackedJob) -> Text:
    """The drive's last erasure: its job, how it ended, and its certificate checked."""
    st = job.state
    text = Text()
    heading(text, _("Last erasure"))
    append_fields(
        text,
        (
            (_("Job"), st.plan.job_id),
            (_("Method"), _("{method}, {n} pass(es)").format(method=st.plan.method, n=len(st.plan.passes))),
            (_("Started"), st.started_at),
            (_("Ended"), st.ended_at),
            (_("Status"), status_text(job)),
            (_("Folder"), str(job.job_dir)),
        ),
    )
    if job.outcome is not Outcome.RUNNING and not job.outcome.success:
        text.append(f"  {failure_summary(st)}\n", style="red")
        if st.failure:
            text.append(f"  {st.failure}\n", style="dim")
    if job.certificates:
        heading(text, _("Certificate"))
        for p in job.certificates:
            text.append(f"  {p}\n")
        text.append_text(certificate_check(job.certificates))
    return text


def certificate_check(paths: list[str]) -> Text:
    """Verify the signed certificate as ``station verify`` does, against this station's own keys."""
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
