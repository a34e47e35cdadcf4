"""What the TUI shows, computed without Textual: drive rows, job status, policies, plans, settings.

Everything here is plain Python so it can be tested (and reused) without a terminal.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import tomli_w

from erase.errors import JournalError
from erase.journal import JobState, boot_id, process_start, worker_alive
from erase.methods import METHODS
from erase.purge.planner import LEVEL_RANK, Alternative, PurgePlan
from erase.rates import overwrite_rate
from erase.record import JobPlan, Outcome
from host import units
from host.drives import DriveEntry
from host.errors import BadInput
from host.fsio import atomic_write
from host.identity import DriveInfo
from host.protection import ReasonCode
from station import operator as people
from station import words
from station.console import opal_known_absent, shown_alternatives
from station.destroy import DESTRUCTION_INDEX
from station.i18n import LANGUAGES, N_, _, current_language, tr
from station.jobs import EraseOptions, JobWatcher
from station.sync.errors import OutboxError
from station.sync.outbox import certificate_id_of

# --------------------------------------------------------------------------------------------------
# Formatting


def human_size(n: float) -> str:
    """A size in the technician's language: 500 GB, 1.0 TB (French 500 Go, 1,0 To)."""
    return units.human_size(n, current_language())


def human_rate(bytes_per_s: float) -> str:
    """455 MB/s (French 455 Mo/s)."""
    return units.human_rate(bytes_per_s, current_language())


human_duration = units.human_duration


MEDIA_LABELS = {
    "hdd": "HDD",
    "ssd": "SSD",
    "nvme": "NVMe",
    "usb": "USB",
    "mmc": "SD/MMC",
    "virtual": N_("VIRT"),
    "unknown": "?",
}


def media_label(info: DriveInfo) -> str:
    """The drive list's short type (5 characters); :func:`station.words.media_words` says it in full."""
    if info.transport == "loop":
        return _("FILE")
    known = MEDIA_LABELS.get(info.media_type)
    return _(known) if known is not None else info.media_type


def bay_label(info: DriveInfo) -> str:
    """Where the drive is plugged: the port part of its by-path link (``...-ata-3`` -> ``ata-3``)."""
    if not info.by_path:
        return "-"
    name = os.path.basename(sorted(info.by_path, key=len)[0])
    if name.startswith("pci-"):
        # pci-0000:00:17.0-ata-3, pci-0000:03:00.0-nvme-1, pci-0000:00:14.0-usb-0:2:1.0-scsi-0:0:0:0
        rest = name.split("-", 2)
        if len(rest) == 3:
            return rest[2].split("-scsi-")[0]
    return name


FLASH = frozenset({"ssd", "nvme", "usb", "mmc"})


# --------------------------------------------------------------------------------------------------
# Protection reasons in the technician's language

REASON_LABELS: dict[ReasonCode, str] = {
    ReasonCode.BOOT_MEDIUM: N_("boot medium"),
    ReasonCode.SYSTEM_DISK: N_("system disk"),
    ReasonCode.LOOP_BACKS_SYSTEM: N_("holds the system"),
    ReasonCode.MOUNTED: N_("mounted"),
    ReasonCode.SWAP: N_("swap in use"),
    ReasonCode.HOLDERS: N_("part of a volume"),
    ReasonCode.READ_ONLY: N_("read-only"),
    ReasonCode.IN_USE: N_("in use"),
    ReasonCode.TABULA_JOB: N_("being erased"),
}

#: For a reason code this version does not know.
PROTECTED_LABEL = N_("protected")
PROTECTED_EXPLANATION = N_("This drive is protected.")

REASON_EXPLANATIONS: dict[ReasonCode, str] = {
    ReasonCode.BOOT_MEDIUM: N_("This is the medium Tabula started from. It is never erased."),
    ReasonCode.SYSTEM_DISK: N_("The running system lives on this drive. It is never erased."),
    ReasonCode.LOOP_BACKS_SYSTEM: N_("A file of the running system lives on this drive."),
    ReasonCode.MOUNTED: N_("A filesystem of this drive is mounted: unmount it first."),
    ReasonCode.SWAP: N_("This drive is used as swap: turn it off first."),
    ReasonCode.HOLDERS: N_("This drive is part of a volume (LVM, RAID, encryption): stop it first."),
    ReasonCode.READ_ONLY: N_("This drive is read-only (write-protect switch or adapter)."),
    ReasonCode.IN_USE: N_("Another program has this drive open: close it first."),
    ReasonCode.TABULA_JOB: N_("Tabula is erasing this drive: follow the erasure, or stop it first."),
}

