"""What a finished job leaves, for the result screen: its signed record in a few lines, its QR code,
and the next step (print, label; or retry, another method, destroy).  No Textual here.

The facts come from the *signed* files the worker wrote (the certificate or failure report, and the
destruction record once the drive was destroyed), not from the live journal: the screen says what the
paper says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from certs.destruction import DestructionRecord
from certs.errors import CertError
from certs.model import Certificate
from certs.page import qr_payload
from erase.record import Outcome
from station.certify import settings_for
from station.destroy import recorded
from station.errors import StationError
from station.i18n import N_, _, tr
from station.options import WorkerOptions
from station.printing import read_record, signed_of
from station.tui.model import TrackedJob, failure_summary
from station.words import local_time, media_words, method_title, short_id

#: What the technician may do next, per kind of result: (key, action, label).
SUCCESS_STEPS = (("i", "print", N_("Print the certificate")), ("t", "label", N_("Print a label")))
FAILURE_STEPS = (
    ("r", "retry", N_("Erase it again")),
    ("m", "other", N_("Another method or NIST Purge")),
    ("k", "destroy", N_("Destroyed: record it")),
    ("i", "print", N_("Print the failure report")),
)
DESTROYED_STEPS = (("i", "print", N_("Print the destruction record")), ("t", "label", N_("Print a label")))


@dataclass(frozen=True)
class Result:
    """A settled job as the result screen shows it."""

    kind: str  # "certificate", "failure_report", "destroyed", "unsigned"
    title: str
    lines: list[tuple[str, str]]  # (label, value)
    qr: str | None  # what the QR code holds (the certificate's own), None without a signed record
    signed: Path | None  # the signed JSON the screen describes
    pdf: Path | None
    url: str = ""  # the verification URL the QR code leads to ("" : the QR holds the id and hash)
    qr_short: str | None = None  # the id-and-hash form, for a terminal too small for the URL's code


def _files(paths: list[Path | str]) -> tuple[Path | None, Path | None]:
    texts = [str(p) for p in paths]
    pdf = next((Path(p) for p in texts if p.endswith(".pdf")), None)
    return signed_of(texts), pdf


def result_of(job: TrackedJob) -> Result:
    """The job's result: destroyed (its destruction record), certified, a failure report, or unsigned."""
    destroyed = recorded(job.job_dir)
    if destroyed is not None:
        signed, pdf = _files(list(destroyed.paths))
    else:
        signed, pdf = _files(list(job.certificates))
    if signed is None:
        return _unsigned(job)
    try:
        record, digest = read_record(signed)
    except (StationError, CertError, OSError):
        return _unsigned(job)
    url = record.verification_url or _url(job.job_dir)  # the signed link, else the settings' (older records)
    qr = qr_payload(record.certificate_id, digest, url)
    short = qr_payload(record.certificate_id, digest)
    if isinstance(record, DestructionRecord):
        kind, title, lines = "destroyed", _("Drive destroyed: destruction record signed"), _destroyed(record)
    elif record.success:
        kind, title, lines = "certificate", _("Erased and verified: certificate signed"), _certified(record)
    else:
        kind, title, lines = "failure_report", _("NOT erased: signed failure report"), _failed(job, record)
    return Result(kind, title, lines, qr, signed, pdf, url, short)


def _url(job_dir: Path) -> str:
    try:
        return settings_for(WorkerOptions.load(job_dir)).verification_url
    except (CertError, OSError, ValueError, json.JSONDecodeError):
        return ""


def _drive(model: str | None, serial: str | None, media: str, transport: str) -> str:
    """``WDC WD5000AAKX WD-WCC2E1234567 (hard disk)``; a drive without model or serial by its kind."""
    name = " ".join(x for x in (model, serial) if x)
    kind = media_words(media, transport)
    return f"{name} ({kind})" if name else kind


def _certified(c: Certificate) -> list[tuple[str, str]]:
    m = c.media
    return [
        (_("Drive"), _drive(m.model, m.serial, m.media_type, m.interface)),
        (
            _("Asset number"),
            (m.asset_number or "-") + ("  " + _("lot {lot}").format(lot=m.lot) if m.lot else ""),
        ),
        (_("Method"), method_title(c.sanitization.method)),
        (_("Level reached"), f"NIST SP 800-88 {c.sanitization.level_achieved.capitalize()}"),
        (_("Erased by"), " / ".join(x for x in (c.person.name, c.person.organisation) if x) or "-"),
        (_("Signed on"), local_time(c.issued_at)),
        (
            _("Certificate"),
            short_id(c.certificate_id) + "  " + _("(number {n})").format(n=c.station.sequence),
        ),
    ]


def _failed(job: TrackedJob, c: Certificate) -> list[tuple[str, str]]:
    m = c.media
    return [
        (_("Drive"), _drive(m.model, m.serial, m.media_type, m.interface)),
        (_("Why"), failure_summary(job.state)),
        (_("Details"), "; ".join(tr(r) for r in c.result.reasons[:3])),
        (_("Report"), short_id(c.certificate_id) + "  " + _("(number {n})").format(n=c.station.sequence)),
        (_("What now"), _("erase it again, try another method or NIST Purge, or destroy it")),
    ]


def _destroyed(d: DestructionRecord) -> list[tuple[str, str]]:
    m = d.media
    x = d.destruction
    return [
        (_("Drive"), _drive(m.model, m.serial, m.media_type, m.interface)),
        (
            _("Destroyed"),
            _("{method} by {who}").format(method=destruction_method(x.method), who=x.performed_by),
        ),
        (_("Witness"), x.witness or "-"),
        (_("Date"), local_time(x.destroyed_at)),
        (_("Failed erasure"), short_id(d.failed_job.job_id)),
        (_("Record"), short_id(d.record_id) + "  " + _("(number {n})").format(n=d.station.sequence)),
    ]


def _unsigned(job: TrackedJob) -> Result:
    d = job.plan.drive
    ok = job.outcome is Outcome.VERIFIED
    lines = [(_("Drive"), _drive(d.model, d.serial, d.media_type, d.transport))]
    if not ok:
        lines.append((_("Why"), failure_summary(job.state)))
    lines.append((_("Journal"), str(job.job_dir)))
    title = (
        _("Erased and verified (no certificate was signed)") if ok else _("NOT erased (no report was signed)")
    )
    return Result("unsigned", title, lines, None, None, None)


DESTRUCTION_METHODS = {
    "shred": N_("shredded"),
    "drill": N_("drilled through"),
    "crush": N_("crushed"),
    "degauss": N_("degaussed (magnetic media only)"),
    "incinerate": N_("incinerated"),
}


def destruction_method(method: str) -> str:
    known = DESTRUCTION_METHODS.get(method)
    return _(known) if known is not None else method


def steps_for(kind: str) -> tuple[tuple[str, str, str], ...]:
    if kind == "certificate":
        return SUCCESS_STEPS
    if kind == "failure_report":
        return FAILURE_STEPS
    if kind == "destroyed":
        return DESTROYED_STEPS
    return ()
