"""Running firmware steps, each followed by its evidence.  An exit code alone never counts.

Every step returns a :class:`~erase.record.FirmwareStepRecord`: the commands run (passwords
redacted), what the drive reported afterwards (security state, HPA, sanitize log SSTAT, sense data)
and the data read back (:mod:`erase.purge.evidence`).  The step's level is reached only when the
command completed, the drive's own status confirms it, and the data check passed; otherwise the
record says ``none`` and why, and the worker fails the job.

Mutating commands are run with ``mutating=True`` so a dry-run runner refuses them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from erase.errors import EraseError
from erase.journal import utcnow
from erase.purge.errors import UnrecognisedOutput
from erase.purge.evidence import DataCheck, check_changed, check_pattern, hash_samples
from erase.purge.machine import Machine
from erase.purge.planner import PASSWORD, PSID, PlannedStep
from erase.purge.probe import (
    STATION_OPAL_TOOL,
    AtaSecurity,
    aborted_command,
    nvme_serial_mismatch,
    parse_hdparm_identify,
    parse_hdparm_n,
    parse_hdparm_sanitize_status,
    parse_nvme_id_ctrl,
    parse_nvme_id_ns,
    parse_nvme_sanitize_log,
)
from erase.purge.tcg import parse_revert_line
from erase.record import FirmwareStepRecord
from host.errors import CommandError, CommandTimeout
from host.identity import DriveInfo
from host.runner import CommandResult


@dataclass
class StepContext:
    machine: Machine
    drive: DriveInfo
    seed: bytes  # job seed: each step's sampling seed derives from it
    sleep: Callable[[float], None] = time.sleep
    poll_interval: float = 5.0
    on_note: Callable[[str], None] | None = None


class _StepRun:
    """Collects what one step did."""

    def __init__(self, step: PlannedStep, index: int, ctx: StepContext) -> None:
        self.step = step
        self.index = index
        self.ctx = ctx
        self.started = utcnow()
        self.commands: list[dict[str, Any]] = []
        self.secrets: list[str] = []
        self.status_lines: list[str] = []

    def redact(self, text: str) -> str:
        for s in self.secrets:
            if s:
                text = text.replace(s, "***")
        return text

    def run(self, argv: list[str], *, mutating: bool, timeout: float = 120.0) -> CommandResult:
        result = self.ctx.machine.runner.run(argv, timeout=timeout, mutating=mutating)
        self.commands.append(
            {
                "argv": [self.redact(a) for a in argv],
                "returncode": result.returncode,
                "mutating": mutating,
                "stdout_tail": self.redact(result.stdout.strip()[-600:]),
                "stderr_tail": self.redact(result.stderr.strip()[-600:]),
            }
        )
        return result

    def status(self, line: str) -> None:
        self.status_lines.append(line)
        if self.ctx.on_note is not None:
            self.ctx.on_note(line)

    def finish(
        self, *, completed: bool, status_ok: bool, data: DataCheck | None, note: str = ""
    ) -> FirmwareStepRecord:
        step = self.step
        needs_data = step.level != "none"
        ok = completed and status_ok and (data.passed if data is not None else not needs_data)
        if not ok and not note:
            if not completed:
                note = "the command did not complete"
            elif not status_ok:
                note = "the drive's status does not confirm the step"
            elif data is None:
                note = "no data evidence"
            else:
                note = f"data check failed: {data.detail}"
        return FirmwareStepRecord(
            index=self.index,
            action=step.action,
            label=step.label,
            level_planned=step.level,
            level_achieved=step.level if ok else "none",
            started_at=self.started,
            finished_at=utcnow(),
            completed=completed,
            status_ok=status_ok,
            status="; ".join(self.status_lines) or "-",
            data_check=data.to_dict() if data is not None else None,
            commands=tuple(self.commands),
            tool=step.tool,
            note=note if not ok else "",
        )


def step_seed(seed: bytes, index: int) -> bytes:
    return hashlib.sha256(seed + b"purge-step" + index.to_bytes(4, "big")).digest()[:16]


def _sample_before(step: PlannedStep, data_path: str, seed: bytes) -> list[str | None] | None:
    """The sample a ``changed`` check compares with.  A locked TCG drive refuses reads until its PSID
    revert: for that step only, an unreadable range is kept as None (it must read afterwards)."""
    if step.evidence != "changed":
        return None
    return hash_samples(data_path, seed, unreadable_ok=step.action == "opal-psid-revert")


def run_step(step: PlannedStep, index: int, ctx: StepContext) -> FirmwareStepRecord:
    """Run one planned step and gather its evidence.  Never raises for a drive that fails the step."""
    run = _StepRun(step, index, ctx)
    seed = step_seed(ctx.seed, index)
    data_path = ctx.machine.data_path(ctx.drive) if step.level != "none" else ""
    before = _sample_before(step, data_path, seed)
    try:
        handler = _handler(step.action)
        completed, status_ok, note = handler(step, run)
    except CommandError as exc:
        return run.finish(completed=False, status_ok=False, data=None, note=f"command failed: {exc.message}")
    except UnrecognisedOutput as exc:
        return run.finish(completed=False, status_ok=False, data=None, note=f"cannot tell: {exc.message}")
    data: DataCheck | None = None
    if step.level != "none" and completed and status_ok:
        if step.evidence == "changed":
            assert before is not None
            data = check_changed(data_path, seed, before)
        else:
            data = check_pattern(data_path, seed, step.evidence)
    return run.finish(completed=completed, status_ok=status_ok, data=data, note=note)


Outcome3 = tuple[bool, bool, str]


def _dev(step: PlannedStep) -> str:
    return step.argv[-1]


def _hidden(step: PlannedStep, run: _StepRun) -> Outcome3:
    r = run.run(list(step.argv), mutating=True, timeout=60)
    if r.returncode != 0:
        return True, False, f"{step.argv[0]} exited {r.returncode}: {r.stderr.strip()[:200]}"
    if aborted_command(r.stderr):
        run.status("the drive aborted the command (sense key ABORTED COMMAND), though hdparm exited 0")
    after = run.run(["hdparm", "-N", _dev(step)], mutating=False)
    hpa = parse_hdparm_n(after.stdout)
    want = int(step.params["native_sectors"])
    if hpa is None:
        return True, False, "hdparm -N no longer reports the max address"
    run.status(f"max sectors {hpa.current}/{hpa.native} after the step")
    if hpa.current < want:
        return True, False, f"the native size is still hidden: {hpa.current} of {want} sectors visible"
    run.ctx.machine.rescan(run.ctx.drive)
    return True, True, ""


def _unfreeze(step: PlannedStep, run: _StepRun) -> Outcome3:
    r = run.run(list(step.argv), mutating=True, timeout=float(step.estimate_seconds) + 120)
    if r.returncode != 0:
        return True, False, f"rtcwake exited {r.returncode}: {r.stderr.strip()[:200]}"
    ident = parse_hdparm_identify(run.run(["hdparm", "-I", run.ctx.drive.path], mutating=False).stdout)
    frozen = ident.security.frozen
    run.status("security " + ("still FROZEN" if frozen else "not frozen") + " after suspend/resume")
    return True, not frozen, "the drive is still frozen after a suspend/resume cycle" if frozen else ""


def _ata_password_recover(step: PlannedStep, run: _StepRun) -> Outcome3:
    """Clear Tabula's temporary password that an interrupted SECURITY ERASE UNIT left on the drive."""
    dev = _dev(step)
    password = run.ctx.machine.temp_password()  # fixed and documented: not a secret
    sec = parse_hdparm_identify(run.run(["hdparm", "-I", dev], mutating=False).stdout).security
    if not (sec.enabled or sec.locked):
        run.status("security already disabled: nothing to clear")
        return True, True, ""
    if sec.locked:
        r = run.run(["hdparm", "--user-master", "u", "--security-unlock", password, dev], mutating=True)
        sec = parse_hdparm_identify(run.run(["hdparm", "-I", dev], mutating=False).stdout).security
        if sec.locked:
            run.status(f"SECURITY UNLOCK with Tabula's password refused (hdparm exit {r.returncode})")
            return (
                False,
                False,
                "the drive is locked with a password that is not Tabula's: unlock it with the owner's "
                "user or master password, then erase again",
            )
        run.status("unlocked with Tabula's temporary password")
    argv = [password if a == PASSWORD else a for a in step.argv]
    r = run.run(argv, mutating=True)
    sec = parse_hdparm_identify(run.run(["hdparm", "-I", dev], mutating=False).stdout).security
    if sec.enabled or sec.locked:
        run.status(f"SECURITY DISABLE with Tabula's password refused (hdparm exit {r.returncode})")
        return (
            False,
            False,
            "the drive's password is not Tabula's temporary password: clear it with the owner's user "
            "or master password, then erase again",
        )
    run.status("Tabula's temporary password cleared (security disabled)")
    return True, True, ""