#: Per reason, what the technician sees under the explanation: where it was found, in their words.
REASON_DETAILS: dict[ReasonCode, str] = {
    ReasonCode.MOUNTED: N_("{device} is mounted on {target}: unmount it first (umount {target})."),
    ReasonCode.SWAP: N_("{target} is used as swap: turn it off first (swapoff {target})."),
    ReasonCode.HOLDERS: N_("{device} is part of {target}: stop it first."),
    ReasonCode.IN_USE: N_("{device} is open in: {target}."),
    ReasonCode.SYSTEM_DISK: N_("{device} holds the running system ({target})."),
    ReasonCode.LOOP_BACKS_SYSTEM: N_("{device} holds a file of the running system ({target})."),
    ReasonCode.BOOT_MEDIUM: N_("{device} is the medium Tabula started from ({target})."),
    ReasonCode.READ_ONLY: N_("{device} is read-only: check its write-protect switch or adapter."),
    ReasonCode.TABULA_JOB: N_("Erasure job {job} is writing to {device}."),
}


def reason_detail(code: ReasonCode, device: str, target: str) -> str:
    """Where a protection reason was found, in the technician's language (the English stays in logs)."""
    known = REASON_DETAILS.get(code)
    if known is None:
        return ""
    text = _(known).format(device=device, target=target, job=os.path.basename(target)[:8])
    return text.replace(" ()", "")  # a reason found without a target (a mount point, a holder...)


def tabula_jobs(entry: DriveEntry) -> list[str]:
    """The job directories of Tabula's own workers that hold this drive (protection reason TABULA_JOB)."""
    return [r.target for r in entry.protection.reasons if r.code is ReasonCode.TABULA_JOB]


def only_tabula(entry: DriveEntry) -> bool:
    """The drive is refused only because Tabula itself is erasing it."""
    reasons = entry.protection.reasons
    return bool(reasons) and all(r.code is ReasonCode.TABULA_JOB for r in reasons)


def protection_label(entry: DriveEntry) -> str:
    labels = dict.fromkeys(_(REASON_LABELS.get(r.code, PROTECTED_LABEL)) for r in entry.protection.reasons)
    return ", ".join(labels)


def protection_explanations(entry: DriveEntry) -> list[str]:
    return list(
        dict.fromkeys(
            _(REASON_EXPLANATIONS.get(r.code, PROTECTED_EXPLANATION)) for r in entry.protection.reasons
        )
    )


# --------------------------------------------------------------------------------------------------
# Policies

NIST_CLEAR = "nist-clear"
NIST_PURGE = "nist-purge"


@dataclass(frozen=True)
class Policy:
    key: str  # NIST_CLEAR or a method name
    title: str  # translated at display time through _()
    description: str
    available: bool = True


def policies() -> list[Policy]:
    """NIST Clear, NIST Purge, then every overwrite method: each with its plain name and sentence."""
    keys = [NIST_CLEAR, NIST_PURGE, *(name for name in METHODS if name != "custom")]
    return [Policy(k, words.METHOD_TITLES.get(k, k), words.METHOD_HELP.get(k, "")) for k in keys]


def policy_keys() -> list[str]:
    return [p.key for p in policies() if p.available]


def options_for(policy: str, info: DriveInfo) -> EraseOptions:
    """The erase options a policy means for one drive (NIST Clear picks the pattern by drive type)."""
    if policy in (NIST_CLEAR, NIST_PURGE):  # Purge falls back to the Clear overwrite
        method = "prng" if info.media_type in FLASH else "zero"
        return EraseOptions(method=method, verify="last", verify_mode="full")
    if policy not in METHODS or policy == "custom":
        raise BadInput(f"unknown erase policy {policy!r}", hint="choose one of: " + ", ".join(policy_keys()))
    return EraseOptions(method=policy, verify="last", verify_mode="full")


def policy_title(policy: str) -> str:
    for p in policies():
        if p.key == policy:
            return _(p.title)
    return policy


#: Rough sequential speeds used only for time estimates (bytes/s); the real rate is shown live.
def work_units(plan: JobPlan) -> int:
    return len(plan.passes) + len(plan.verified_passes())


def estimate_seconds(plan: JobPlan) -> float:
    rate = overwrite_rate(plan.drive.media_type)
    return plan.drive.size_bytes * work_units(plan) / rate


VERIFY_MODE_LABELS = {"full": N_("every sector"), "sample": N_("NIST sample")}


def plan_steps(plan: JobPlan) -> list[str]:
    """The steps of a plan, one line each, in the current language."""
    steps = []
    n = len(plan.passes)
    verified = set(plan.verified_passes())
    for i, p in enumerate(plan.passes):
        what = _("random data") if p.kind == "prng" else f"0x{p.hex}"
        steps.append(_("Write pass {i} of {n}: {what} on every sector").format(i=i + 1, n=n, what=what))
        if i in verified:
            steps.append(
                _("Read back every sector and check it ({mode})").format(
                    mode=_(VERIFY_MODE_LABELS.get(plan.verify_mode, plan.verify_mode))
                )
            )
    return steps


def level_achieved(plan: JobPlan) -> str:
    if plan.verify == "none":
        return _("no NIST level (not verified)")
    return _("NIST SP 800-88 Clear, once verification passes")


