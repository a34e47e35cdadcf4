"""The PSID revert through the Linux kernel's Opal ioctl (erase/purge/sedopal.py, issue 16 item 4).

The ioctl number and struct are checked against the kernel's own header (no compiler); the ioctl is
sent for real to loop devices this test creates (the kernel answers "no Opal support", and nothing
is written); hostile input is refused before anything is sent; the planner picks sedutil-cli or the
kernel path; the step's flow (success, wrong PSID, no support, timeout) is replayed through the one
command runner.  The ioctl is never aimed at a device the test did not create.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from erase.purge import sedopal
from erase.purge.machine import ReplayMachine, ScenarioRunner
from erase.purge.planner import PlanOptions, PurgeRefused, plan_purge
from erase.purge.probe import STATION_OPAL_TOOL, probe
from erase.purge.steps import StepContext, run_step
from erase.purge.tcg import (
    NO_OPAL_ERRNOS,
    RevertResult,
    TcgStatus,
    errno_result,
    parse_revert_line,
    tcg_result,
)
from erase.record import FirmwareStepRecord
from host.errors import CommandTimeout
from host.identity import DriveInfo
from host.runner import CommandResult, SubprocessRunner, find_tool, fixture_name, write_fixture
from tests.faultfs import FaultDisk, fault_disk, have_fuse
from tests.loopdev import attach, detach, have_root, loop_device

HEADER = Path("/usr/include/linux/sed-opal.h")
IOCTL_H = Path("/usr/include/asm-generic/ioctl.h")
MACHINES = Path(__file__).parent / "fixtures" / "machines"
PSID = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"  # 32 characters, as on a label; not any drive's


# -- the ABI, read from the kernel's headers (linux-libc-dev) ---------------------------------------


def _define(text: str, name: str) -> str:
    m = re.search(rf"^#\s*define\s+{name}\s+(.+?)\s*$", text, re.MULTILINE)
    assert m is not None, f"{name} is not defined"
    return m.group(1)


def test_the_ioctl_number_and_struct_are_the_headers() -> None:
    header = HEADER.read_text()
    key_max = int(_define(header, "OPAL_KEY_MAX"))
    assert key_max == sedopal.OPAL_KEY_MAX == 256
    body = re.search(r"struct opal_key \{(.*?)\};", header, re.DOTALL)
    assert body is not None
    # Every member is a __u8 or an array of them: the struct has no padding.
    members = re.findall(r"^\s*(\w+)\s+(\w+)(?:\[(\w+)\])?;", body.group(1), re.MULTILINE)
    assert [m[1] for m in members] == ["lr", "key_len", "__align", "key"]
    assert {m[0] for m in members} == {"__u8"}
    size = sum(1 if not n else key_max if n == "OPAL_KEY_MAX" else int(n) for _, _, n in members)
    assert size == sedopal.OPAL_KEY.size == 264
    assert _define(header, "IOC_OPAL_PSID_REVERT_TPR") == "_IOW('p', 232, struct opal_key)"
    ioctl_h = IOCTL_H.read_text()
    nrbits, typebits = int(_define(ioctl_h, "_IOC_NRBITS")), int(_define(ioctl_h, "_IOC_TYPEBITS"))
    sizebits = int(_define(ioctl_h, "_IOC_SIZEBITS"))
    write = int(_define(ioctl_h, "_IOC_WRITE").rstrip("U"))
    number = write << (nrbits + typebits + sizebits) | size << (nrbits + typebits) | ord("p") << nrbits | 232
    assert sedopal.IOC_OPAL_PSID_REVERT_TPR == number == 0x410870E8


def test_the_key_is_packed_as_the_struct_says() -> None:
    key = sedopal.opal_key(PSID)
    assert len(key) == 264 and key[0] == 0 and key[1] == 32 and key[2:8] == bytes(6)
    assert bytes(key[8:40]) == PSID.encode() and key[40:] == bytes(224)


# -- the real ioctl, on loop devices this test creates ----------------------------------------------


@pytest.mark.skipif(not have_root(), reason="needs root and loop devices")
def test_a_loop_device_has_no_opal_support_and_nothing_is_written(tmp_path: Path) -> None:
    with loop_device(tmp_path, 1 << 20, fill=b"\xa5") as dev:
        before = hashlib.sha256((tmp_path / "disk.img").read_bytes()).hexdigest()
        result = sedopal.psid_revert(dev, PSID)
        assert result.result == "no-opal" and result.exit_code == 4
        number = int(result.status.split(":")[1])
        assert number in NO_OPAL_ERRNOS, result
        # Through the one command runner, as the step runs it: the console script, its line, its code.
        r = SubprocessRunner().run([STATION_OPAL_TOOL, "psid-revert", dev, PSID], mutating=True)
        assert r.returncode == 4 and parse_revert_line(r.stdout) == result
        assert PSID not in r.stdout + r.stderr and "Opal" in r.stderr
    assert hashlib.sha256((tmp_path / "disk.img").read_bytes()).hexdigest() == before


def test_the_station_finds_its_own_tool_next_to_its_python() -> None:
    found = find_tool(STATION_OPAL_TOOL)
    assert found is not None and Path(found).name == STATION_OPAL_TOOL


# -- hostile input: refused before anything is sent --------------------------------------------------


@pytest.mark.parametrize(
    "psid",
    ["", "A" * 33, "A" * 257, "PSÏD0123", "PSID 0123", "PSID\x00123", "PSID\n123", "\u200b" * 4],
)
def test_a_psid_no_label_has_is_refused(psid: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(sedopal.Refused) as exc:
        sedopal.opal_key(psid)
    assert exc.value.result == RevertResult("refused", "input:psid")
    # The command refuses it too, before it looks at the device (which does not exist here).
    assert sedopal.main(["psid-revert", "/nonexistent/device", psid]) == 2
    out, err = capsys.readouterr()
    assert out == "psid-revert result=refused status=input:psid\n" and "PSID" in err


@pytest.mark.skipif(not have_root(), reason="needs root and loop devices")
def test_a_file_a_directory_or_a_missing_path_is_not_sent_anything(tmp_path: Path) -> None:
    plain = tmp_path / "plain.img"
    plain.write_bytes(b"\x5a" * 4096)
    (tmp_path / "dir").mkdir()
    for path in (str(plain), str(tmp_path / "dir"), str(tmp_path / "missing"), "/dev/null"):
        with pytest.raises(sedopal.Refused) as exc:
            sedopal.psid_revert(path, PSID)
        assert exc.value.result.status == "input:device", path
    assert plain.read_bytes() == b"\x5a" * 4096


# -- results: pure ------------------------------------------------------------------------------------


def test_the_drive_s_answers_and_the_kernel_s_errors_are_named() -> None:
    assert tcg_result(0) == RevertResult("ok", "ok")
    assert tcg_result(0x01) == RevertResult("wrong-psid", "tcg:0x01:NOT_AUTHORIZED")
    assert tcg_result(0x12) == RevertResult("wrong-psid", "tcg:0x12:AUTHORITY_LOCKED_OUT")
    assert tcg_result(0x3F) == RevertResult("error", "tcg:0x3f:FAIL")
    assert tcg_result(0x99) == RevertResult("error", "tcg:0x99:UNKNOWN")
    assert errno_result(25, "ENOTTY").result == errno_result(95, "EOPNOTSUPP").result == "no-opal"
    assert errno_result(524, "").status == "errno:524:ENOTSUPP"
    assert errno_result(5, "EIO") == RevertResult("error", "errno:5:EIO")
    assert errno_result(13, "EACCES").exit_code == 1
    codes = {r: RevertResult(r, "x").exit_code for r in ("ok", "error", "refused", "wrong-psid", "no-opal")}
    assert len(set(codes.values())) == 5 and codes["ok"] == 0


def test_only_one_well_formed_result_line_is_read() -> None:
    good = "psid-revert result=wrong-psid status=tcg:0x01:NOT_AUTHORIZED\n"
    assert parse_revert_line(good) == RevertResult("wrong-psid", "tcg:0x01:NOT_AUTHORIZED")
    for bad in (
        "",
        "Success\n",
        good + good,
        "psid-revert result=ok\n",
        "psid-revert result=maybe status=ok\n",
    ):
        assert parse_revert_line(bad) is None, bad
    with pytest.raises(ValueError):
        RevertResult("ok", "has spaces")


# -- the planner: sedutil-cli when installed, else the kernel (Opal 1 and 2 only) -----------------


def _caps(families: tuple[str, ...], tools: dict[str, bool], locked: bool = False):  # type: ignore[no-untyped-def]
    drive = ReplayMachine(MACHINES / "qemu-sata-ssd").drives()[0]
    caps = probe(drive, ReplayMachine(MACHINES / "qemu-sata-ssd").runner, sysfs=None)
    tcg = TcgStatus(families, "level0", locked=locked, locking_enabled=locked)
    return drive, replace(caps, tcg=tcg, tools={**caps.tools, **tools})


def test_without_sedutil_an_opal_drive_is_reverted_by_the_kernel() -> None:
    drive, caps = _caps(("Opal 2",), {"sedutil-cli": False, STATION_OPAL_TOOL: True}, locked=True)
    with pytest.raises(PurgeRefused) as exc:
        plan_purge(drive, caps, "nist-purge")
    assert "--psid" in (exc.value.hint or "") and "sedutil" not in (exc.value.hint or "")
    plan = plan_purge(drive, caps, "nist-purge", PlanOptions(psid=PSID))
    step = plan.steps[0]
    assert step.action == "opal-psid-revert" and step.tool == STATION_OPAL_TOOL
    assert step.argv == (STATION_OPAL_TOOL, "psid-revert", drive.path, "@PSID@")
    assert PSID not in json.dumps(list(step.argv))
    with_sedutil = replace(caps, tools={**caps.tools, "sedutil-cli": True})
    step = plan_purge(drive, with_sedutil, "nist-purge", PlanOptions(psid=PSID)).steps[0]
    assert step.argv[:2] == ("sedutil-cli", "--PSIDrevert")


def test_a_pyrite_drive_still_needs_sedutil_and_a_bad_psid_is_not_planned() -> None:
    drive, caps = _caps(("Pyrite 2",), {"sedutil-cli": False, STATION_OPAL_TOOL: True}, locked=True)
    with pytest.raises(PurgeRefused) as exc:
        plan_purge(drive, caps, "nist-purge", PlanOptions(psid=PSID))
    assert "needs sedutil-cli" in (exc.value.hint or "") and "Opal 1 and Opal 2" in (exc.value.hint or "")
    drive, caps = _caps(("Opal 2",), {"sedutil-cli": False, STATION_OPAL_TOOL: True})
    plan = plan_purge(drive, caps, "nist-purge", PlanOptions(psid="PSÏD"))
    (alt,) = [a for a in plan.alternatives if a.action == "opal-psid-revert"]
    assert alt.reason.startswith("refused: the PSID holds characters")


# -- the step, replayed through the one command runner -------------------------------------------------


def _machine(tmp: Path, stdout: str, returncode: int, disk: str) -> tuple[ReplayMachine, Path]:
    """qemu-sata-ssd's recordings, plus tabula-opal's answer (CONSTRUCTED from the result line
    format, except "no-opal", which is what the kernel answered on a loop device above) and its
    effect on the disk image."""
    d = tmp / "machine"
    shutil.copytree(MACHINES / "qemu-sata-ssd", d, ignore=shutil.ignore_patterns("machine.json"))
    argv = [STATION_OPAL_TOOL, "psid-revert", "/dev/sda", PSID]
    write_fixture(d, CommandResult(tuple(argv), returncode, stdout, "tabula-opal: see the line\n"))
    scenario = {
        "tools": ["lsblk", "hdparm", STATION_OPAL_TOOL],
        "commands": {fixture_name(argv): {"disk": disk}},
    }
    (d / "scenario.json").write_text(json.dumps(scenario))
    img = tmp / "disk.img"
    img.write_bytes((b"TABULA-OPAL-" + bytes(range(256))) * (33554432 // 268) + bytes(33554432 % 268))
    return ReplayMachine(d, img), img


def _revert(machine: ReplayMachine) -> FirmwareStepRecord:
    drive = machine.resolve("/dev/sda", include_loop=False).info
    _, caps = _caps(("Opal 2",), {"sedutil-cli": False, STATION_OPAL_TOOL: True})
    step = plan_purge(drive, caps, "nist-purge", PlanOptions(psid=PSID)).steps[0]
    ctx = StepContext(machine=machine, drive=drive, seed=b"sedopal-seed-16!", sleep=lambda s: None)
    return run_step(step, 0, ctx)


def test_a_revert_the_drive_accepts_purges_once_the_data_has_changed(tmp_path: Path) -> None:
    machine, _ = _machine(tmp_path, "psid-revert result=ok status=ok\n", 0, "random")
    rec = _revert(machine)
    assert rec.level_achieved == "purge" and rec.data_check is not None and rec.data_check["passed"]
    assert PSID not in json.dumps(rec.to_dict()) and "***" in json.dumps(rec.commands)


def test_a_revert_that_says_ok_but_changed_nothing_is_not_certified(tmp_path: Path) -> None:
    machine, _ = _machine(tmp_path, "psid-revert result=ok status=ok\n", 0, "unchanged")
    rec = _revert(machine)
    assert rec.level_achieved == "none" and "data check failed" in rec.note


@pytest.mark.parametrize(
    ("result", "said"),
    [
        (RevertResult("wrong-psid", "tcg:0x01:NOT_AUTHORIZED"), "the drive refused the PSID"),
        (RevertResult("wrong-psid", "tcg:0x12:AUTHORITY_LOCKED_OUT"), "powered off and on"),
        (RevertResult("no-opal", "errno:95:EOPNOTSUPP"), "cannot send Opal commands"),
    ],
)
def test_a_refused_revert_says_nothing_was_erased(tmp_path: Path, result: RevertResult, said: str) -> None:
    machine, img = _machine(tmp_path, result.line + "\n", result.exit_code, "unchanged")
    before = hashlib.sha256(img.read_bytes()).hexdigest()
    rec = _revert(machine)
    assert rec.level_achieved == "none" and not rec.completed and rec.data_check is None
    assert said in rec.note and rec.note.endswith("nothing was erased"), rec.note
    assert hashlib.sha256(img.read_bytes()).hexdigest() == before


def test_an_exit_code_that_contradicts_the_line_is_not_believed(tmp_path: Path) -> None:
    machine, _ = _machine(tmp_path, "psid-revert result=ok status=ok\n", 4, "random")
    rec = _revert(machine)
    assert rec.level_achieved == "none" and "printed no PSID revert result" in rec.note


class _Hangs(ScenarioRunner):
    """tabula-opal outlives its timeout (the drive does not answer)."""

    def run(self, argv: Sequence[str], *, timeout: float = 60.0, mutating: bool = False) -> CommandResult:
        if argv[0] == STATION_OPAL_TOOL:
            raise CommandTimeout(list(argv), timeout)
        return super().run(argv, timeout=timeout, mutating=mutating)


def test_a_revert_with_no_answer_in_time_certifies_nothing(tmp_path: Path) -> None:
    machine, img = _machine(tmp_path, "", 0, "unchanged")
    machine._runner = _Hangs(machine.directory, image=img)  # a test's own replay machine
    rec = _revert(machine)
    assert rec.level_achieved == "none" and "nothing is certified as erased" in rec.note


# -- a locked drive, for real: reads refused until the revert --------------------------------------


class _LockedRunner(ScenarioRunner):
    """The replayed drive, whose successful ``tabula-opal psid-revert`` also unlocks the fault disk
    standing for it (reads stop failing)."""

    disk: FaultDisk | None = None

    def run(self, argv: Sequence[str], *, timeout: float = 60.0, mutating: bool = False) -> CommandResult:
        result = super().run(argv, timeout=timeout, mutating=mutating)
        if argv[0] == STATION_OPAL_TOOL and result.returncode == 0 and self.disk is not None:
            self.disk.set_faults([])
        return result


class _LockedMachine(ReplayMachine):
    def __init__(self, directory: Path, image: Path, locked_dev: str) -> None:
        super().__init__(directory, image)
        self.locked_dev = locked_dev

    def data_path(self, info: DriveInfo) -> str:
        return self.locked_dev


@contextlib.contextmanager
def _locked_drive(tmp: Path, line: str, code: int, *, unlocks: bool) -> Iterator[_LockedMachine]:
    """The drive's image behind a fault-injecting FUSE mount and a loop device that refuse every read
    (EIO), as a locked Opal drive's locking range does, until a revert the drive accepts."""
    machine, img = _machine(tmp, line, code, "random")
    size = img.stat().st_size
    with fault_disk(tmp, size) as disk:
        disk.backing.write_bytes(img.read_bytes())
        disk.set_faults([{"op": "read", "mode": "eio", "start": 0, "end": size}])
        loop = attach(disk.image)
        try:
            locked = _LockedMachine(machine.directory, disk.image, loop)
            runner = _LockedRunner(machine.directory, image=disk.image, state_file=None)
            runner.disk = disk if unlocks else None
            locked._runner = runner  # a test's own replay machine
            yield locked
        finally:
            detach(loop)