def _ata_secure_erase(step: PlannedStep, run: _StepRun) -> Outcome3:
    dev = _dev(step)
    password = run.ctx.machine.temp_password()  # fixed and documented (planner.TEMP_PASSWORD): not redacted
    argv = [password if a == PASSWORD else a for a in step.argv]
    armed = {"password_set": False}
    try:
        refused = _arm_temp_password(run, dev, password, armed)
        if refused is not None:
            return refused
        return _erase_and_check(run, dev, argv, float(step.params.get("timeout", 7200.0)), armed)
    finally:
        if armed["password_set"]:
            # Any failure after the password was set: clear it, so the drive is never left locked.
            run.run(["hdparm", "--user-master", "u", "--security-disable", password, dev], mutating=True)
            run.status("temporary password cleared (security disable)")


def _arm_temp_password(run: _StepRun, dev: str, password: str, armed: dict[str, bool]) -> Outcome3 | None:
    """Set Tabula's temporary password (SECURITY ERASE UNIT needs one); an outcome when refused."""
    sec = parse_hdparm_identify(run.run(["hdparm", "-I", dev], mutating=False).stdout).security
    if sec.enabled or sec.locked:
        # A resumed job whose erase was cut short: the drive still has Tabula's password (locked
        # after a power cycle).  ERASE UNIT is accepted in that state with the same password.
        armed["password_set"] = True
        run.status("security already enabled (an interrupted erase): erasing with Tabula's password")
        return None
    r = run.run(["hdparm", "--user-master", "u", "--security-set-pass", password, dev], mutating=True)
    sec = parse_hdparm_identify(run.run(["hdparm", "-I", dev], mutating=False).stdout).security
    armed["password_set"] = sec.enabled
    if r.returncode != 0 or not sec.enabled:
        why = "aborted the command" if aborted_command(r.stderr) else "did not enable security"
        run.status(f"SECURITY SET PASSWORD: the drive {why} (hdparm exit {r.returncode})")
        return False, False, "the drive did not accept the temporary password: nothing was erased"
    run.status("temporary password set (security enabled)")
    return None


