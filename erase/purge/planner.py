"""The NIST SP 800-88 planner: drive + capabilities + policy -> ordered steps.  Pure: no I/O.

Levels depend on the media (NIST SP 800-88 Rev. 1, appendix A, and this project's rules):

* overwrite through the host interface reaches **Clear**, on any media (on flash, spare blocks are
  not addressable, so never Purge);
* ATA SANITIZE (crypto scramble, block erase on flash, overwrite), NVMe Sanitize, NVMe Format with
  Secure Erase Settings 1 or 2, SCSI SANITIZE, eMMC SANITIZE after a discard of every block, and a
  TCG Opal/Pyrite PSID revert (sedutil-cli, or the Linux kernel's own Opal ioctl for Opal 1 and 2
  drives: :mod:`erase.purge.sedopal`) reach **Purge**;
* ATA SECURITY ERASE UNIT reaches Purge only in its *enhanced* form on magnetic media (a normal
  erase may leave reallocated sectors), and only **Clear** on flash, or on a drive that does not say
  whether it is flash (the drive decides what it erases; remapped flash blocks may survive).

A password set on the drive (ATA security enabled or locked) is cleared first, whatever the method,
or the plan is refused when it cannot be; a locked TCG drive is refused unless its PSID is typed.

Every candidate that cannot be used is kept with the reason (frozen, locked, unsupported, behind a
USB bridge, tool missing...), so the operator sees why the plan is what it is.  Hidden areas (HPA,
AMA, DCO) are removed first; when they cannot be, the plan is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from erase.purge.errors import UnknownPolicy
from erase.purge.plan import (
    LEVEL_RANK,
    PASSWORD,
    POLICIES,
    PSID,
    TEMP_PASSWORD,
    Alternative,
    PlannedStep,
    PlanOptions,
    PurgePlan,
    PurgeRefused,
)
from erase.purge.probe import Capabilities
from erase.purge.rules import Candidate, Situation, candidates, missing_tool, psid_revert_tool
from erase.rates import overwrite_rate
from host.identity import DriveInfo

# The plan's parts are defined in erase.purge.plan; they are planned here, so importers find them here.
__all__ = [
    "LEVEL_RANK",
    "PASSWORD",
    "POLICIES",
    "PSID",
    "TEMP_PASSWORD",
    "Alternative",
    "PlanOptions",
    "PlannedStep",
    "PurgePlan",
    "PurgeRefused",
    "plan_purge",
]

#: Media whose overwrite rate is known; other drives are estimated as an SSD or a hard disk.
_RATED_MEDIA = ("hdd", "ssd", "nvme", "usb", "mmc")


def plan_purge(
    drive: DriveInfo, caps: Capabilities, policy: str, options: PlanOptions | None = None
) -> PurgePlan:
    """The ordered plan for ``policy`` on this drive.  Raises :class:`PurgeRefused` when unsafe."""
    if policy not in POLICIES:
        raise UnknownPolicy(f"unknown policy {policy!r}")
    opts = options or PlanOptions()
    requested = "purge" if policy == "nist-purge" else "clear"
    ata_reason = _ata_reachable(caps, opts)
    steps, native_bytes = _hidden_area_steps(drive, caps, ata_reason)
    chosen = _Choice()
    if requested == "purge":
        chosen = _choose(candidates(Situation(drive, caps, opts, native_bytes, ata_reason)), opts, drive.path)
    steps[:0] = _password_steps(drive, caps, opts, ata_reason, chosen)
    steps.extend(chosen.steps)
    overwrite = not chosen.steps
    media = drive.media_type if drive.media_type in _RATED_MEDIA else ("ssd" if caps.flash else "hdd")
    overwrite_estimate = (
        native_bytes * (opts.overwrite_passes + 1) / overwrite_rate(media) if overwrite else 0.0
    )
    expected = "clear" if overwrite else "purge"
    _refuse_locked(drive, caps, chosen)
    return PurgePlan(
        policy=policy,
        level_requested=requested,
        level_expected=expected,
        level_note=_level_note(expected, requested, chosen.alternatives, caps),
        steps=tuple(steps),
        overwrite=overwrite,
        alternatives=tuple(chosen.alternatives),
        accessible_bytes=drive.size_bytes,
        native_bytes=native_bytes,
        flash=caps.flash,
        protocol=caps.protocol,
        overwrite_estimate_seconds=round(overwrite_estimate, 1),
        capabilities=caps.to_dict(),
        warnings=_warnings(caps, steps),
    )


# Why a locked drive whose password attempt counter expired cannot be unlocked now.
EXPIRED_UNLOCK = "its password attempt counter expired: it refuses SECURITY UNLOCK until it is power-cycled"


def _password_steps(
    drive: DriveInfo, caps: Capabilities, opts: PlanOptions, ata_reason: str | None, chosen: _Choice
) -> list[PlannedStep]:
    """A password set on the drive (ATA security enabled or locked) is cleared before anything else,
    whatever the method: a drive left with it is locked at its next power-on, and a locked drive
    cannot be written.  The step tries Tabula's own temporary password (left by an interrupted
    erase); an owner's password makes it fail, and the job stops before writing anything."""
    sec = caps.ata.security if caps.ata is not None else None
    if sec is None or not (sec.enabled or sec.locked):
        return []
    if any(s.action == "ata-password-recover" for s in chosen.steps):
        return []
    unfreeze = sec.frozen and opts.unfreeze_suspend and missing_tool(caps, "rtcwake") is None
    why_not = _why_password_stays(caps, ata_reason, frozen=sec.frozen and not unfreeze)
    if why_not is None:
        first = [_unfreeze_step(opts)] if unfreeze else []
        return [*first, _recover_password_step(drive.path, locked=sec.locked)]
    if sec.locked:
        way_out = "power-cycle it" if why_not == EXPIRED_UNLOCK else "connect it directly to a SATA port"
        raise PurgeRefused(
            f"{drive.path}: ATA security is LOCKED (a password is set) and cannot be cleared here: {why_not}",
            hint=f"{way_out}, unlock it with its password "
            "(hdparm --user-master u --security-unlock PASSWORD DEV), then plan again",
        )
    return []