# --------------------------------------------------------------------------------------------------
# NIST Purge plans (erase.purge.planner) in the technician's language

LEVEL_NAMES = {
    "none": N_("no NIST level"),
    "clear": N_("NIST Clear"),
    "purge": N_("NIST Purge"),
}


def level_name(level: str) -> str:
    return _(LEVEL_NAMES.get(level, level))


#: The planner's step labels (English, as in the job record), shown translated.
STEP_LABELS = {
    "TCG Opal PSID revert (crypto erase)": N_("TCG Opal PSID revert (crypto erase)"),
    "ATA SANITIZE crypto scramble": N_("ATA SANITIZE crypto scramble"),
    "ATA SANITIZE block erase": N_("ATA SANITIZE block erase"),
    "ATA SANITIZE overwrite (zeros)": N_("ATA SANITIZE overwrite (zeros)"),
    "ATA SECURITY ERASE UNIT (enhanced)": N_("ATA SECURITY ERASE UNIT (enhanced)"),
    "ATA SECURITY ERASE UNIT": N_("ATA SECURITY ERASE UNIT"),
    "NVMe Sanitize crypto erase": N_("NVMe Sanitize crypto erase"),
    "NVMe Sanitize block erase": N_("NVMe Sanitize block erase"),
    "NVMe Sanitize overwrite (zeros)": N_("NVMe Sanitize overwrite (zeros)"),
    "NVMe Format, Secure Erase Settings 2 (crypto erase)": N_("NVMe Format (SES=2, crypto erase)"),
    "NVMe Format, Secure Erase Settings 1 (user data erase)": N_("NVMe Format (SES=1, user data erase)"),
    "SCSI SANITIZE cryptographic erase": N_("SCSI SANITIZE cryptographic erase"),
    "SCSI SANITIZE block erase": N_("SCSI SANITIZE block erase"),
    "SCSI SANITIZE overwrite (zeros)": N_("SCSI SANITIZE overwrite (zeros)"),
    "firmware sanitize command": N_("firmware erase command"),
    "clear the ATA password an interrupted erase left (Tabula's temporary password)": N_(
        "clear the ATA password left by an interrupted erase (Tabula's password)"
    ),
    "suspend to RAM and resume to clear the BIOS security freeze (operator consent)": N_(
        "suspend to RAM and resume, to clear the BIOS security freeze"
    ),
    "remove the Host Protected Area / restore the Accessible Max Address (native size)": N_(
        "remove the hidden area (HPA/AMA): back to the native size"
    ),
    "restore the Device Configuration Overlay (DCO) factory size": N_(
        "remove the hidden area (DCO): back to the factory size"
    ),
}


def step_label(label: str) -> str:
    known = STEP_LABELS.get(label)
    return _(known) if known is not None else tr(label)


#: Why a firmware step cannot be used, in plain words (prefixes of the planner's reasons).
REASON_TEXTS = (
    ("needs the PSID printed on the drive label", N_("needs the PSID printed on the drive's label")),
    ("behind a USB bridge that does not pass", N_("the USB adapter does not pass the drive's commands")),
    ("behind a USB bridge: ATA commands are refused", N_("behind a USB adapter: ATA commands are not sent")),
    ("not supported by the drive (no SANITIZE", N_("the drive has no SANITIZE command")),
    ("this SANITIZE sub-command is not supported", N_("the drive does not offer this kind of SANITIZE")),
    ("block erase applies to flash media only", N_("block erase is for flash media only")),
    ("the Security feature set is not supported", N_("the drive has no security erase")),
    ("enhanced erase is not supported", N_("the drive has no enhanced security erase")),
    ("the drive is locked", N_("the drive is locked with a password Tabula does not know")),
    ("a security password is already set", N_("a security password is already set on the drive")),
    ("the security attempt counter expired", N_("too many password attempts: unplug and replug the drive")),
    ("frozen by the BIOS", N_("frozen by the computer's BIOS (a suspend/resume cycle can unfreeze it)")),
    ("not supported by the controller (SANICAP)", N_("the drive has no Sanitize command of this kind")),
    ("Format NVM is not supported", N_("the drive has no Format command")),
    ("cryptographic erase is not supported by Format", N_("the drive's Format cannot erase by crypto")),
    ("the drive does not report SANITIZE support", N_("the drive does not say whether it can SANITIZE")),
    ("not supported by the drive", N_("the drive does not offer it")),
    ("the drive's ATA IDENTIFY could not be read", N_("the drive's identity could not be read")),
    ("not an ATA drive", N_("not an ATA drive")),
    ("no firmware sanitize command for loop", N_("a loop device (a file) has no firmware to erase it")),
    ("no firmware sanitize command", N_("this kind of drive has no firmware erase command")),
    ("not needed: an earlier step purges", N_("not needed: an earlier step purges")),
    ("reaches only Clear on this media", N_("reaches only Clear on this media")),
)


