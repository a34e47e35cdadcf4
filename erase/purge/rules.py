"""The firmware methods, one rule each: can it run on this drive, what it reaches, how long it takes.

A rule answers four questions about one method on one drive (a :class:`Situation`):

* :meth:`~Rule.impossible`: why it cannot run here (unsupported, frozen, behind a USB bridge, tool
  missing...), or None;
* :meth:`~Rule.level`: the NIST SP 800-88 level it reaches *on this media*;
* :meth:`~Rule.step`: the step to run, with its estimated time (only asked when possible).

:data:`RULES` lists them per protocol, in order of preference: the planner uses the first one that
is possible and reaches Purge, and reports every other one with its reason.  To add a method, write
its rule (or add a row to a family's table) and put it in :data:`RULES`; the golden plans
(``tests/test_purge_golden.py``) show what it changes.  Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from erase.purge.emmc import EmmcExtCsd
from erase.purge.plan import PASSWORD, PSID, PlannedStep, PlanOptions
from erase.purge.probe import (
    STATION_OPAL_TOOL,
    TOOLS,
    AtaIdentify,
    AtaSecurity,
    Capabilities,
    nvme_controller_of,
    nvme_serial_mismatch,
)
from erase.purge.tcg import psid_problem
from erase.rates import overwrite_rate
from host.identity import DriveInfo

YES = "--yes-i-know-what-i-am-doing"
#: The slowest rate an ATA SECURITY ERASE UNIT is planned at when the drive gives no estimate
#: (bytes/s): old PATA disks write 40-60 MB/s (a WD2500JB erased 250 GB in 90 min, 46 MB/s).
ATA_ERASE_SLOWEST_RATE = 40e6


def missing_tool(caps: Capabilities, tool: str) -> str | None:
    """Why ``tool`` cannot run on this machine (not installed, with its package), or None."""
    if caps.tools.get(tool, False):
        return None
    if tool == STATION_OPAL_TOOL:
        return f"{tool} is not installed (it comes with the station: reinstall the station)"
    return f"{tool} is not installed (apt-get install {TOOLS.get(tool, tool)})"


#: The SSCs the Linux kernel's Opal code reverts (block/sed-opal.c reads the ComID of these only).
KERNEL_OPAL_FAMILIES = ("Opal 1", "Opal 2")


def psid_revert_tool(caps: Capabilities) -> tuple[str | None, str]:
    """The tool a PSID revert runs with here, or None and why none can.

    sedutil-cli when installed (as before the kernel path existed; Debian 12 does not package it),
    else the station's own ``tabula-opal``, which asks the Linux kernel (its Opal ioctl): that one
    reverts Opal 1 and Opal 2 drives only, not Pyrite or Opalite.
    """
    if caps.tools.get("sedutil-cli", False):
        return "sedutil-cli", ""
    families = caps.tcg.families if caps.tcg is not None else ()
    if not any(f in KERNEL_OPAL_FAMILIES for f in families):
        kinds = ", ".join(families) or "not an Opal drive"
        return None, (
            f"a PSID revert of this drive ({kinds}) needs sedutil-cli, which is not installed (Debian 12 "
            "does not package it): the Linux kernel's Opal support reverts Opal 1 and Opal 2 drives only"
        )
    missing = missing_tool(caps, STATION_OPAL_TOOL)
    return (None, missing) if missing else (STATION_OPAL_TOOL, "")


@dataclass(frozen=True)
class Situation:
    """What the rules look at: the drive, what it can do, what the operator allows, what to erase."""

    drive: DriveInfo
    caps: Capabilities
    options: PlanOptions
    size: int  # bytes to erase: the native size once hidden areas are removed
    ata_reason: str | None  # why ATA commands cannot reach the drive (None: they can)

    @property
    def dev(self) -> str:
        return self.drive.path

    @property
    def flash(self) -> bool:
        return self.caps.flash

    def missing(self, tool: str) -> str | None:
        """Why ``tool`` cannot run (not installed), or None."""
        return missing_tool(self.caps, tool)

    def overwrite_seconds(self) -> float:
        """How long the drive itself takes to overwrite everything (sanitize overwrite, block erase)."""
        return self.size / overwrite_rate("ssd" if self.flash else "hdd")


@dataclass(frozen=True)
class Candidate:
    """A method considered for a drive: possible (``reason`` None, with its step) or not."""

    action: str
    label: str
    level: str
    reason: str | None
    step: PlannedStep | None
    level_reason: str = ""  # why the method reaches only ``level`` on this drive ('' when Purge)


class Rule(Protocol):
    """One firmware method (frozen dataclasses below implement it)."""

    @property
    def action(self) -> str: ...

    @property
    def label(self) -> str: ...

    def impossible(self, s: Situation) -> str | None: ...

    def level(self, s: Situation) -> str: ...

    def step(self, s: Situation) -> PlannedStep: ...


def consider(rule: Rule, s: Situation) -> Candidate:
    reason = rule.impossible(s)
    step = None if reason else rule.step(s)
    why = getattr(rule, "level_reason", None)
    return Candidate(rule.action, rule.label, rule.level(s), reason, step, why(s) if why else "")


def cannot_tell(s: Situation, key: str, fallback: str) -> str:
    """The reason a capability is unknown (from the probe), never shown as "not supported"."""
    reason = s.caps.unknown.get(key, fallback)
    return reason if reason.startswith("cannot tell") else f"cannot tell: {reason}"


# -- any protocol ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PsidRevert:
    """TCG Opal PSID revert: a crypto erase any Opal drive accepts with the PSID from its label.

    Run by sedutil-cli when it is installed, else by the station's ``tabula-opal`` through the Linux
    kernel's Opal ioctl (:mod:`erase.purge.sedopal`; Opal 1 and 2 drives only): see
    :func:`psid_revert_tool`.
    """

    action: str = "opal-psid-revert"
    label: str = "TCG Opal PSID revert (crypto erase)"

    def impossible(self, s: Situation) -> str | None:
        tcg = s.caps.tcg
        if tcg is None or not tcg.opal_or_pyrite:
            families = ", ".join(tcg.families) if tcg is not None else "unknown"
            return f"not a TCG Opal/Pyrite drive ({families}): no PSID revert"
        if s.options.psid is None:
            return "needs the PSID printed on the drive label, typed by the operator (--psid)"
        wrong = psid_problem(s.options.psid)
        if wrong is not None:
            return f"refused: {wrong}"
        tool, why = psid_revert_tool(s.caps)
        return why if tool is None else None

    def level(self, s: Situation) -> str:
        return "purge"

    def step(self, s: Situation) -> PlannedStep:
        tool, _ = psid_revert_tool(s.caps)
        argv = (
            ("sedutil-cli", "--PSIDrevert", PSID, s.dev)
            if tool == "sedutil-cli"
            else (STATION_OPAL_TOOL, "psid-revert", s.dev, PSID)
        )
        return PlannedStep(
            self.action, self.label, "purge", 30.0, argv, argv[0], "changed", {"psid": s.options.psid}
        )


@dataclass(frozen=True)
class NoFirmware:
    """Drives with no firmware sanitize command Tabula knows (MMC, virtio...): overwrite only."""

    action: str = "firmware"
    label: str = "firmware sanitize command"

    def impossible(self, s: Situation) -> str | None:
        return f"no firmware sanitize command for {s.drive.transport} drives"

    def level(self, s: Situation) -> str:
        return "purge"

    def step(self, s: Situation) -> PlannedStep:
        raise AssertionError("never possible")


# -- ATA (SATA, or a USB bridge that passes ATA commands) ------------------------------------------


@dataclass(frozen=True)
class AtaSanitize:
    """ATA SANITIZE: crypto scramble, block erase (flash only), overwrite."""

    action: str
    label: str
    option: str
    evidence: str
    magnetic_ok: bool
    supported: Callable[[AtaIdentify], bool]

    def impossible(self, s: Situation) -> str | None:
        ata = s.caps.ata
        if s.ata_reason:
            return s.ata_reason
        if ata is None:
            return cannot_tell(s, "ata", "the drive's ATA IDENTIFY could not be read")
        if not self.supported(ata):
            if not ata.sanitize:
                return "not supported by the drive (no SANITIZE feature set)"
            return "this SANITIZE sub-command is not supported"
        if not s.flash and not self.magnetic_ok:
            return "block erase applies to flash media only"
        return s.missing("hdparm")

    def level(self, s: Situation) -> str:
        return "purge"

    def step(self, s: Situation) -> PlannedStep:
        argv: tuple[str, ...] = ("hdparm", YES, self.option, s.dev)
        if self.option == "--sanitize-overwrite":
            argv = ("hdparm", YES, self.option, "hex:00000000", s.dev)
        seconds = 30.0 if self.option == "--sanitize-crypto-scramble" else s.overwrite_seconds()
        return PlannedStep(self.action, self.label, "purge", round(seconds, 1), argv, "hdparm", self.evidence)


@dataclass(frozen=True)
class AtaSecureErase:
    """ATA SECURITY ERASE UNIT: Purge on magnetic media, only Clear on flash (the drive decides)."""

    action: str
    label: str
    enhanced: bool

    def impossible(self, s: Situation) -> str | None:
        sec = s.caps.ata.security if s.caps.ata is not None else None
        if s.ata_reason:
            return s.ata_reason
        if "ata_security" in s.caps.unknown:
            return cannot_tell(s, "ata_security", "")
        if sec is None or not sec.supported:
            return "the Security feature set is not supported"
        return _security_refusal(sec, self.enhanced, s) or s.missing("hdparm")

    def level(self, s: Situation) -> str:
        # NIST SP 800-88 Rev. 1 (standards notes): the HDD Purge is the ENHANCED erase (it also
        # overwrites reallocated sectors); a normal erase may leave them: Clear.  On flash, and on
        # media that cannot be told apart from flash, the drive decides what it erases: Clear.
        magnetic = not s.flash and s.caps.media_known
        return "purge" if self.enhanced and magnetic else "clear"

    def level_reason(self, s: Situation) -> str:
        if self.level(s) == "purge":
            return ""
        if not s.caps.media_known:
            return "the drive does not report its rotation rate: counted as flash, where the drive decides what it erases"
        if s.flash:
            why = "on flash the drive decides what it erases (remapped blocks may survive)"
            ata = s.caps.ata
            if ata is not None and ata.encrypts_all:
                why += (
                    "; the drive encrypts all user data, but ATA does not require SECURITY ERASE UNIT to "
                    "change its key: NIST SP 800-88 counts it as a crypto erase only when the vendor says so"
                )
            return why
        return "a normal (not enhanced) erase may leave reallocated sectors: NIST SP 800-88 Purge on disks is the enhanced erase"

    def step(self, s: Situation) -> PlannedStep:
        sec = s.caps.ata.security if s.caps.ata is not None else AtaSecurity()
        minutes = sec.enhanced_minutes if self.enhanced else sec.erase_minutes
        # The drive's own estimate when it gives one, else a slow drive's rate (an erase runs inside
        # the drive: its speed is the media's, at worst an old PATA disk's).
        seconds = minutes * 60.0 if minutes else s.size / ATA_ERASE_SLOWEST_RATE
        flag = "--security-erase-enhanced" if self.enhanced else "--security-erase"
        return PlannedStep(
            self.action,
            self.label,
            self.level(s),
            round(seconds, 1),
            ("hdparm", "--user-master", "u", flag, PASSWORD, s.dev),
            "hdparm",
            "changed" if self.enhanced else "zeros-or-ones",
            {
                # Generous: a timeout must never leave the drive with the temporary password while
                # it is still erasing.  Twice the estimate plus half an hour, at least 2 hours
                # (a WD2500JB giving no estimate took 90 min for 250 GB); the step then polls.
                "timeout": max(7200.0, seconds * 2 + 1800),
                "estimated_by_drive": bool(minutes),
                # Frozen, yet possible: the operator allowed a suspend/resume cycle first.
                "needs_unfreeze": sec.frozen,
                # A password already set is most often Tabula's own, left by an erase cut short:
                # the plan first clears it with TEMP_PASSWORD (a step the technician sees).
                # Another password makes that step fail, and the drive stays as it was.
                "recover_password": sec.enabled or sec.locked,
                "locked": sec.locked,
            },
        )


def _security_refusal(sec: AtaSecurity, enhanced: bool, s: Situation) -> str | None:
    if enhanced and not sec.enhanced_supported:
        return "enhanced erase is not supported"
    if sec.count_expired:
        return "the security attempt counter expired: power-cycle the drive"
    if sec.frozen:
        if s.options.unfreeze_suspend:
            return s.missing("rtcwake")
        return "frozen by the BIOS (add --unfreeze-suspend to try a suspend/resume cycle)"
    return None


ATA_RULES: tuple[Rule, ...] = (
    AtaSanitize(
        "ata-sanitize-crypto",
        "ATA SANITIZE crypto scramble",
        "--sanitize-crypto-scramble",
        "changed",
        True,
        lambda ata: ata.sanitize_crypto,
    ),
    AtaSanitize(
        "ata-sanitize-block",
        "ATA SANITIZE block erase",
        "--sanitize-block-erase",
        "zeros-or-ones",
        False,
        lambda ata: ata.sanitize_block,
    ),
    AtaSanitize(
        "ata-sanitize-overwrite",
        "ATA SANITIZE overwrite (zeros)",
        "--sanitize-overwrite",
        "zeros",
        True,
        lambda ata: ata.sanitize_overwrite,
    ),
    AtaSecureErase("ata-secure-erase-enhanced", "ATA SECURITY ERASE UNIT (enhanced)", enhanced=True),
    AtaSecureErase("ata-secure-erase", "ATA SECURITY ERASE UNIT", enhanced=False),
)


# -- NVMe ------------------------------------------------------------------------------------------


def _nvme_controller(s: Situation) -> str:
    return s.caps.nvme_ctrl_dev or nvme_controller_of(s.dev)


def _nvme_wrong_controller(s: Situation) -> str | None:
    """The controller must be this drive's: its serial is compared, never its name trusted."""
    ctrl = s.caps.nvme_ctrl
    return nvme_serial_mismatch(s.drive.serial, ctrl) if ctrl is not None else None