def _level_note(expected: str, requested: str, alternatives: list[Alternative], caps: Capabilities) -> str:
    """Why the plan reaches less than requested ('' when it does not)."""
    if LEVEL_RANK[expected] >= LEVEL_RANK[requested]:
        return ""
    why = "; ".join(dict.fromkeys(a.reason for a in alternatives)) or "no firmware sanitize command"
    media = "flash" if caps.flash else "magnetic"
    if not caps.media_known:
        media = "unknown (counted as flash)"
    return f"Purge is not possible on this drive ({why}); overwrite ({media} media) reaches Clear only"


def _psid_route(caps: Capabilities) -> str:
    """How a PSID revert can be had here: with --psid when sedutil-cli or the kernel's Opal support
    (``tabula-opal``) can run it, else on another machine (a Pyrite drive, with no sedutil-cli)."""
    tool, why = psid_revert_tool(caps)
    if tool is not None:
        return "type the PSID printed on its label with --psid and --policy nist-purge"
    return f"{why}: revert it with the PSID printed on its label on a machine that has sedutil-cli or the vendor's tool"


def _refuse_locked(drive: DriveInfo, caps: Capabilities, chosen: _Choice) -> None:
    """A TCG drive whose locking range is locked cannot be written: only a PSID revert erases it."""
    tcg = caps.tcg
    if tcg is None or not tcg.locked or any(s.action == "opal-psid-revert" for s in chosen.steps):
        return
    raise PurgeRefused(
        f"{drive.path}: the drive is LOCKED ({tcg.describe}): it cannot be read or written until it is "
        "unlocked or reverted",
        hint=f"{_psid_route(caps)} (a PSID revert erases everything: crypto erase, Purge), or unlock it "
        "with its owner's password first",
    )


def _why_password_stays(caps: Capabilities, ata_reason: str | None, *, frozen: bool) -> str | None:
    """Why the plan cannot clear an ATA password (None: it can)."""
    if frozen:
        return ata_reason or "frozen by the BIOS (add --unfreeze-suspend)"
    sec = caps.ata.security if caps.ata is not None else None
    if ata_reason is None and sec is not None and sec.locked and sec.count_expired:
        # ATA: once the password attempt counter reaches zero the drive aborts SECURITY UNLOCK until
        # a power-on or hardware reset (a real Crucial m4 in the corpus was left so by its owner).
        return EXPIRED_UNLOCK
    return ata_reason or missing_tool(caps, "hdparm")