@pytest.mark.skipif(not (have_root() and have_fuse()), reason="needs root, loop devices and FUSE")
def test_a_locked_drive_is_reverted_and_the_lock_gone_is_its_evidence(tmp_path: Path) -> None:
    with _locked_drive(tmp_path, "psid-revert result=ok status=ok\n", 0, unlocks=True) as machine:
        with pytest.raises(OSError), open(machine.locked_dev, "rb") as f:
            f.read(4096)  # locked: the drive refuses reads, as the step finds it
        rec = _revert(machine)
    assert rec.level_achieved == "purge", rec.note
    assert rec.data_check is not None and rec.data_check["passed"]
    assert "were unreadable before it (the drive was locked)" in rec.data_check["detail"]


@pytest.mark.skipif(not (have_root() and have_fuse()), reason="needs root, loop devices and FUSE")
def test_a_locked_drive_still_locked_after_an_ok_is_not_certified(tmp_path: Path) -> None:
    with _locked_drive(tmp_path, "psid-revert result=ok status=ok\n", 0, unlocks=False) as machine:
        rec = _revert(machine)
    assert rec.level_achieved == "none"
    assert rec.data_check is not None and not rec.data_check["passed"]
    assert "still unreadable after the step" in rec.data_check["detail"]


@pytest.mark.skipif(not (have_root() and have_fuse()), reason="needs root, loop devices and FUSE")
def test_a_locked_drive_that_refuses_the_psid_says_nothing_was_erased(tmp_path: Path) -> None:
    wrong = RevertResult("wrong-psid", "tcg:0x01:NOT_AUTHORIZED")
    with _locked_drive(tmp_path, wrong.line + "\n", wrong.exit_code, unlocks=True) as machine:
        rec = _revert(machine)
    assert rec.level_achieved == "none" and rec.note.endswith("nothing was erased"), rec.note


@pytest.mark.parametrize(
    ("result", "french"),
    [
        (RevertResult("wrong-psid", "tcg:0x01:NOT_AUTHORIZED"), "le disque a refusé le PSID"),
        (RevertResult("no-opal", "errno:95:EOPNOTSUPP"), "ne peut pas envoyer le retour usine par PSID"),
        (RevertResult("error", "errno:5:EIO"), "le retour usine par PSID a échoué"),
    ],
)
def test_a_failed_revert_is_told_to_a_french_trainee(result: RevertResult, french: str) -> None:
    from station.i18n import set_language
    from station.tui.model import step_note

    set_language("fr")
    assert french in step_note(f"{result.explanation}; nothing was erased")