def _nvme_other_namespaces(s: Situation) -> str | None:
    """Why erasing the whole controller would reach more than this drive (None: one namespace)."""
    count = s.caps.nvme_namespaces
    if count == 1:
        return None
    if count is None:
        return "the namespaces on this controller cannot be counted: other namespaces would be erased too"
    return f"other namespaces on this controller would be erased too ({count} namespaces)"


def _nvme_params(s: Situation, seconds: float) -> dict[str, object]:
    return {
        "timeout": max(300.0, seconds * 3),
        "controller": _nvme_controller(s),
        "serial": (s.drive.serial or "").strip(),
    }


def _nvme_deallocated_evidence(s: Situation) -> str:
    """What a block erase or a Format leaves: what the namespace says deallocated blocks read as."""
    ns = s.caps.nvme_ns
    return (ns.deallocated_reads if ns is not None else None) or "changed"


@dataclass(frozen=True)
class NvmeSanitize:
    """NVMe Sanitize (always the whole NVM subsystem): crypto erase, block erase, overwrite."""

    action: str
    label: str
    sanact: str
    supported: Callable[[Capabilities], bool]
    estimate: Callable[[Capabilities], int | None]  # the drive's own estimate (sanitize log)
    evidence: Callable[[Situation], str]

    def impossible(self, s: Situation) -> str | None:
        if s.caps.nvme_ctrl is None:
            return cannot_tell(s, "nvme_ctrl", "the controller could not be identified")
        if not self.supported(s.caps):
            return "not supported by the controller (SANICAP)"
        return _nvme_wrong_controller(s) or _nvme_other_namespaces(s) or s.missing("nvme")

    def level(self, s: Situation) -> str:
        return "purge"

    def step(self, s: Situation) -> PlannedStep:
        own = self.estimate(s.caps)
        seconds = (
            float(own) if own else (30.0 if self.sanact == "4" else 60.0 + s.size / overwrite_rate("nvme"))
        )
        argv = ("nvme", "sanitize", _nvme_controller(s), "-a", self.sanact)
        return PlannedStep(
            self.action,
            self.label,
            "purge",
            seconds,
            argv,
            "nvme",
            self.evidence(s),
            _nvme_params(s, seconds),
        )


