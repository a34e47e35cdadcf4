"""Firmware steps replayed step by step on machines built from REAL drive outputs (tests/fixtures/real):
status polling, sanitize logs "in progress", the drives' own estimates, timeouts, failures midway.

Each machine is assembled here, in tmp_path, in the layout of tests/fixtures/purge (see its README):
the real recordings are copied as they are; what the corpus does not hold is CONSTRUCTED and said so
in each builder's docstring (the disk listing, the command outputs of the mutating commands, the order
in which the drive's answers come, the effect on the disk image).  Nothing touches a real device.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from erase.purge.machine import ReplayMachine, ScenarioRunner
from erase.purge.plan import PlannedStep
from erase.purge.planner import PlanOptions, plan_purge
from erase.purge.probe import probe
from erase.purge.steps import StepContext, run_step
from erase.record import FirmwareStepRecord
from host.errors import CommandTimeout
from host.runner import CommandResult, fixture_name, read_fixture, write_fixture

HERE = Path(__file__).parent
REAL = HERE / "fixtures" / "real"
MACHINES = HERE / "fixtures" / "machines"
SIZE = 33554432  # the QEMU recordings' disk size: the disk image the steps read back
PATTERN = b"TABULA-REAL-FLOW-" + bytes(range(256))


def _recording(path: Path) -> CommandResult:
    return read_fixture(path)


def _put(directory: Path, argv: Sequence[str], stdout: str, returncode: int = 0, stderr: str = "") -> None:
    write_fixture(directory, CommandResult(tuple(argv), returncode, stdout, stderr))


def _lsblk(directory: Path, qemu_case: str, serial: str) -> None:
    """CONSTRUCTED: the QEMU recording's disk listing with the real drive's (anonymised) serial."""
    r = _recording(MACHINES / qemu_case / "lsblk_-J_-b_-O")
    doc = json.loads(r.stdout)
    doc["blockdevices"][0]["serial"] = serial
    _put(directory, r.argv, json.dumps(doc))


def _image(tmp: Path) -> Path:
    img = tmp / "disk.img"
    img.write_bytes((PATTERN * (SIZE // len(PATTERN) + 1))[:SIZE])
    return img


def _ctx(machine: ReplayMachine) -> StepContext:
    drive = machine.resolve(machine.drives()[0].path, include_loop=False).info
    return StepContext(
        machine=machine, drive=drive, seed=b"real-flows-seed!", sleep=lambda s: None, poll_interval=0
    )


def _plan(machine: ReplayMachine) -> list[PlannedStep]:
    drive = machine.drives()[0]
    return list(
        plan_purge(drive, probe(drive, machine.runner, sysfs=None), "nist-purge", PlanOptions()).steps
    )


# -- NVMe Sanitize: the Crucial P3's identify, the Intel 660p's log stuck "in progress" --------------

P3 = REAL / "nvme-crucial-p3-4tb-write-protected"
STUCK = REAL / "nvme-intel-660p-1tb-sanitize-stuck"
# nvme-cli issue 752 (comment by neitsab, 2020-06-23, as the issue search shows it): the two lines
# of the log after the 660p's sanitize finally completed.  Real, but a fragment (the estimates are
# not shown).
DONE_752 = "    Sanitize Progress                      (SPROG) :  65535\n    Sanitize Status                        (SSTAT) :  0x101\n"
LOG = ["nvme", "sanitize-log", "/dev/nvme0", "-o", "json"]


def _nvme_machine(tmp: Path, polls: list[str]) -> Path:
    """A machine whose NVMe controller is the real Crucial P3 (SANICAP: block erase only) and whose
    sanitize log is real at every step: never sanitized (the P3's own), then "in progress" (the
    Intel 660p's, nvme-cli issue 3027), then, when ``polls`` ends with "done", completed (issue 752).

    CONSTRUCTED: the disk listing and the namespace (QEMU's recording: one namespace, deallocated
    blocks read as zeros), the P3's ``-H`` text answering the probe's ``-o json`` question (the
    parser reads both), the sanitize command's empty success output, the order of the answers
    (``sequences``) and the effect on the image (zeros: what a block erase leaves on this namespace).
    """
    d = tmp / "p3"
    d.mkdir()
    idctrl = _recording(P3 / "nvme_id-ctrl_dev_nvme0_-H")
    serial = re.search(r"^sn\s*:\s*(\S+)", idctrl.stdout, re.M).group(1)  # type: ignore[union-attr]
    _lsblk(d, "qemu-nvme", serial)
    _put(d, ["nvme", "id-ctrl", "/dev/nvme0", "-o", "json"], idctrl.stdout)
    qemu_ns = _recording(MACHINES / "qemu-nvme" / "nvme_id-ns_dev_nvme0n1_-o_json")
    _put(d, qemu_ns.argv, qemu_ns.stdout)
    listing = json.loads(_recording(MACHINES / "qemu-nvme" / "nvme_list_-o_json").stdout)
    for dev in listing["Devices"]:
        dev["SerialNumber"] = serial
    _put(d, ["nvme", "list", "-o", "json"], json.dumps(listing))
    _put(d, LOG, _recording(P3 / "nvme_sanitize-log_dev_nvme0").stdout)
    _put(d, ["nvme", "sanitize", "/dev/nvme0", "-a", "2"], "")
    _put(d / "stuck", LOG, _recording(STUCK / "nvme_sanitize-log_dev_nvme0").stdout)
    _put(d / "done", LOG, DONE_752)
    (d / "after-sanitize").mkdir()
    scenario = {
        "tools": ["lsblk", "nvme"],
        "commands": {
            fixture_name(["nvme", "sanitize", "/dev/nvme0", "-a", "2"]): {
                "state": "after-sanitize",
                "disk": "zero",
            }
        },
        "sequences": {"after-sanitize": {fixture_name(LOG): polls}},
    }
    (d / "scenario.json").write_text(json.dumps(scenario))
    return d


def test_a_real_sanitize_log_goes_from_in_progress_to_done_and_the_step_purges(tmp_path: Path) -> None:
    machine = ReplayMachine(_nvme_machine(tmp_path, ["stuck", "stuck", "stuck", "done"]), _image(tmp_path))
    (step,) = _plan(machine)
    assert step.action == "nvme-sanitize-block" and step.argv == ("nvme", "sanitize", "/dev/nvme0", "-a", "2")
    # The P3 gives no estimate (4294967295: "No time period reported"): Tabula's own, from the size.
    assert step.estimate_seconds > 60 and step.evidence == "zeros"
    rec = run_step(step, 0, _ctx(machine))
    assert rec.ok and rec.level_achieved == "purge", rec.note
    assert "SSTAT=0x0000 (never sanitized)" in rec.status  # the P3's own log, before
    assert "SSTAT=0x0101 (last sanitize completed successfully), SPROG=65535" in rec.status
    polls = [c for c in rec.commands if c["argv"][:2] == ["nvme", "sanitize-log"]]
    assert len(polls) == 5, "read before, then polled: in progress three times, then done"
    assert rec.data_check is not None and rec.data_check["passed"] and rec.data_check["kind"] == "zeros"


def test_a_sanitize_stuck_in_progress_fails_when_its_time_is_up(tmp_path: Path) -> None:
    """The 660p's block erase stayed "in progress" (SPROG 655) for a week: the step gives up at its
    timeout and fails; no level is claimed, whatever the data looks like."""
    machine = ReplayMachine(_nvme_machine(tmp_path, ["stuck"]), _image(tmp_path))
    (step,) = _plan(machine)
    assert float(step.params["timeout"]) >= 300
    quick = replace(step, params={**step.params, "timeout": 0.2})
    rec = run_step(quick, 0, _ctx(machine))
    assert not rec.ok and not rec.completed and rec.level_achieved == "none"
    assert rec.note == "sanitize did not finish in time"
    assert "sanitize in progress" in rec.status and "SPROG=655" in rec.status
    assert rec.data_check is None


# -- ATA SECURITY ERASE UNIT on the real WD3200BEKT identify: a timeout, then polling -----------------

WD = REAL / "ata-wdc-wd3200bekt-failing"
ENABLED = (
    "Security: \n\tMaster password revision code = 65534\n\t\tsupported\n\t\tenabled\n\tnot\tlocked\n"
    "\tnot\tfrozen\n\tnot\texpired: security count\n\t\tsupported: enhanced erase\n\tSecurity level high\n"
)


def _ata_machine(tmp: Path, polls: list[str]) -> Path:
    """A machine whose drive is the real WDC WD3200BEKT (hdparm -I as published: enhanced erase,
    58 min, not frozen).

    CONSTRUCTED: the disk listing (QEMU's); the identify after SET PASSWORD (the real one with its
    Security section turned "enabled" in the layout hdparm prints it, as a published secure-erase
    guide shows it); the outputs of SET PASSWORD, ERASE UNIT and DISABLE (hdparm's layout, from the
    same guide, with the scenario's password); the answers while the erase runs (``sequences``).
    """
    d = tmp / "wd"
    d.mkdir()
    ident = _recording(WD / "hdparm_-I_dev_sda").stdout
    serial = re.search(r"Serial Number:\s*(\S+)", ident).group(1)  # type: ignore[union-attr]
    _lsblk(d, "qemu-sata-hdd", serial)
    _put(d, ["hdparm", "-I", "/dev/sda"], ident)
    enabled = re.sub(r"Security: \n(?:\t.*\n)+?(?=\t\d+min)", ENABLED, ident)
    assert "\t\tenabled\n" in enabled and "Security level high" in enabled
    for state in ("after-security-set-pass", "erasing"):
        _put(d / state, ["hdparm", "-I", "/dev/sda"], enabled)
    _put(d / "done", ["hdparm", "-I", "/dev/sda"], ident)
    erase = ["hdparm", "--user-master", "u", "--security-erase-enhanced", "p", "/dev/sda"]
    _put(
        d,
        ["hdparm", "--user-master", "u", "--security-set-pass", "p", "/dev/sda"],
        '\n/dev/sda:\n Issuing SECURITY_SET_PASS command, password="p", user=user, mode=high\n',
        stderr='security_password: "p"\n',
    )
    _put(
        d,
        erase,
        '\n/dev/sda:\n Issuing SECURITY_ERASE command, password="p", user=user\n',
        stderr='security_password: "p"\n',
    )
    _put(
        d,
        ["hdparm", "--user-master", "u", "--security-disable", "p", "/dev/sda"],
        '\n/dev/sda:\n Issuing SECURITY_DISABLE command, password="p", user=user\n',
        stderr='security_password: "p"\n',
    )
    scenario = {
        "password": "p",
        "tools": ["lsblk", "hdparm"],
        "commands": {
            fixture_name(["hdparm", "--user-master", "u", "--security-set-pass", "p", "/dev/sda"]): {
                "state": "after-security-set-pass",
                "disk": "unchanged",
            },
            fixture_name(erase): {"state": "keep", "disk": "random"},
        },
        "sequences": {
            "after-security-set-pass": {
                fixture_name(["hdparm", "-I", "/dev/sda"]): ["after-security-set-pass", *polls]
            }
        },
    }
    (d / "scenario.json").write_text(json.dumps(scenario))
    return d


class _SlowErase(ScenarioRunner):
    """The erase command outlives its timeout (hdparm killed), while the drive goes on erasing."""

    def run(self, argv: Sequence[str], *, timeout: float = 60.0, mutating: bool = False) -> CommandResult:
        result = super().run(argv, timeout=timeout, mutating=mutating)
        if "--security-erase-enhanced" in argv:
            raise CommandTimeout(list(argv), timeout)
        return result


def _slow_machine(directory: Path, img: Path) -> ReplayMachine:
    machine = ReplayMachine(directory, img)
    # The same recordings behind a slower drive (a test's own replay machine: no public setter).
    machine._runner = _SlowErase(directory, image=img)
    return machine


def _erase_step(machine: ReplayMachine) -> tuple[PlannedStep, FirmwareStepRecord]:
    (step,) = _plan(machine)
    return step, run_step(step, 0, _ctx(machine))


def test_the_real_drives_estimate_sets_a_generous_timeout(tmp_path: Path) -> None:
    machine = ReplayMachine(_ata_machine(tmp_path, ["done"]), _image(tmp_path))
    (step,) = _plan(machine)
    assert step.action == "ata-secure-erase-enhanced" and step.level == "purge"
    assert step.estimate_seconds == 58 * 60 and step.params["estimated_by_drive"]
    assert step.params["timeout"] == 2 * 58 * 60 + 1800  # twice the estimate + 30 min (at least 2 h)


def test_an_erase_that_outlives_its_timeout_is_polled_until_the_drive_says_done(tmp_path: Path) -> None:
    img = _image(tmp_path)
    machine = _slow_machine(_ata_machine(tmp_path, ["erasing", "erasing", "done"]), img)
    step, rec = _erase_step(machine)
    assert rec.ok and rec.level_achieved == "purge", rec.note
    assert "still running after 146 min: polling the drive" in rec.status
    assert "finished after its timeout" in rec.status
    assert not any("--security-disable" in c["argv"] for c in rec.commands), "the drive cleared it itself"


def test_an_erase_that_never_finishes_says_so_and_tries_to_clear_the_password(tmp_path: Path) -> None:
    img = _image(tmp_path)
    machine = _slow_machine(_ata_machine(tmp_path, ["erasing"]), img)
    (step,) = _plan(machine)
    quick = replace(step, params={**step.params, "timeout": 0.2})
    rec = run_step(quick, 0, _ctx(machine))
    assert not rec.ok and rec.level_achieved == "none"
    assert "may still be erasing" in rec.note and "--security-disable tabula" in rec.note
    assert [c["argv"][3] for c in rec.commands if c["mutating"]][-1] == "--security-disable"


# -- eMMC SANITIZE on the real EXT_CSD of an eMMC 5.0 -------------------------------------------------

EMMC = REAL / "emmc-mmc50-sanitize"


def _emmc_machine(tmp: Path, disk: str) -> Path:
    """A machine whose eMMC is the real eMMC 5.0 of the linux-mmc report (EXT_CSD rev 7,
    SEC_FEATURE_SUPPORT 0x55, ERASED_MEM_CONT 0).

    CONSTRUCTED: the disk listing (QEMU's SATA SSD entry renamed mmcblk0, no transport, as lsblk
    shows an eMMC), the empty success outputs of blkdiscard and mmc sanitize, and their effect on
    the image (``disk``: zeros as erased blocks read on this device, or unchanged for a device that
    says it did and did not).
    """
    d = tmp / "emmc"
    d.mkdir()
    r = _recording(MACHINES / "qemu-sata-ssd" / "lsblk_-J_-b_-O")
    doc = json.loads(r.stdout)
    entry = doc["blockdevices"][0]
    entry.update(name="mmcblk0", kname="mmcblk0", path="/dev/mmcblk0", tran=None, serial="0x1a2b3c4d")
    entry.update(subsystems="block:mmc:mmc_host:pci", model=None, vendor=None, wwn=None, hctl=None)
    entry.pop("children", None)
    _put(d, r.argv, json.dumps(doc))
    ext = _recording(EMMC / "mmc_extcsd_read_dev_mmcblk0")
    _put(d, ext.argv, ext.stdout)
    _put(d, ["blkdiscard", "/dev/mmcblk0"], "")
    _put(d, ["mmc", "sanitize", "/dev/mmcblk0"], "")
    scenario = {
        "tools": ["lsblk", "mmc", "blkdiscard"],
        "commands": {
            fixture_name(["blkdiscard", "/dev/mmcblk0"]): {"state": None, "disk": "unchanged"},
            fixture_name(["mmc", "sanitize", "/dev/mmcblk0"]): {"state": None, "disk": disk},
        },
    }
    (d / "scenario.json").write_text(json.dumps(scenario))
    return d


def test_an_emmc_is_discarded_then_sanitized_and_its_erased_blocks_read_back(tmp_path: Path) -> None:
    machine = ReplayMachine(_emmc_machine(tmp_path, "zero"), _image(tmp_path))
    drive = machine.drives()[0]
    assert drive.transport == "mmc" and drive.path == "/dev/mmcblk0"
    caps = probe(drive, machine.runner, sysfs=None)
    assert caps.emmc is not None and caps.emmc.sanitize and caps.emmc.version == "5.0"
    plan = plan_purge(drive, caps, "nist-purge")
    (step,) = plan.steps
    assert step.action == "emmc-sanitize" and step.level == "purge" and step.evidence == "zeros"
    assert {a.action: a.level for a in plan.alternatives} == {
        "emmc-secure-erase": "clear",
        "emmc-secure-trim": "clear",
    }
    rec = run_step(step, 0, _ctx(machine))
    assert rec.ok and rec.level_achieved == "purge", rec.note
    assert [c["argv"] for c in rec.commands if c["mutating"]] == [
        ["blkdiscard", "/dev/mmcblk0"],
        ["mmc", "sanitize", "/dev/mmcblk0"],
    ]
    assert rec.data_check is not None and rec.data_check["kind"] == "zeros" and rec.data_check["passed"]


def test_an_emmc_that_says_sanitized_but_kept_the_data_is_not_purged(tmp_path: Path) -> None:
    machine = ReplayMachine(_emmc_machine(tmp_path, "unchanged"), _image(tmp_path))
    (step,) = _plan(machine)
    rec = run_step(step, 0, _ctx(machine))
    assert not rec.ok and rec.level_achieved == "none" and rec.completed
    assert rec.note.startswith("data check failed")


def test_without_mmc_utils_an_emmc_cannot_tell_and_is_overwritten(tmp_path: Path) -> None:
    d = _emmc_machine(tmp_path, "zero")
    scenario = json.loads((d / "scenario.json").read_text())
    scenario["tools"] = ["lsblk", "blkdiscard"]
    (d / "scenario.json").write_text(json.dumps(scenario))
    machine = ReplayMachine(d, None)
    drive = machine.drives()[0]
    plan = plan_purge(drive, probe(drive, machine.runner, sysfs=None), "nist-purge")
    assert plan.overwrite and plan.level_expected == "clear"
    assert all(
        a.reason == "cannot tell: mmc-utils is not installed (apt-get install mmc-utils)"
        for a in plan.alternatives
    )