def reason_text(reason: str) -> str:
    """A planner reason in plain words; a missing tool is named with its package."""
    for prefix, text in REASON_TEXTS:
        if reason.startswith(prefix):
            return _(text)
    m = re.fullmatch(r"(\S+) is not installed \(apt-get install (\S+)\)", reason)
    if m:
        return _("the tool {tool} is missing (package {package})").format(tool=m[1], package=m[2])
    return tr(reason)


@dataclass(frozen=True)
class PurgeView:
    """One drive's purge plan as the plan screen shows it."""

    steps: list[tuple[str, str, str]]  # (what, level it reaches on this media, estimated time)
    ruled_out: list[tuple[str, str]]  # (what, why it cannot be used)
    level: str  # expected overall: none/clear/purge
    lower: bool  # lower than requested
    estimate: float
    psid_possible: bool  # a TCG Opal PSID revert could be planned with the PSID from the label
    frozen: bool  # a step needs (or could use) a suspend/resume cycle


def ruled_out_alternatives(pp: PurgePlan) -> list[Alternative]:
    """The firmware steps that could not be used, worth explaining (never a PSID revert on a drive the
    probe knows has no TCG Opal: :func:`station.console.opal_known_absent`)."""
    return [a for a in shown_alternatives(pp) if not a.reason.startswith("not needed")]


def purge_reasons(pp: PurgePlan) -> str:
    """Why Purge is not possible, in plain words, each reason once."""
    return "; ".join(dict.fromkeys(reason_text(a.reason) for a in ruled_out_alternatives(pp)))


def purge_view(plan: JobPlan, pp: PurgePlan) -> PurgeView:
    psid = not opal_known_absent(pp) and any(
        a.action == "opal-psid-revert" and a.reason.startswith("needs the PSID") for a in pp.alternatives
    )
    frozen = any(a.reason.startswith("frozen by the BIOS") for a in pp.alternatives) or any(
        s.action == "unfreeze-suspend" for s in pp.steps
    )
    return PurgeView(
        steps=_purge_steps(plan, pp),
        ruled_out=[(step_label(a.label), reason_text(a.reason)) for a in ruled_out_alternatives(pp)],
        level=pp.level_expected,
        lower=LEVEL_RANK[pp.level_expected] < LEVEL_RANK[pp.level_requested],
        estimate=pp.estimate_seconds,
        psid_possible=psid and pp.protocol in ("ata", "usb", "nvme", "scsi") and pp.level_expected != "purge",
        frozen=frozen,
    )


def _purge_steps(plan: JobPlan, pp: PurgePlan) -> list[tuple[str, str, str]]:
    """(what, level on this media, estimated time) of the firmware steps, then the overwrite passes."""
    steps: list[tuple[str, str, str]] = []
    for st in pp.steps:
        level = _("preparation") if st.level == "none" else level_name(st.level)
        steps.append((step_label(st.label), level, human_duration(st.estimate_seconds)))
    if not pp.overwrite:
        return steps
    verify = bool(plan.verified_passes())
    for i, p in enumerate(plan.passes):
        what = _("random data") if p.kind == "prng" else f"0x{p.hex}"
        text = _("overwrite {what}").format(what=what)
        if verify and i == len(plan.passes) - 1:
            text = _("{step} + verify").format(step=text)
        steps.append((text, level_name("clear"), human_duration(pp.overwrite_estimate_seconds)))
    return steps


def firmware_step_name(plan: JobPlan, index: int | None) -> str:
    steps = plan.purge_steps
    if index is None or not 0 <= index < len(steps):
        return ""
    return step_label(str(steps[index].get("label", "")))


def firmware_elapsed(state: JobState, now: float | None = None) -> float | None:
    """Seconds since the running firmware step started (from its journal event)."""
    for ev in reversed(state.events):
        if ev.get("event") == "step-started":
            started = datetime.fromisoformat(str(ev["t"]).replace("Z", "+00:00")).timestamp()
            return max(0.0, (time.time() if now is None else now) - started)
    return None


def level_result(state: JobState) -> tuple[str | None, str]:
    """The NIST level a finished job reached, and why it is lower than requested ('' if not)."""
    record = state.record()
    return record.nist_level, record.level_note


# --------------------------------------------------------------------------------------------------
# Confirmation


def confirmation_word(entries: list[DriveEntry]) -> str:
    """What the technician types to confirm: last 4 characters of the serial, the device name, or a word."""
    if len(entries) != 1:
        return _("ERASE")
    info = entries[0].info
    if info.transport == "loop" or not info.serial:
        return info.kernel_name or os.path.basename(info.path)
    serial = info.serial.replace(" ", "")
    return serial[-4:]


def confirmation_matches(expected: str, typed: str) -> bool:
    return typed.strip().casefold() == expected.casefold() and bool(expected)


# --------------------------------------------------------------------------------------------------
# Jobs as the TUI sees them