@dataclass(frozen=True)
class NvmeFormat:
    """NVMe Format with Secure Erase Settings 2 (crypto erase) or 1 (user data erase)."""

    action: str
    label: str
    ses: str
    seconds: Callable[[int], float]
    evidence: Callable[[Situation], str]

    def impossible(self, s: Situation) -> str | None:
        ctrl = s.caps.nvme_ctrl
        if ctrl is None:
            return cannot_tell(s, "nvme_ctrl", "the controller could not be identified")
        if not ctrl.format_supported:
            return "Format NVM is not supported (OACS)"
        if self.ses == "2" and not ctrl.format_crypto:
            return "cryptographic erase is not supported by Format (FNA)"
        wrong = _nvme_wrong_controller(s)
        if wrong:
            return wrong
        if ctrl.format_all_namespaces:  # FNA: Format applies to every namespace of the controller
            return _nvme_other_namespaces(s) or s.missing("nvme")
        return s.missing("nvme")

    def level(self, s: Situation) -> str:
        return "purge"

    def step(self, s: Situation) -> PlannedStep:
        seconds = self.seconds(s.size)
        argv = ("nvme", "format", s.dev, f"--ses={self.ses}", "--force")
        return PlannedStep(
            self.action,
            self.label,
            "purge",
            round(seconds, 1),
            argv,
            "nvme",
            self.evidence(s),
            _nvme_params(s, seconds),
        )