def _warnings(caps: Capabilities, steps: list[PlannedStep]) -> tuple[str, ...]:
    """What the technician must know before confirming, and act on when the plan cannot."""
    out: list[str] = []
    sec = caps.ata.security if caps.ata is not None else None
    if sec is not None and (sec.enabled or sec.locked):
        state = "LOCKED" if sec.locked else "enabled: the drive locks itself at its next power-on"
        if any(s.action == "ata-password-recover" for s in steps):
            out.append(
                f"ATA security is {state} (a password is set): Tabula first tries its own temporary "
                "password, left by an interrupted erase; if the password is the owner's, the job stops "
                "before writing anything"
            )
        else:
            out.append(
                f"ATA security is {state} (a password is set) and this plan cannot clear it: erasing "
                "does not remove it, and the next user cannot use the drive without it. Remove it with "
                "its password (hdparm --user-master u --security-disable PASSWORD DEV; Tabula's own, "
                "left by an interrupted erase, is 'tabula')"
            )
    tcg = caps.tcg
    reverted = any(s.action == "opal-psid-revert" for s in steps)
    if tcg is not None and tcg.locking_enabled and not tcg.locked and not reverted:
        route = "--psid, with --policy nist-purge" if psid_revert_tool(caps)[0] else "with sedutil-cli"
        out.append(
            f"TCG locking is enabled: the drive locks itself at its next power-on; a PSID revert ({route}) "
            "erases it and returns it to factory state"
        )
    return tuple(out)


def _hidden_area_steps(
    drive: DriveInfo, caps: Capabilities, ata_reason: str | None
) -> tuple[list[PlannedStep], int]:
    """The steps that restore the native size first (DCO, then HPA/AMA), and the native size in bytes.

    Raises :class:`PurgeRefused` when a hidden area cannot be removed: erasing only what the drive
    shows would leave the hidden sectors as they are.
    """
    if caps.hpa is None or caps.hidden_sectors <= 0:
        return [], drive.size_bytes
    dev = drive.path
    native = caps.hpa.native
    hidden_reason = ata_reason or missing_tool(caps, "hdparm")
    steps: list[PlannedStep] = []
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
    return steps, native * drive.logical_sector_size


@dataclass
class _Choice:
    steps: list[PlannedStep] = field(default_factory=list)  # the chosen method, after its preparations
    alternatives: list[Alternative] = field(default_factory=list)


def _choose(found: list[Candidate], opts: PlanOptions, dev: str) -> _Choice:
    """The first possible method that purges (with the steps it needs first); every other one is an
    alternative with the reason it is not used."""
    choice = _Choice()
    for c in found:
        if c.reason is None and c.step is not None and c.level == "purge" and not choice.steps:
            if c.step.params.get("needs_unfreeze"):
                choice.steps.append(_unfreeze_step(opts))
            if c.step.params.get("recover_password"):
                choice.steps.append(_recover_password_step(dev, locked=bool(c.step.params.get("locked"))))
            choice.steps.append(c.step)
            continue
        if c.reason is not None:
            reason = c.reason
        elif c.level != "purge":
            reason = f"reaches only {c.level.capitalize()} on this drive" + (
                f": {c.level_reason}" if c.level_reason else ""
            )
        else:
            reason = "not needed: an earlier step purges"
        choice.alternatives.append(Alternative(c.action, c.label, c.level, reason))
    return choice


def _ata_reachable(caps: Capabilities, opts: PlanOptions) -> str | None:
    """Why ATA commands cannot reach the drive (None: direct SATA, or a USB bridge explicitly allowed)."""
    if caps.protocol == "ata":
        if caps.ata is None:
            return f"cannot tell: {caps.unknown.get('ata', 'the ATA IDENTIFY could not be read')}"
        if not caps.ata.valid:
            return "the drive's ATA IDENTIFY could not be read"
        return None
    if caps.protocol == "usb":
        if not caps.usb_bridge_sat:
            return "behind a USB bridge that does not pass ATA commands through"
        if not opts.allow_usb_ata:
            return "behind a USB bridge: ATA commands are refused unless --allow-usb-ata"
        return None
    return f"not an ATA drive ({caps.protocol})"


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