def certificate_paths(job_dir: Path) -> list[str]:
    """The certificate files the worker wrote for a job (empty when none)."""
    path = job_dir / "certificate.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, json.JSONDecodeError):
        return []  # being written right now (the worker replaces it atomically): next tick
    paths = data.get("paths", []) if isinstance(data, dict) else []
    return [str(p) for p in paths]


def certificate_id(job_dir: Path) -> str | None:
    """The id of the certificate the worker signed for a job (None when none, or not readable yet)."""
    try:
        data = json.loads((job_dir / "certificate.json").read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError):
        return None  # being replaced right now: next poll
    if not isinstance(data, dict):
        return None
    value = data.get("certificate_id")
    if isinstance(value, str) and value:
        return value
    # An index written after a crash ("recovered") names the files only: read the id from the file.
    for p in data.get("paths", []):
        if str(p).endswith(".json"):
            try:
                return certificate_id_of(Path(p).read_bytes(), str(p))
            except (OSError, OutboxError):
                return None
    return None


FAILURE_EXPLANATIONS = {
    "DriveGone": N_("the drive was unplugged or stopped answering"),
    "DriveUnresponsive": N_("the drive stopped accepting writes (a failing drive)"),
    "WrongDrive": N_("another drive is now at this place: plan it again"),
    "NowProtected": N_("the drive became protected (mounted or in use)"),
    "internal": N_("internal error: see worker.log in the job folder"),
}


#: Why a firmware step failed, in plain words (prefixes of erase.purge.steps' notes).
STEP_NOTES = (
    ("data check failed", N_("the data did not change as the drive claimed (read back after the command)")),
    ("the native size is still hidden", N_("the hidden area is still there")),
    ("the drive is still frozen", N_("the drive is still frozen after the suspend/resume")),
    (
        "the drive is locked with a password that is not Tabula's",
        N_("the drive is locked with its owner's password: unlock it with that password, then erase again"),
    ),
    (
        "the drive's password is not Tabula's",
        N_("the drive has its owner's password: remove it with that password, then erase again"),
    ),
    (
        "the drive did not accept the temporary password",
        N_("the drive refused the temporary password: nothing was erased"),
    ),
    ("the drive refused or aborted SECURITY ERASE UNIT", N_("the drive refused the erase command")),
    (
        "the drive still has the password after the erase",
        N_("the erase did not complete (the password is still set)"),
    ),
    ("sanitize did not finish in time", N_("the erase did not finish in time")),
    ("the drive does not report a sanitize completed", N_("the drive does not confirm the erase")),
    ("the sanitize log does not report a successful", N_("the drive does not confirm the erase")),
    ("nvme format did not report success", N_("the drive does not confirm the erase")),
    ("the drive reports the sanitize failed", N_("the drive reports that the erase failed")),
    ("the sanitize log shows no new sanitize", N_("the drive shows no new erase, only an older one")),
    ("refused: the PSID was not typed", N_("the PSID was not typed")),
    (
        "the drive refused the PSID",
        N_("the drive refused the PSID: check it against the label (case matters); nothing was erased"),
    ),
    (
        "the Linux kernel cannot send Opal commands",
        N_(
            "this station cannot send the PSID revert to this drive: use sedutil-cli or the maker's tool; nothing was erased"
        ),
    ),
    (
        "the PSID revert did not answer in time",
        N_("the PSID revert did not answer in time: power the drive off and on, then plan it again"),
    ),
    ("tabula-opal printed no PSID revert result", N_("the PSID revert gave no clear result")),
    ("sedutil-cli did not report a successful PSID revert", N_("the PSID revert failed: nothing was erased")),
    ("the PSID revert failed", N_("the PSID revert failed")),
)


def step_note(note: str) -> str:
    for prefix, text in STEP_NOTES:
        if note.startswith(prefix):
            return _(text)
    return tr(note)


def failed_step_summary(state: JobState) -> str | None:
    """The last failed firmware step, in plain words ("ATA SECURITY ERASE UNIT failed: ...")."""
    for event in reversed(state.events):
        result = event.get("result")
        if event.get("event") == "step-finished" and isinstance(result, dict) and result.get("note"):
            label = step_label(str(result.get("label", "")))
            return _("{step} failed: {why}").format(step=label, why=step_note(str(result["note"])))
    return None


def failure_summary(state: JobState) -> str:
    """Why a job did not succeed, in plain words (the exact reason stays in the journal and record)."""
    outcome = state.outcome
    if outcome is Outcome.INTERRUPTED:
        if state.end_event == "cancelled":
            return _("stopped on request")
        return _("the worker stopped before the end (power cut or killed)")
    if outcome is Outcome.FAILED:
        last = state.events[-1] if state.events else {}
        error = str(last.get("error", "")) if last.get("event") == "failed" else ""
        if error in FAILURE_EXPLANATIONS:
            return _(FAILURE_EXPLANATIONS[error])
        if error == "StepsFailed":
            step = failed_step_summary(state)
            if step is not None:
                return step
        if state.end_event == "finished":
            return _("verification found sectors that were not erased")
        return tr(state.failure or "") or _("failed")
    return ""