NVME_RULES: tuple[Rule, ...] = (
    NvmeSanitize(
        "nvme-sanitize-crypto",
        "NVMe Sanitize crypto erase",
        "4",
        lambda c: c.nvme_ctrl is not None and c.nvme_ctrl.sanitize_crypto,
        lambda c: c.nvme_sanitize.est_crypto if c.nvme_sanitize else None,
        lambda s: "changed",
    ),
    NvmeSanitize(
        "nvme-sanitize-block",
        "NVMe Sanitize block erase",
        "2",
        lambda c: c.nvme_ctrl is not None and c.nvme_ctrl.sanitize_block,
        lambda c: c.nvme_sanitize.est_block if c.nvme_sanitize else None,
        _nvme_deallocated_evidence,
    ),
    NvmeSanitize(
        "nvme-sanitize-overwrite",
        "NVMe Sanitize overwrite (zeros)",
        "3",
        lambda c: c.nvme_ctrl is not None and c.nvme_ctrl.sanitize_overwrite,
        lambda c: c.nvme_sanitize.est_overwrite if c.nvme_sanitize else None,
        lambda s: "zeros",
    ),
    NvmeFormat(
        "nvme-format-crypto",
        "NVMe Format, Secure Erase Settings 2 (crypto erase)",
        "2",
        lambda size: 10.0,
        lambda s: "changed",
    ),
    NvmeFormat(
        "nvme-format-erase",
        "NVMe Format, Secure Erase Settings 1 (user data erase)",
        "1",
        lambda size: 30.0 + size / 2e9,
        _nvme_deallocated_evidence,
    ),
)