def _erase_and_check(
    run: _StepRun, dev: str, argv: list[str], timeout: float, armed: dict[str, bool]
) -> Outcome3:
    """SECURITY ERASE UNIT, then the drive's own word: it clears the password when it completes."""
    r = _erase_unit(run, argv, timeout)
    if r is None:  # the erase outlived its timeout: wait for the drive to say it finished
        sec = _wait_security_cleared(run, dev, timeout)
        armed["password_set"] = sec.enabled or sec.locked
        if armed["password_set"]:
            return False, False, _STILL_ERASING
        run.status("SECURITY ERASE UNIT finished after its timeout; security disabled by the drive")
        return True, True, ""
    sec = parse_hdparm_identify(run.run(["hdparm", "-I", dev], mutating=False).stdout).security
    armed["password_set"] = sec.enabled
    if r.returncode != 0 or aborted_command(r.stderr):
        run.status(f"SECURITY ERASE UNIT failed (exit {r.returncode}, aborted={aborted_command(r.stderr)})")
        return False, False, "the drive refused or aborted SECURITY ERASE UNIT"
    if sec.enabled or sec.locked:
        run.status("security still enabled after the erase")
        return True, False, "the drive still has the password after the erase: it did not complete"
    run.status("SECURITY ERASE UNIT completed; security disabled, password cleared by the drive")
    return True, True, ""


_STILL_ERASING = (
    "SECURITY ERASE UNIT did not finish in time: the drive may still be erasing, and keeps Tabula's "
    "documented temporary password until it does. Leave it powered; later, clear it with "
    "'hdparm --user-master u --security-disable tabula DEV' (after --security-unlock if it is locked)"
)


def _erase_unit(run: _StepRun, argv: list[str], timeout: float) -> CommandResult | None:
    """Run SECURITY ERASE UNIT; None when hdparm outlived ``timeout`` (the drive may still erase)."""
    try:
        return run.run(argv, mutating=True, timeout=timeout)
    except CommandTimeout:
        run.status(f"SECURITY ERASE UNIT still running after {timeout / 60:.0f} min: polling the drive")
        return None