@dataclass
class TrackedJob:
    job_dir: Path
    state: JobState
    watcher: JobWatcher
    ours: bool = False  # started by this TUI (we hold its process)
    process: Any = None  # subprocess.Popen, never waited on: only poll()ed
    certificates: list[str] = field(default_factory=list)
    error: str | None = None
    synced: bool = False  # the sync outbox says the hub acknowledged its certificate
    destroyed: bool = False  # the drive was destroyed and its destruction record signed

    @property
    def plan(self) -> JobPlan:
        return self.state.plan

    @property
    def identity(self) -> str:
        return self.state.plan.drive.identity

    @property
    def process_running(self) -> bool:
        """Whether the job's worker is alive: our own child (polled), or one another station process
        started (its journalled pid, checked for the same boot and kernel start time).  A worker lives
        on after its journal's last event while it writes the record and certificate, holding the drive."""
        if self.process is not None:
            return bool(self.process.poll() is None)
        event = self.state.worker
        return event is not None and worker_alive(event)

    @property
    def outcome(self) -> Outcome:
        state = self.state
        if state.end_event is None and state.worker is None and self.process_running:
            return Outcome.RUNNING  # spawned, the worker has not journalled its start yet
        return state.outcome

    @property
    def settled(self) -> bool:
        """Over, and its worker gone (so record and certificate are written)."""
        return self.outcome is not Outcome.RUNNING and not self.process_running

    def eta_seconds(self) -> float | None:
        state = self.state
        if state.rate <= 0:
            return None
        units = work_units(state.plan)
        left = (1.0 - state.overall_fraction) * units * state.plan.drive.size_bytes
        return left / state.rate


#: Characters the drive list gives the status column (see screens.DRIVE_COLUMNS).
STATUS_WIDTH = 24


def fit(parts: list[str], width: int) -> str:
    """Join the parts with spaces, dropping the least useful ones (from the end of ``parts[2:]``) to fit.

    ``parts`` is ordered by importance after the first two: ``[head, percent, eta, rate]``.
    """
    kept = [p for p in parts if p]
    while len(" ".join(kept)) > width and len(kept) > 2:
        kept.pop()
    return " ".join(kept)


def status_text(job: TrackedJob, width: int = STATUS_WIDTH) -> str:
    """One short line for the drive list: 'P1/3 42% 118MB/s 1:02', 'verified', 'FAILED'.

    A running job's line never exceeds ``width``: the speed goes first, then the time left (the
    bench screen shows both in their own columns).
    """
    outcome = job.outcome
    if outcome is Outcome.RUNNING:
        return _running_text(job, width)
    if job.destroyed:
        return _("destroyed")
    if outcome is Outcome.VERIFIED:
        if job.certificates:
            return _("synced") if job.synced else _("signed")
        return _("verified")
    return {
        Outcome.UNVERIFIED: lambda: _("erased, not verified"),
        Outcome.FAILED: lambda: _("FAILED"),
    }.get(outcome, lambda: _("interrupted"))()


def _running_text(job: TrackedJob, width: int) -> str:
    state = job.state
    if state.worker is None or state.phase == "planned":
        return _("starting")
    pct = int(state.overall_fraction * 100)
    eta = job.eta_seconds()
    rate = human_rate(state.rate).replace(" ", "") if state.rate else ""
    eta_s = human_duration(eta) if eta is not None else ""
    if state.phase == "firmware":
        head = _("firmware {i}/{n}").format(i=(state.current_step or 0) + 1, n=len(state.plan.purge_steps))
    elif state.phase == "verify":
        head = _("check")
    else:
        head = _("pass {i}/{n}").format(i=(state.current_pass or 0) + 1, n=len(state.plan.passes))
    full = " ".join(x for x in (head, f"{pct}%", rate, eta_s) if x)
    if len(full) <= width:
        return full
    return fit([head, f"{pct}%", eta_s, rate], width)


StopResult = Literal["signalled", "not-running", "not-ours"]