# -- SCSI / SAS ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScsiSanitize:
    """SCSI SANITIZE: cryptographic erase, block erase (flash only), overwrite."""

    action: str
    label: str
    option: str
    evidence: str
    magnetic_ok: bool
    supported: Callable[[Capabilities], bool]

    def impossible(self, s: Situation) -> str | None:
        scsi = s.caps.scsi
        if scsi is None or not scsi.reported:
            return "cannot tell: the drive does not report SANITIZE support (REPORT SUPPORTED OPERATION CODES failed)"
        if not self.supported(s.caps):
            return "not supported by the drive"
        if not s.flash and not self.magnetic_ok:
            return "block erase applies to flash media only"
        return s.missing("sg_sanitize") or s.missing("sg_requests")

    def level(self, s: Situation) -> str:
        return "purge"

    def step(self, s: Situation) -> PlannedStep:
        argv: tuple[str, ...] = ("sg_sanitize", "--quick", "--immed", self.option, s.dev)
        if self.option == "--overwrite":
            argv = ("sg_sanitize", "--quick", "--immed", "--overwrite", "--zero", s.dev)
        seconds = 30.0 if self.option == "--crypto" else 60.0 + s.size / overwrite_rate("hdd")
        params = {"timeout": max(600.0, seconds * 3)}
        return PlannedStep(
            self.action, self.label, "purge", round(seconds, 1), argv, "sg_sanitize", self.evidence, params
        )


SCSI_RULES: tuple[Rule, ...] = (
    ScsiSanitize(
        "scsi-sanitize-crypto",
        "SCSI SANITIZE cryptographic erase",
        "--crypto",
        "changed",
        True,
        lambda c: c.scsi is not None and c.scsi.sanitize_crypto,
    ),
    ScsiSanitize(
        "scsi-sanitize-block",
        "SCSI SANITIZE block erase",
        "--block",
        "zeros-or-ones",
        False,
        lambda c: c.scsi is not None and c.scsi.sanitize_block,
    ),
    ScsiSanitize(
        "scsi-sanitize-overwrite",
        "SCSI SANITIZE overwrite (zeros)",
        "--overwrite",
        "zeros",
        True,
        lambda c: c.scsi is not None and c.scsi.sanitize_overwrite,
    ),
)


