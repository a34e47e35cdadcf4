"""A drive in full: identity, protection, last erasure, and its certificate checked."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

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
from host.protection import ReasonCode
from station.i18n import _, tr
from station.leds import locate
from station.tui import model
from station.tui.model import (
    TrackedJob,
    failure_summary,
    human_size,
    media_label,
    only_tabula,
    status_text,
)
from station.tui.screens.base import TabulaScreen
from station.tui.screens.result import ResultScreen
from station.tui.text import append_fields, heading
from station.words import local_time, media_words, method_title, short_id, term


class DetailsScreen(TabulaScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("l", "locate", "Locate LED"),
        Binding("enter", "result", "Result"),
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
                (_("WWN"), f"{info.wwn}  ({term('wwn')})" if info.wwn else None),
                (
                    _("Size"),
                    _("{size} ({n} bytes)").format(size=human_size(info.size_bytes), n=info.size_bytes),
                ),
                (_("Type"), type_text(info)),
                *(((_("File"), info.backing_file),) if info.backing_file else ()),
                (_("Bay"), ", ".join(info.by_path) or None),
                (_("Health"), f"{self.tabula.health_of(info) or '-'}  ({term('smart')})"),
            ),
        )
        if self.entry is not None and only_tabula(self.entry):
            text.append_text(erasing_text(self.entry, self.job))
        elif self.entry is not None and not self.entry.protection.allowed:
            text.append_text(protection_text(self.entry, info.path))
        if self.job is not None:
            text.append_text(job_text(self.job))
        return text

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "result":
            return self.job is not None and self.job.settled
        return True

    def action_result(self) -> None:
        if self.job is not None and self.job.settled:
            self.app.push_screen(ResultScreen(self.job))

    def action_back(self) -> None:
        self.app.pop_screen()


def type_text(info: Any) -> str:
    """``HDD: hard disk``; ``FILE: a file used as a drive (demonstration, tests)``; ``SSD`` alone."""
    label, words = media_label(info), media_words(info.media_type, info.transport)
    if info.transport == "loop":
        words = term("loop")
    elif info.media_type == "virtual":
        words = term("virtual")
    return label if label.casefold() == words.casefold() else f"{label}: {words}"


def protection_text(entry: DriveEntry, path: str) -> Text:
    """Why a protected drive cannot be erased: each reason explained, then where it was found."""
    text = Text()
    text.append("\n" + _("Protected: cannot be erased") + "\n", style="bold yellow")
    for r in entry.protection.reasons:
        if r.code is ReasonCode.TABULA_JOB:
            continue  # shown as the erasure it is (erasing_text)
        why = _(model.REASON_EXPLANATIONS.get(r.code, model.PROTECTED_EXPLANATION))
        text.append(f"  • {why}\n")
        detail = model.reason_detail(r.code, r.device or path, r.target)
        text.append(f"    {detail or path + ' ' + tr(r.message)}\n", style="dim")
    return text


def erasing_text(entry: DriveEntry, job: TrackedJob | None) -> Text:
    """A drive Tabula itself is erasing: its job and how far it is, never "another program"."""
    text = Text()
    text.append("\n" + _("Being erased by Tabula") + "\n", style="bold cyan")
    for job_dir in model.tabula_jobs(entry):
        name = os.path.basename(job_dir)
        if job is not None and job.job_dir.name == name:
            text.append(
                "  " + _("Job {job}: {status}").format(job=short_id(name), status=status_text(job, 60)) + "\n"
            )
        else:
            text.append(
                "  " + _("Job {job} (started elsewhere: p follows it)").format(job=short_id(name)) + "\n"
            )
    text.append("  " + _("It cannot be erased again until this erasure is over.") + "\n", style="dim")
    return text


def job_text(job: TrackedJob) -> Text:
    """The drive's last erasure: its job, how it ended, and its certificate checked."""
    st = job.state
    text = Text()
    heading(text, _("Last erasure"))
    append_fields(
        text,
        (
            (_("Job"), short_id(st.plan.job_id)),
            (_("Method"), method_title(st.plan.method)),
            (_("Started"), local_time(st.started_at, seconds=True) if st.started_at else None),
            (_("Ended"), local_time(st.ended_at, seconds=True) if st.ended_at else None),
            (_("Status"), status_text(job, 60)),
            (_("Folder"), str(job.job_dir)),
        ),
    )
    failed = job.outcome is not Outcome.RUNNING and job.outcome is not Outcome.VERIFIED
    if failed and not job.outcome.success:
        text.append(f"  {failure_summary(st)}\n", style="red")
        if st.failure:
            text.append(f"  {tr(st.failure)}\n", style="dim")
    if job.certificates:
        if failed:
            heading(text, "✘ " + _("Signed failure report (NOT a certificate)"))
        else:
            heading(text, "✔ " + _("Certificate"))
        for p in job.certificates:
            text.append(f"  {p}\n")
        text.append_text(certificate_check(job.certificates))
        text.append("  " + _("Enter: what now (print, label, erase again, destroy).") + "\n", style="dim")
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
            "  ✘ " + _("Signature valid: this is a failure report, the drive is NOT erased.") + "\n",
            style="bold yellow",
        )
    why = "; ".join(tr(m) for _code, m in verdict.problems) or verdict.reason
    return Text("  ✘ " + _("Signature NOT valid: {why}").format(why=why) + "\n", style="bold red")