def stop_worker(job: TrackedJob) -> StopResult:
    """Ask a job's worker to stop (SIGTERM): it journals ``cancelled`` and the job ends *interrupted*.

    The pid comes from the journal's ``worker-started`` event and is signalled only while it is still
    that process: same boot, same kernel start time (:func:`erase.journal.worker_alive`).  The check and
    the signal go through one pidfd, so a pid reused in between is never signalled.  Returns
    ``"not-ours"`` when the pid now belongs to another process, ``"not-running"`` when the job is over.
    """
    state = job.state
    if state.end_event is not None:
        return "not-running"
    event = state.worker
    if event is None:
        # Spawned by this TUI, its worker has not journalled its start yet: our own child, not reaped,
        # so its pid cannot have been reused.
        if job.process_running:
            job.process.send_signal(signal.SIGTERM)
            return "signalled"
        return "not-running"
    if event.get("boot_id") != boot_id():
        return "not-running"  # started before the last reboot: long gone
    try:
        fd = os.pidfd_open(int(event["pid"]))
    except ProcessLookupError:
        return "not-running"
    try:
        if not worker_alive(event):  # checked after the pidfd is held: it names this very process
            return "not-ours" if process_start(int(event["pid"])) is not None else "not-running"
        signal.pidfd_send_signal(fd, signal.SIGTERM)
    except ProcessLookupError:
        return "not-running"
    finally:
        os.close(fd)
    return "signalled"


def job_ended_at(state: JobState) -> float | None:
    if state.ended_at is None:
        return None
    return datetime.fromisoformat(state.ended_at.replace("Z", "+00:00")).timestamp()


RECENT_SECONDS = 12 * 3600


class JobBook:
    """The jobs the TUI follows, each read incrementally through its own :class:`JobWatcher`.

    One watcher per job so a damaged journal only affects its own row, and so jobs can be forgotten.
    """

    def __init__(self) -> None:
        self.jobs: dict[Path, TrackedJob] = {}

    def add(self, job_dir: Path, *, process: Any = None) -> TrackedJob:
        existing = self.jobs.get(job_dir)
        if existing is not None:
            return existing
        watcher = JobWatcher([job_dir])
        state = watcher.poll()[0]
        job = TrackedJob(job_dir, state, watcher, ours=process is not None, process=process)
        job.certificates = certificate_paths(job_dir)
        job.destroyed = (job_dir / DESTRUCTION_INDEX).exists()
        self.jobs[job_dir] = job
        return job

    def poll(self) -> list[TrackedJob]:
        """Read what every unfinished job appended; returns the jobs that changed."""
        changed = []
        for job in list(self.jobs.values()):
            if job.settled and job.state.end_event is not None and job.certificates:
                continue  # nothing more can happen to it
            before = (len(job.state.events), job.outcome, job.settled, len(job.certificates))
            try:
                job.state = job.watcher.poll()[0]
                job.error = None
            except (JournalError, OSError) as exc:
                job.error = str(exc)
            if job.settled:
                job.certificates = certificate_paths(job.job_dir)
            if (len(job.state.events), job.outcome, job.settled, len(job.certificates)) != before:
                changed.append(job)
        return changed

    def latest_by_identity(self) -> dict[str, TrackedJob]:
        out: dict[str, TrackedJob] = {}
        for job in sorted(self.jobs.values(), key=lambda j: j.plan.created_at):
            out[job.identity] = job
        return out


def select_jobs(job_dirs: list[Path], *, now: float | None = None) -> tuple[list[Path], list[str]]:
    """Of these job directories, those worth showing at start (running or recent); and unreadable ones."""
    now = time.time() if now is None else now
    wanted: list[Path] = []
    problems: list[str] = []
    for job_dir in job_dirs:
        try:
            state = JobWatcher([job_dir]).poll()[0]
        except (JournalError, OSError) as exc:
            problems.append(f"{job_dir.name}: {exc}")
            continue
        ended = job_ended_at(state)
        if state.outcome is Outcome.RUNNING or (ended is not None and now - ended < RECENT_SECONDS):
            wanted.append(job_dir)
    return wanted, problems


# --------------------------------------------------------------------------------------------------
# Settings

SETTINGS_FIELDS = ("technician", "organisation", "location")


@dataclass(frozen=True)
class StationSettings:
    technician: str = ""
    organisation: str = ""
    location: str = ""
    language: str = ""  # "" = automatic (boot parameter, then locale)
    default_policy: str = NIST_CLEAR
    printer: str = ""  # CUPS destination for certificates and reports ("" = CUPS's default)
    label_printer: str = ""  # CUPS destination for labels ("" = the printer above)
    ask_machine: bool = False  # ask each machine's lot and asset number at start (l asks any time)

    def operator(self) -> dict[str, str]:
        """The job plan's operator fields: the certificate's person when the settings file has none."""
        out = {"name": self.technician, "organisation": self.organisation, "location": self.location}
        return {k: v for k, v in out.items() if v}