def _wait_security_cleared(run: _StepRun, dev: str, grace: float) -> AtaSecurity:
    """Poll ``hdparm -I`` until the drive reports security disabled (it clears the password when the
    erase completes) or ``grace`` seconds pass; a drive busy erasing may not answer at all."""
    last = AtaSecurity(enabled=True)

    def check() -> tuple[bool, str]:
        nonlocal last
        try:
            out = run.run(["hdparm", "-I", dev], mutating=False)
        except CommandError as exc:
            return False, f"the drive does not answer ({exc.message})"
        last = parse_hdparm_identify(out.stdout).security
        done = not (last.enabled or last.locked)
        return done, "security disabled" if done else "security still enabled"

    _, desc = _poll(run, grace, check)
    run.status(f"after the timeout: {desc}")
    return last


def _poll(run: _StepRun, timeout: float, check: Callable[[], tuple[bool, str]]) -> tuple[bool, str]:
    """Call ``check`` (-> (finished, description)) until finished or ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    polls = 0
    while True:
        finished, desc = check()
        polls += 1
        if finished:
            return True, desc
        if time.monotonic() > deadline or polls > 100000:
            return False, desc
        run.ctx.sleep(run.ctx.poll_interval)


def _ata_sanitize(step: PlannedStep, run: _StepRun) -> Outcome3:
    dev = _dev(step)
    r = run.run(list(step.argv), mutating=True, timeout=120)
    if r.returncode != 0 or aborted_command(r.stderr):
        return False, False, f"hdparm exited {r.returncode}: {r.stderr.strip()[:200]}"
    last: dict[str, Any] = {}

    def check() -> tuple[bool, str]:
        st = parse_hdparm_sanitize_status(
            run.run(["hdparm", "--sanitize-status", dev], mutating=False).stdout
        )
        last["st"] = st
        if st is None:
            return True, "no sanitize status"
        busy = "SD2" in st.state or "process" in st.state.lower() or "progress" in st.state.lower()
        return not busy, f"{st.state}" + (f" ({st.progress:.0%})" if st.progress is not None else "")

    finished, desc = _poll(run, float(step.params.get("timeout", 7200.0)), check)
    run.status(f"sanitize status: {desc}")
    st = last.get("st")
    if not finished:
        return False, False, "sanitize did not finish in time"
    if st is None or st.failed or not st.succeeded:
        return True, False, "the drive does not report a sanitize completed without error"
    return True, True, ""


def _nvme_same_drive(step: PlannedStep, run: _StepRun, ctrl_dev: str | None) -> str | None:
    """Right before a mutating NVMe command: is ``ctrl_dev`` still this drive's controller?

    Asks the controller its serial again (the plan may be old, devices renumber on hot-plug) and
    compares it with the drive's.  Returns why not, or None.
    """
    if not ctrl_dev or step.params.get("controller") != ctrl_dev:
        return "refused: the plan does not name this drive's NVMe controller"
    r = run.run(["nvme", "id-ctrl", ctrl_dev, "-o", "json"], mutating=False)
    if r.returncode != 0:
        return f"refused: nvme id-ctrl {ctrl_dev} exited {r.returncode}: {r.stderr.strip()[:200]}"
    ctrl = parse_nvme_id_ctrl(r.stdout)
    serial = run.ctx.drive.serial or str(step.params.get("serial") or "")
    wrong = nvme_serial_mismatch(serial, ctrl)
    if wrong is not None:
        return f"refused: {wrong}"
    if not serial:
        run.status(f"{ctrl_dev}: the drive has no serial to compare with the controller's")
    else:
        run.status(f"{ctrl_dev}: controller serial {ctrl.serial} matches the drive")
    return None


def _nvme(step: PlannedStep, run: _StepRun) -> Outcome3:
    ctrl = step.argv[2]
    wrong = _nvme_same_drive(step, run, ctrl)
    if wrong is not None:
        return False, False, wrong
    # The log describes the *most recent* sanitize: read it first, so a success it already showed
    # is not taken for this command's.
    res = run.run(["nvme", "sanitize-log", ctrl, "-o", "json"], mutating=False)
    try:
        before = parse_nvme_sanitize_log(res.stdout) if res.returncode == 0 else None
    except ValueError:
        before = None
    if before is not None:
        run.status(f"sanitize log before: {before.describe()}")
    r = run.run(list(step.argv), mutating=True, timeout=120)
    if r.returncode != 0:
        return False, False, f"nvme sanitize exited {r.returncode}: {r.stderr.strip()[:200]}"
    last: dict[str, Any] = {"seen_in_progress": False}

    def check() -> tuple[bool, str]:
        res = run.run(["nvme", "sanitize-log", ctrl, "-o", "json"], mutating=False)
        if res.returncode != 0:
            last["log"] = None
            return True, f"sanitize log unreadable: {res.stderr.strip()[:120]}"
        log = parse_nvme_sanitize_log(res.stdout)
        last["log"] = log
        if log is None:
            return True, "sanitize log has no SSTAT"
        if log.in_progress:
            last["seen_in_progress"] = True
        return not log.in_progress, log.describe()

    finished, desc = _poll(run, float(step.params.get("timeout", 3600.0)), check)
    run.status(f"sanitize log: {desc}")
    log = last.get("log")
    if not finished:
        return False, False, "sanitize did not finish in time"
    if log is None or not log.succeeded:
        return True, False, "the sanitize log does not report a successful sanitize"
    # Evidence of a sanitize that covers the data now: a change in the log, an in-progress state seen,
    # or Global Data Erased (nothing written since the last successful sanitize: also true when a
    # resumed job reruns the command after its first run had already succeeded).
    new = (
        before is None
        or not before.succeeded
        or last["seen_in_progress"]
        or log.global_data_erased
        or log.sstat != before.sstat
    )
    if not new:
        return (
            True,
            False,
            "the sanitize log shows no new sanitize: it reported the same successful one before the command",
        )
    return True, True, ""


def _nvme_format(step: PlannedStep, run: _StepRun) -> Outcome3:
    dev = step.argv[2]
    ctrl = step.params.get("controller")
    wrong = _nvme_same_drive(step, run, str(ctrl) if ctrl else None)
    if wrong is not None:
        return False, False, wrong
    before = run.run(["nvme", "id-ns", dev, "-o", "json"], mutating=False)
    r = run.run(list(step.argv), mutating=True, timeout=float(step.params.get("timeout", 600.0)))
    if r.returncode != 0:
        return False, False, f"nvme format exited {r.returncode}: {r.stderr.strip()[:200]}"
    if "success formatting" not in r.stdout.lower():
        return False, False, "nvme format did not report success"
    after = run.run(["nvme", "id-ns", dev, "-o", "json"], mutating=False)
    if after.returncode != 0:
        return True, False, "the namespace cannot be identified after the format"
    ns_after = parse_nvme_id_ns(after.stdout)
    if before.returncode == 0:
        ns_before = parse_nvme_id_ns(before.stdout)
        if ns_after.nsze != ns_before.nsze:
            return True, False, f"namespace size changed ({ns_before.nsze} -> {ns_after.nsze} blocks)"
    run.status(
        f"format completed; namespace {ns_after.nsze} blocks of {ns_after.lba_size} bytes; "
        f"deallocated blocks read as {ns_after.deallocated_reads or 'unspecified (DLFEAT=0)'}"
    )
    run.ctx.machine.rescan(run.ctx.drive)
    return True, True, ""


def _scsi(step: PlannedStep, run: _StepRun) -> Outcome3:
    dev = _dev(step)
    r = run.run(list(step.argv), mutating=True, timeout=120)
    text = (r.stdout + r.stderr).lower()
    if r.returncode != 0 or "did_error" in text or "failed" in text:
        return False, False, f"sg_sanitize exited {r.returncode}: {r.stderr.strip()[:200]}"
    last: dict[str, str] = {}

    def check() -> tuple[bool, str]:
        res = run.run(["sg_requests", "--progress", dev], mutating=False)
        out = (res.stdout + res.stderr).strip()
        last["out"] = out
        if "progress indication" in out.lower():
            return False, out.splitlines()[-1]
        return True, out.splitlines()[-1] if out else "no sense"

    finished, desc = _poll(run, float(step.params.get("timeout", 7200.0)), check)
    run.status(f"sense after sanitize: {desc}")
    if not finished:
        return False, False, "sanitize did not finish in time"
    low = last.get("out", "").lower()
    if any(w in low for w in ("medium error", "hardware error", "sanitize failed", "aborted command")):
        return True, False, "the drive reports the sanitize failed (sense data)"
    return True, True, ""


def _opal(step: PlannedStep, run: _StepRun) -> Outcome3:
    """TCG PSID revert, by sedutil-cli or by ``tabula-opal`` (the kernel's Opal ioctl).  Any
    failure says nothing was erased; a success still needs the data read back to have changed."""
    psid = str(step.params.get("psid", ""))
    if not psid:
        return False, False, "refused: the PSID was not typed by the operator; nothing was erased"
    run.secrets.append(psid)
    argv = [psid if a == PSID else a for a in step.argv]
    try:
        r = run.run(argv, mutating=True, timeout=300)
    except CommandTimeout:
        run.status("PSID revert: no answer after 300 s")
        return False, False, _REVERT_TIMEOUT
    if step.argv[0] == STATION_OPAL_TOOL:
        return _opal_kernel(r, run)
    ok = r.returncode == 0 and "success" in (r.stdout + r.stderr).lower()
    run.status("PSID revert " + ("reported success" if ok else f"failed (exit {r.returncode})"))
    if ok:
        run.ctx.machine.rescan(run.ctx.drive)
        return True, True, ""
    return False, False, "sedutil-cli did not report a successful PSID revert; nothing was erased"


_REVERT_TIMEOUT = (
    "the PSID revert did not answer in time: the drive may or may not have been reverted, nothing is "
    "certified as erased. Power the drive off and on, then plan it again"
)


def _opal_kernel(r: CommandResult, run: _StepRun) -> Outcome3:
    """The result line of ``tabula-opal psid-revert`` (:class:`erase.purge.tcg.RevertResult`); its
    exit code must say the same."""
    result = parse_revert_line(r.stdout)
    if result is None or result.exit_code != r.returncode:
        run.status(f"PSID revert through the kernel: no result line (exit {r.returncode})")
        return (
            False,
            False,
            (
                f"tabula-opal printed no PSID revert result (exit {r.returncode}: "
                f"{run.redact(r.stderr.strip())[:200]}); nothing is certified as erased"
            ),
        )
    run.status(f"PSID revert through the kernel: {result.result} ({result.status})")
    if result.result != "ok":
        sure = result.result in ("wrong-psid", "no-opal", "refused")
        tail = "nothing was erased" if sure else "nothing is certified as erased"
        return False, False, f"{result.explanation}; {tail}"
    run.ctx.machine.rescan(run.ctx.drive)
    return True, True, ""


def _emmc_sanitize(step: PlannedStep, run: _StepRun) -> Outcome3:
    """Discard every block, then SANITIZE (the device erases every unmapped block)."""
    unmap = [str(a) for a in step.params.get("unmap_argv") or []]
    if unmap:
        r = run.run(unmap, mutating=True, timeout=3600)
        if r.returncode != 0:
            return False, False, f"{unmap[0]} exited {r.returncode}: {r.stderr.strip()[:200]}"
        run.status("every block discarded")
    r = run.run(list(step.argv), mutating=True, timeout=float(step.params.get("timeout", 1800.0)))
    if r.returncode != 0:
        return False, False, f"mmc sanitize exited {r.returncode}: {r.stderr.strip()[:200]}"
    run.status("SANITIZE completed (mmc exit 0); the data read back must show erased blocks")
    run.ctx.machine.rescan(run.ctx.drive)
    return True, True, ""


def _emmc_secure(step: PlannedStep, run: _StepRun) -> Outcome3:
    r = run.run(list(step.argv), mutating=True, timeout=3600)
    if r.returncode != 0:
        return False, False, f"blkdiscard exited {r.returncode}: {r.stderr.strip()[:200]}"
    return True, True, ""


_HANDLERS: dict[str, Callable[[PlannedStep, _StepRun], Outcome3]] = {
    "remove-hpa": _hidden,
    "restore-dco": _hidden,
    "unfreeze-suspend": _unfreeze,
    "ata-password-recover": _ata_password_recover,
    "ata-sanitize": _ata_sanitize,
    "ata-secure": _ata_secure_erase,
    "nvme-sanitize": _nvme,
    "nvme-format": _nvme_format,
    "scsi-sanitize": _scsi,
    "opal-psid": _opal,
    "emmc-sanitize": _emmc_sanitize,
    "emmc-secure": _emmc_secure,
}


def _handler(action: str) -> Callable[[PlannedStep, _StepRun], Outcome3]:
    for prefix, handler in _HANDLERS.items():
        if action.startswith(prefix):
            return handler
    raise EraseError(f"no handler for the firmware step {action!r}")


class StepsFailed(EraseError):
    """Raised by the worker when a firmware step has no evidence of success."""


__all__ = ["StepContext", "StepsFailed", "run_step", "step_seed"]