# -- eMMC (JEDEC JESD84: SANITIZE from eMMC 4.5; secure erase / trim, obsolete since 4.51) ----------


def _emmc_unknown(s: Situation) -> str | None:
    if s.caps.emmc is None:
        return cannot_tell(s, "emmc", "the Extended CSD could not be read")
    return None


@dataclass(frozen=True)
class EmmcSanitize:
    """Discard every block, then SANITIZE: the device physically erases every unmapped block.

    Purge by the same reasoning as ATA SANITIZE BLOCK ERASE on flash (NIST SP 800-88 Rev. 1 names
    the drive's sanitize commands as flash Purge; the eMMC case is not spelled out there, see
    README): nothing the host wrote stays mapped, and SANITIZE removes the unmapped copies.
    """

    action: str = "emmc-sanitize"
    label: str = "eMMC SANITIZE (after discarding every block)"

    def impossible(self, s: Situation) -> str | None:
        emmc = s.caps.emmc
        if emmc is None:
            return _emmc_unknown(s)
        if emmc.rev < 6:
            return f"SANITIZE needs eMMC 4.5 or later (this is eMMC {emmc.version})"
        if not emmc.sanitize:
            return "SANITIZE is not supported (SEC_FEATURE_SUPPORT bit 6 clear)"
        return s.missing("blkdiscard") or s.missing("mmc")

    def level(self, s: Situation) -> str:
        return "purge"

    def step(self, s: Situation) -> PlannedStep:
        emmc = s.caps.emmc
        assert emmc is not None
        seconds = 60.0 + s.size / overwrite_rate("mmc")  # the device erases every block
        return PlannedStep(
            self.action,
            self.label,
            "purge",
            round(seconds, 1),
            ("mmc", "sanitize", s.dev),
            "mmc",
            emmc.erased_reads,
            {"unmap_argv": ["blkdiscard", s.dev], "timeout": max(1800.0, seconds * 4)},
        )


@dataclass(frozen=True)
class EmmcSecure:
    """eMMC secure erase / secure trim (``blkdiscard --secure``): obsolete since eMMC 4.51."""

    action: str
    label: str
    supported: Callable[[EmmcExtCsd], bool]

    def impossible(self, s: Situation) -> str | None:
        emmc = s.caps.emmc
        if emmc is None:
            return _emmc_unknown(s)
        if not self.supported(emmc):
            return "not supported (SEC_FEATURE_SUPPORT)"
        return s.missing("blkdiscard")

    def level(self, s: Situation) -> str:
        return "clear"

    def level_reason(self, s: Situation) -> str:
        return "JEDEC replaced secure erase and trim by SANITIZE in eMMC 4.51: counted as Clear, like an overwrite"

    def step(self, s: Situation) -> PlannedStep:
        return PlannedStep(
            self.action, self.label, "clear", 60.0, ("blkdiscard", "--secure", s.dev), "blkdiscard", "changed"
        )


EMMC_RULES: tuple[Rule, ...] = (
    EmmcSanitize(),
    EmmcSecure("emmc-secure-erase", "eMMC secure erase", lambda e: e.secure_erase),
    EmmcSecure("emmc-secure-trim", "eMMC secure trim", lambda e: e.secure_trim),
)


#: The firmware methods of each protocol, in order of preference.
RULES: dict[str, tuple[Rule, ...]] = {
    "ata": (PsidRevert(), *ATA_RULES),
    "usb": (PsidRevert(), *ATA_RULES),
    "nvme": (PsidRevert(), *NVME_RULES),
    "scsi": (PsidRevert(), *SCSI_RULES),
    "mmc": EMMC_RULES,
}
OTHER_RULES: tuple[Rule, ...] = (NoFirmware(),)


def _applies(rule: Rule, s: Situation) -> bool:
    """A PSID revert is only considered on a TCG drive (Level 0 discovery found one): loops,
    virtual disks and drives nobody could check do not list it."""
    if isinstance(rule, PsidRevert):
        return s.caps.tcg is not None and bool(s.caps.tcg.families)
    return True


def candidates(s: Situation) -> list[Candidate]:
    """Every firmware method of the drive's protocol, considered in order of preference."""
    return [consider(rule, s) for rule in RULES.get(s.caps.protocol, OTHER_RULES) if _applies(rule, s)]
