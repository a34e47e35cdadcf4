"""The NIST SP 800-88 planner: drive + capabilities + policy -> ordered steps.  Pure: no I/O.

Levels depend on the media (NIST SP 800-88 Rev. 1, appendix A, and this project's rules):

* overwrite through the host interface reaches **Clear**, on any media (on flash, spare blocks are
  not addressable, so never Purge);
* ATA SANITIZE (crypto scramble, block erase on flash, overwrite), NVMe Sanitize, NVMe Format with
  Secure Erase Settings 1 or 2, SCSI SANITIZE and a TCG Opal PSID revert reach **Purge**;
* ATA SECURITY ERASE UNIT (normal or enhanced) reaches Purge on magnetic media and only **Clear**
  on flash (the drive decides what it erases; remapped flash blocks may survive).

Every candidate that cannot be used is kept with the reason (frozen, locked, unsupported, behind a
USB bridge, tool missing...), so the operator sees why the plan is what it is.  Hidden areas (HPA,
AMA, DCO) are removed first; when they cannot be, the plan is refused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from erase.purge.errors import PurgeError, UnknownPolicy
from erase.purge.probe import TOOLS, Capabilities, nvme_controller_of, nvme_serial_mismatch
from host.identity import DriveInfo

POLICIES = ("nist-clear", "nist-purge")
LEVEL_RANK = {"none": 0, "clear": 1, "purge": 2}
PASSWORD = "@PASSWORD@"  # placeholder in planned argv; the machine supplies the real one when the step runs
#: The temporary ATA user password of SECURITY ERASE UNIT.  Fixed and documented on purpose (as
#: openSeaChest's "SeaChest"): a drive whose erase was cut by a crash or a power loss stays locked
#: with it, and anyone can unlock it (``hdparm --user-master u --security-unlock tabula DEV`` then
#: ``--security-disable tabula``); Tabula's plan does that itself when it finds security enabled.
TEMP_PASSWORD = "tabula"
PSID = "@PSID@"

# Rough rates (bytes/s) for estimates only.
_OVERWRITE_RATE = {"hdd": 150e6, "ssd": 400e6, "nvme": 1.0e9, "usb": 30e6, "mmc": 20e6}


class PurgeRefused(PurgeError):
    """The plan cannot be carried out safely (e.g. a hidden area that cannot be removed)."""


@dataclass(frozen=True)
class PlannedStep:
    action: str
    label: str
    level: str  # what this step reaches on this media: none (preparation), clear, purge
    estimate_seconds: float
    argv: tuple[str, ...]
    tool: str
    evidence: str  # zeros, zeros-or-ones, ones, changed, native-size, unfrozen, overwrite
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["argv"] = list(self.argv)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PlannedStep:
        return cls(
            action=d["action"],
            label=d["label"],
            level=d["level"],
            estimate_seconds=float(d["estimate_seconds"]),
            argv=tuple(d["argv"]),
            tool=d["tool"],
            evidence=d["evidence"],
            params=dict(d.get("params", {})),
        )


@dataclass(frozen=True)
class Alternative:
    """A step that was considered and not used: impossible (reason) or simply not needed."""

    action: str
    label: str
    level: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PlanOptions:
    allow_usb_ata: bool = False
    unfreeze_suspend: bool = False
    suspend_seconds: int = 5
    psid: str | None = None
    overwrite_passes: int = 1  # passes of the overwrite method (for the estimate)


@dataclass(frozen=True)
class PurgePlan:
    policy: str
    level_requested: str
    level_expected: str
    level_note: str  # why expected < requested ('' when equal)
    steps: tuple[PlannedStep, ...]  # firmware and preparation steps, in order
    overwrite: bool  # the overwrite passes of the job plan follow the steps
    alternatives: tuple[Alternative, ...]
    accessible_bytes: int
    native_bytes: int
    flash: bool
    protocol: str
    overwrite_estimate_seconds: float = 0.0
    capabilities: dict[str, Any] = field(default_factory=dict)

    @property
    def estimate_seconds(self) -> float:
        return sum(s.estimate_seconds for s in self.steps) + self.overwrite_estimate_seconds

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "level_requested": self.level_requested,
            "level_expected": self.level_expected,
            "level_note": self.level_note,
            "steps": [s.to_dict() for s in self.steps],
            "overwrite": self.overwrite,
            "alternatives": [a.to_dict() for a in self.alternatives],
            "accessible_bytes": self.accessible_bytes,
            "native_bytes": self.native_bytes,
            "flash": self.flash,
            "protocol": self.protocol,
            "overwrite_estimate_seconds": self.overwrite_estimate_seconds,
            "capabilities": self.capabilities,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PurgePlan:
        return cls(
            policy=d["policy"],
            level_requested=d["level_requested"],
            level_expected=d["level_expected"],
            level_note=d.get("level_note", ""),
            steps=tuple(PlannedStep.from_dict(s) for s in d["steps"]),
            overwrite=bool(d["overwrite"]),
            alternatives=tuple(Alternative(**a) for a in d.get("alternatives", [])),
            accessible_bytes=int(d["accessible_bytes"]),
            native_bytes=int(d["native_bytes"]),
            flash=bool(d["flash"]),
            protocol=d["protocol"],
            overwrite_estimate_seconds=float(d.get("overwrite_estimate_seconds", 0.0)),
            capabilities=dict(d.get("capabilities", {})),
        )


@dataclass
class _Candidate:
    action: str
    label: str
    level: str
    reason: str | None  # None: possible
    step: PlannedStep | None


def _tool_reason(caps: Capabilities, tool: str) -> str | None:
    if caps.tools.get(tool, False):
        return None
    return f"{tool} is not installed (apt-get install {TOOLS.get(tool, tool)})"


def _media_key(drive: DriveInfo, flash: bool) -> str:
    if drive.media_type in _OVERWRITE_RATE:
        return drive.media_type
    return "ssd" if flash else "hdd"


def plan_purge(
    drive: DriveInfo, caps: Capabilities, policy: str, options: PlanOptions | None = None
) -> PurgePlan:
    """The ordered plan for ``policy`` on this drive.  Raises :class:`PurgeRefused` when unsafe."""
    if policy not in POLICIES:
        raise UnknownPolicy(f"unknown policy {policy!r}")
    opts = options or PlanOptions()
    requested = "purge" if policy == "nist-purge" else "clear"
    alternatives: list[Alternative] = []
    steps: list[PlannedStep] = []
    dev = drive.path
    sector = drive.logical_sector_size
    native_bytes = drive.size_bytes

    # -- hidden areas first ---------------------------------------------------------------------
    ata_reachable, ata_reason = _ata_reachable(caps, opts)
    if caps.hpa is not None and caps.hidden_sectors > 0:
        native = caps.hpa.native
        hidden_reason = ata_reason or _tool_reason(caps, "hdparm")
        if caps.dco_real_max is not None and caps.dco_real_max > caps.hpa.native:
            if hidden_reason:
                raise PurgeRefused(
                    f"{dev}: a DCO hides {caps.dco_real_max - caps.hpa.native} sectors and cannot be "
                    f"restored: {hidden_reason}",
                    hint="connect the drive directly to a SATA port",
                )
            steps.append(
                PlannedStep(
                    "restore-dco",
                    "restore the Device Configuration Overlay (DCO) factory size",
                    "none",
                    5.0,
                    ("hdparm", "--yes-i-know-what-i-am-doing", "--dco-restore", dev),
                    "hdparm",
                    "native-size",
                    {"native_sectors": caps.dco_real_max},
                )
            )
            native = caps.dco_real_max
        if caps.hpa.native > caps.hpa.current and hidden_reason:
            raise PurgeRefused(
                f"{dev}: a Host Protected Area hides {caps.hpa.hidden_sectors} sectors and cannot be "
                f"removed: {hidden_reason}",
                hint="connect the drive directly to a SATA port",
            )
        if hidden_reason is None:
            steps.append(
                PlannedStep(
                    "remove-hpa",
                    "remove the Host Protected Area / restore the Accessible Max Address (native size)",
                    "none",
                    5.0,
                    ("hdparm", "--yes-i-know-what-i-am-doing", "-N", f"p{native}", dev),
                    "hdparm",
                    "native-size",
                    {"native_sectors": native},
                )
            )
        native_bytes = native * sector

    # -- firmware candidates ----------------------------------------------------------------------
    chosen: PlannedStep | None = None
    pre: list[PlannedStep] = []
    if requested == "purge":
        candidates = _candidates(drive, caps, opts, native_bytes, ata_reachable, ata_reason)
        for c in candidates:
            if c.reason is None and c.step is not None and c.level == "purge" and chosen is None:
                chosen = c.step
                if c.step.params.get("needs_unfreeze"):
                    pre.append(_unfreeze_step(opts))
                if c.step.params.get("recover_password"):
                    pre.append(_recover_password_step(dev, locked=bool(c.step.params.get("locked"))))
            elif c.reason is not None:
                alternatives.append(Alternative(c.action, c.label, c.level, c.reason))
            elif c.level != "purge":
                alternatives.append(
                    Alternative(
                        c.action, c.label, c.level, f"reaches only {c.level.capitalize()} on this media"
                    )
                )
            else:
                alternatives.append(
                    Alternative(c.action, c.label, c.level, "not needed: an earlier step purges")
                )
    steps.extend(pre)
    if chosen is not None:
        steps.append(chosen)
    overwrite = chosen is None
    rate = _OVERWRITE_RATE[_media_key(drive, caps.flash)]
    overwrite_estimate = native_bytes * (opts.overwrite_passes + 1) / rate if overwrite else 0.0
    expected = "purge" if chosen is not None else "clear"
    note = ""
    if LEVEL_RANK[expected] < LEVEL_RANK[requested]:
        why = "; ".join(dict.fromkeys(a.reason for a in alternatives)) or "no firmware sanitize command"
        media = "flash" if caps.flash else "magnetic"
        note = f"Purge is not possible on this drive ({why}); overwrite ({media} media) reaches Clear only"
    return PurgePlan(
        policy=policy,
        level_requested=requested,
        level_expected=expected,
        level_note=note,
        steps=tuple(steps),
        overwrite=overwrite,
        alternatives=tuple(alternatives),
        accessible_bytes=drive.size_bytes,
        native_bytes=native_bytes,
        flash=caps.flash,
        protocol=caps.protocol,
        overwrite_estimate_seconds=round(overwrite_estimate, 1),
        capabilities=caps.to_dict(),
    )


def _ata_reachable(caps: Capabilities, opts: PlanOptions) -> tuple[bool, str | None]:
    """Can ATA commands reach the drive?  (direct SATA, or a USB bridge explicitly allowed)."""
    if caps.protocol == "ata":
        if caps.ata is None or not caps.ata.valid:
            return False, "the drive's ATA IDENTIFY could not be read"
        return True, None
    if caps.protocol == "usb":
        if not caps.usb_bridge_sat:
            return False, "behind a USB bridge that does not pass ATA commands through"
        if not opts.allow_usb_ata:
            return False, "behind a USB bridge: ATA commands are refused unless --allow-usb-ata"
        return True, None
    return False, f"not an ATA drive ({caps.protocol})"


def _recover_password_step(dev: str, *, locked: bool) -> PlannedStep:
    return PlannedStep(
        "ata-password-recover",
        "clear the ATA password an interrupted erase left (Tabula's temporary password)",
        "none",
        5.0,
        ("hdparm", "--user-master", "u", "--security-disable", PASSWORD, dev),
        "hdparm",
        "security-disabled",
        {"locked": locked},
    )


def _unfreeze_step(opts: PlanOptions) -> PlannedStep:
    return PlannedStep(
        "unfreeze-suspend",
        "suspend to RAM and resume to clear the BIOS security freeze (operator consent)",
        "none",
        float(opts.suspend_seconds + 20),
        ("rtcwake", "-m", "mem", "-s", str(opts.suspend_seconds)),
        "rtcwake",
        "unfrozen",
    )


def _candidates(
    drive: DriveInfo,
    caps: Capabilities,
    opts: PlanOptions,
    size: int,
    ata_ok: bool,
    ata_reason: str | None,
) -> list[_Candidate]:
    dev = drive.path
    flash = caps.flash
    out: list[_Candidate] = []

    def add(action: str, label: str, level: str, reason: str | None, step: PlannedStep | None) -> None:
        out.append(_Candidate(action, label, level, reason, step if reason is None else None))

    if opts.psid is not None:
        reason = _tool_reason(caps, "sedutil-cli")
        add(
            "opal-psid-revert",
            "TCG Opal PSID revert (crypto erase)",
            "purge",
            reason,
            PlannedStep(
                "opal-psid-revert",
                "TCG Opal PSID revert (crypto erase)",
                "purge",
                30.0,
                ("sedutil-cli", "--PSIDrevert", PSID, dev),
                "sedutil-cli",
                "changed",
                {"psid": opts.psid},
            ),
        )
    else:
        out.append(
            _Candidate(
                "opal-psid-revert",
                "TCG Opal PSID revert (crypto erase)",
                "purge",
                "needs the PSID printed on the drive label, typed by the operator (--psid)",
                None,
            )
        )

    if caps.protocol in ("ata", "usb"):
        ata = caps.ata
        tool = _tool_reason(caps, "hdparm")
        yes = "--yes-i-know-what-i-am-doing"
        for action, flag_ok, opt, label, ev, hdd_ok in (
            (
                "ata-sanitize-crypto",
                ata is not None and ata.sanitize_crypto,
                "--sanitize-crypto-scramble",
                "ATA SANITIZE crypto scramble",
                "changed",
                True,
            ),
            (
                "ata-sanitize-block",
                ata is not None and ata.sanitize_block,
                "--sanitize-block-erase",
                "ATA SANITIZE block erase",
                "zeros-or-ones",
                False,
            ),
            (
                "ata-sanitize-overwrite",
                ata is not None and ata.sanitize_overwrite,
                "--sanitize-overwrite",
                "ATA SANITIZE overwrite (zeros)",
                "zeros",
                True,
            ),
        ):
            reason = ata_reason
            if reason is None and not flag_ok:
                reason = (
                    "not supported by the drive (no SANITIZE feature set)"
                    if not (ata and ata.sanitize)
                    else "this SANITIZE sub-command is not supported"
                )
            if reason is None and not flash and not hdd_ok:
                reason = "block erase applies to flash media only"
            reason = reason or tool
            argv: tuple[str, ...] = ("hdparm", yes, opt, dev)
            if action == "ata-sanitize-overwrite":
                argv = ("hdparm", yes, opt, "hex:00000000", dev)
            est = (
                30.0
                if action == "ata-sanitize-crypto"
                else size / (_OVERWRITE_RATE["ssd" if flash else "hdd"])
            )
            add(
                action,
                label,
                "purge",
                reason,
                PlannedStep(action, label, "purge", round(est, 1), argv, "hdparm", ev),
            )
        sec = ata.security if ata is not None else None
        for enhanced in (True, False):
            action = "ata-secure-erase-enhanced" if enhanced else "ata-secure-erase"
            label = "ATA SECURITY ERASE UNIT" + (" (enhanced)" if enhanced else "")
            level = "clear" if flash else "purge"
            reason = ata_reason
            needs_unfreeze = False
            if reason is None and (sec is None or not sec.supported):
                reason = "the Security feature set is not supported"
            if reason is None and sec is not None:
                if enhanced and not sec.enhanced_supported:
                    reason = "enhanced erase is not supported"
                elif sec.count_expired:
                    reason = "the security attempt counter expired: power-cycle the drive"
                elif sec.frozen:
                    if opts.unfreeze_suspend:
                        reason = _tool_reason(caps, "rtcwake")
                        needs_unfreeze = reason is None
                    else:
                        reason = "frozen by the BIOS (add --unfreeze-suspend to try a suspend/resume cycle)"
            reason = reason or tool
            # A password already set is most often Tabula's own, left by an erase cut short: the plan
            # first clears it with TEMP_PASSWORD (a step the technician sees).  Another password
            # makes that step fail, and the drive stays as it was.
            recover = reason is None and sec is not None and (sec.enabled or sec.locked)
            minutes = None
            if sec is not None:
                minutes = sec.enhanced_minutes if enhanced else sec.erase_minutes
            est = minutes * 60.0 if minutes else size / _OVERWRITE_RATE["ssd" if flash else "hdd"]
            flag = "--security-erase-enhanced" if enhanced else "--security-erase"
            step = PlannedStep(
                action,
                label,
                level,
                round(est, 1),
                ("hdparm", "--user-master", "u", flag, PASSWORD, dev),
                "hdparm",
                "changed" if enhanced else "zeros-or-ones",
                {
                    "timeout": max(120.0, est * 2 + 60),
                    "needs_unfreeze": needs_unfreeze,
                    "recover_password": recover,
                    "locked": bool(sec is not None and sec.locked),
                },
            )
            add(action, label, level, reason, step)
        return out

    if caps.protocol == "nvme":
        ctrl = caps.nvme_ctrl
        ns = caps.nvme_ns
        tool = _tool_reason(caps, "nvme")
        cdev = caps.nvme_ctrl_dev or nvme_controller_of(dev)
        # The controller must be this drive's: its serial is compared, never its name trusted.
        wrong_ctrl = nvme_serial_mismatch(drive.serial, ctrl) if ctrl is not None else None
        count = caps.nvme_namespaces
        if count == 1:
            others = None
        elif count is None:
            others = (
                "the namespaces on this controller cannot be counted: other namespaces would be erased too"
            )
        else:
            others = f"other namespaces on this controller would be erased too ({count} namespaces)"
        ident = {"controller": cdev, "serial": (drive.serial or "").strip()}
        slog = caps.nvme_sanitize
        dealloc = ns.deallocated_reads if ns is not None else None
        dealloc_ev = dealloc or "changed"
        for action, bit, sanact, label, est_s, ev in (
            (
                "nvme-sanitize-crypto",
                ctrl is not None and ctrl.sanitize_crypto,
                "4",
                "NVMe Sanitize crypto erase",
                slog.est_crypto if slog else None,
                "changed",
            ),
            (
                "nvme-sanitize-block",
                ctrl is not None and ctrl.sanitize_block,
                "2",
                "NVMe Sanitize block erase",
                slog.est_block if slog else None,
                dealloc_ev,
            ),
            (
                "nvme-sanitize-overwrite",
                ctrl is not None and ctrl.sanitize_overwrite,
                "3",
                "NVMe Sanitize overwrite (zeros)",
                slog.est_overwrite if slog else None,
                "zeros",
            ),
        ):
            # Sanitize always acts on the whole NVM subsystem.
            reason = (None if bit else "not supported by the controller (SANICAP)") or wrong_ctrl or others
            reason = reason or tool
            seconds = float(est_s) if est_s else (30.0 if sanact == "4" else 60.0 + size / 1e9)
            order = (action, label, "purge", reason)
            add(
                *order,
                PlannedStep(
                    action,
                    label,
                    "purge",
                    seconds,
                    ("nvme", "sanitize", cdev, "-a", sanact),
                    "nvme",
                    ev,
                    {"timeout": max(300.0, seconds * 3), **ident},
                ),
            )
        fmt_ok = ctrl is not None and ctrl.format_supported
        for action, ses, label, ev, seconds in (
            (
                "nvme-format-crypto",
                "2",
                "NVMe Format, Secure Erase Settings 2 (crypto erase)",
                "changed",
                10.0,
            ),
            (
                "nvme-format-erase",
                "1",
                "NVMe Format, Secure Erase Settings 1 (user data erase)",
                dealloc_ev,
                30.0 + size / 2e9,
            ),
        ):
            reason = None
            if not fmt_ok:
                reason = "Format NVM is not supported (OACS)"
            elif ses == "2" and ctrl is not None and not ctrl.format_crypto:
                reason = "cryptographic erase is not supported by Format (FNA)"
            reason = reason or wrong_ctrl
            if reason is None and ctrl is not None and ctrl.format_all_namespaces:
                reason = others  # FNA: Format applies to every namespace of the controller
            reason = reason or tool
            add(
                action,
                label,
                "purge",
                reason,
                PlannedStep(
                    action,
                    label,
                    "purge",
                    round(seconds, 1),
                    ("nvme", "format", dev, f"--ses={ses}", "--force"),
                    "nvme",
                    ev,
                    {"timeout": max(300.0, seconds * 3), **ident},
                ),
            )
        return out

    if caps.protocol == "scsi":
        scsi = caps.scsi
        tool = _tool_reason(caps, "sg_sanitize") or _tool_reason(caps, "sg_requests")
        for action, supported, opt, label, ev, hdd_ok in (
            (
                "scsi-sanitize-crypto",
                scsi is not None and scsi.sanitize_crypto,
                "--crypto",
                "SCSI SANITIZE cryptographic erase",
                "changed",
                True,
            ),
            (
                "scsi-sanitize-block",
                scsi is not None and scsi.sanitize_block,
                "--block",
                "SCSI SANITIZE block erase",
                "zeros-or-ones",
                False,
            ),
            (
                "scsi-sanitize-overwrite",
                scsi is not None and scsi.sanitize_overwrite,
                "--overwrite",
                "SCSI SANITIZE overwrite (zeros)",
                "zeros",
                True,
            ),
        ):
            reason = None
            if scsi is None or not scsi.reported:
                reason = (
                    "the drive does not report SANITIZE support (REPORT SUPPORTED OPERATION CODES failed)"
                )
            elif not supported:
                reason = "not supported by the drive"
            elif not flash and not hdd_ok:
                reason = "block erase applies to flash media only"
            reason = reason or tool
            sg_argv: tuple[str, ...] = ("sg_sanitize", "--quick", "--immed", opt, dev)
            if opt == "--overwrite":
                sg_argv = ("sg_sanitize", "--quick", "--immed", "--overwrite", "--zero", dev)
            seconds = 30.0 if opt == "--crypto" else 60.0 + size / 150e6
            add(
                action,
                label,
                "purge",
                reason,
                PlannedStep(
                    action,
                    label,
                    "purge",
                    round(seconds, 1),
                    sg_argv,
                    "sg_sanitize",
                    ev,
                    {"timeout": max(600.0, seconds * 3)},
                ),
            )
        return out

    for action, label in (("firmware", "firmware sanitize command"),):
        add(action, label, "purge", f"no firmware sanitize command for {drive.transport} drives", None)
    return out