def load_settings(path: Path) -> tuple[StationSettings, dict[str, Any]]:
    """The station settings and the whole TOML document (other keys are kept when saving)."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        doc = {}
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path} is not valid TOML: {exc}", hint="fix or remove the file") from exc
    cert = doc.get("certificate", {})
    station = doc.get("station", {})
    if not isinstance(cert, dict) or not isinstance(station, dict):
        raise BadInput(f"{path}: [certificate] and [station] must be tables")
    lang = str(station.get("language", ""))
    # The live image's tabula.policy= boot parameter (exported as TABULA_POLICY) is the default until
    # a technician saves one in the settings.
    policy = str(station.get("default_policy", os.environ.get("TABULA_POLICY") or NIST_CLEAR))
    # The live image's tabula.technician= / tabula.org= (TABULA_TECHNICIAN, TABULA_ORG) likewise.
    boot = people.from_environment()
    settings = StationSettings(
        technician=str(cert.get("technician", "")) or boot.technician,
        organisation=str(cert.get("organisation", "")) or boot.organisation,
        location=str(cert.get("location", "")),
        language=lang if lang in LANGUAGES else "",
        default_policy=policy if policy in policy_keys() else NIST_CLEAR,
        printer=str(station.get("printer", "")),
        label_printer=str(station.get("label_printer", "")),
        ask_machine=station.get("ask_machine", False) is True,
    )
    return settings, doc


def save_settings(path: Path, settings: StationSettings, doc: Mapping[str, Any], ui_language: str) -> None:
    """Write settings.toml: [certificate] (read by the certificate signer) and [station] (the TUI's)."""
    out: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in doc.items()}
    cert = out.setdefault("certificate", {})
    for key in SETTINGS_FIELDS:
        cert[key] = getattr(settings, key)
    cert["language"] = settings.language or ui_language
    station = out.setdefault("station", {})
    station["language"] = settings.language
    station["default_policy"] = settings.default_policy
    station["printer"] = settings.printer
    station["label_printer"] = settings.label_printer
    station["ask_machine"] = settings.ask_machine
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        text = tomli_w.dumps(out)
    except TypeError as exc:  # a value TOML cannot hold (None, an object): nothing is written
        raise BadInput(f"cannot write these settings to {path}: {exc}") from exc
    atomic_write(path, text.encode("utf-8"))


@dataclass
class Bench:
    """Jobs confirmed together: one progress/result screen, one bell when they are all over."""

    job_dirs: list[Path]
    rang: bool = False

    def settled(self, book: JobBook) -> bool:
        jobs = [book.jobs[d] for d in self.job_dirs if d in book.jobs]
        return bool(jobs) and all(j.settled for j in jobs)


# --------------------------------------------------------------------------------------------------
# Sync status line


def clock(ts: float | None, now: float | None = None) -> str:
    """A moment for the status line: 14:05 today, 27/11/2026 before (English 2026-11-27)."""
    if ts is None:
        return "-"
    t = datetime.fromtimestamp(ts)
    today = datetime.fromtimestamp(time.time() if now is None else now).date()
    if t.date() == today:
        return t.strftime("%H:%M")
    return t.strftime("%d/%m/%Y" if current_language() == "fr" else "%Y-%m-%d")


@dataclass(frozen=True)
class SyncView:
    """What the drive list's sync line says, and how loud (``off``, ``ok``, ``warn``, ``error``)."""

    text: str
    level: str


def sync_view(
    *,
    configured: bool,
    pending: int = 0,
    rejected: int = 0,
    retrying: int = 0,
    refused_reason: str | None = None,
    last_success_at: float | None = None,
    last_error: str | None = None,
    last_error_at: float | None = None,
    problem: str | None = None,
    now: float | None = None,
) -> SyncView:
    """The one-line summary of :func:`station.sync.status` for the drive list.

    ``retrying``: pending documents waiting out their own backoff; ``rejected``: documents the hub
    refused for good (a warning: a person must fix the cause, then ``station sync --requeue``), with
    the hub's reason for one of them (``refused_reason``, its error code when it sent one).
    """
    if problem:
        return SyncView(_("Sync: {problem}").format(problem=problem), "error")
    if not configured:
        return SyncView(_("Sync off (no hub configured)"), "off")
    failing = last_error is not None and (last_success_at is None or (last_error_at or 0) >= last_success_at)
    parts = _sync_parts(pending, retrying, last_success_at, now)
    if failing:
        parts.append(_("error {when}: {error}").format(when=clock(last_error_at, now), error=last_error))
    if rejected:
        parts.append(_refused(rejected, refused_reason))
    level = "error" if failing else ("warn" if pending or rejected else "ok")
    return SyncView(", ".join(parts), level)


def _sync_parts(pending: int, retrying: int, last_success_at: float | None, now: float | None) -> list[str]:
    parts = [_("Sync: {n} pending").format(n=pending)]
    if retrying:
        parts.append(_("{n} retrying").format(n=retrying))
    if last_success_at is not None:
        parts.append(_("last sent {when}").format(when=clock(last_success_at, now)))
    else:
        parts.append(_("nothing sent yet"))
    return parts


def _refused(rejected: int, reason: str | None) -> str:
    """Documents the hub refused for good, with its reason for one of them (cut to fit the line)."""
    if not reason:
        return _("{n} refused by the hub").format(n=rejected)
    reason = reason if len(reason) <= 40 else reason[:39] + "…"
    return _("{n} refused by the hub: {reason}").format(n=rejected, reason=reason)
