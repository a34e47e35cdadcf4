"""Whole jobs on replayed machines: the CLI plans, the worker runs firmware steps, the record and the
certificate say what was proved.  Recorded QEMU machines (tests/fixtures/machines) and constructed
ones (tests/fixtures/purge, see its README) are replayed by erase.purge.machine.ReplayMachine, whose
disk is an image file in tmp_path: nothing here touches a real device.

Every "lying tool" case must end as a FAILED job with a failure report, never a certificate of
success, and the disk image must still hold its data (the replay plays what really happened).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from certs.build import build_certificate
from certs.model import Station
from certs.settings import CertSettings
from erase.purge.errors import ReplayError
from erase.purge.machine import ReplayMachine, ScenarioRunner
from erase.purge.planner import PlanOptions, plan_purge
from erase.purge.probe import probe
from erase.purge.steps import StepContext, run_step
from erase.record import JobRecord
from host.runner import CommandResult, DryRunRunner, write_fixture
from station.cli import main
from tests.fixtures.certs.helpers import make_station

HERE = Path(__file__).parent
MACHINES = HERE / "fixtures" / "machines"
PURGE = HERE / "fixtures" / "purge"
PATTERN = b"TABULA-PURGE-TEST-" + bytes(range(256)) * 2


def _size(machine: Path) -> int:
    text = (machine / "lsblk_-J_-b_-O").read_text().split("\n", 1)[1]
    return int(json.loads(text)["blockdevices"][0]["size"])


def _image(machine: Path, tmp: Path) -> Path:
    size = _size(machine)
    img = tmp / "disk.img"
    img.write_bytes((PATTERN * (size // len(PATTERN) + 1))[:size])
    return img


def _use(machine: Path, tmp: Path, monkeypatch: pytest.MonkeyPatch, *, image: bool = True) -> Path | None:
    monkeypatch.setenv("TABULA_HOME", str(tmp / "home"))
    monkeypatch.setenv("TABULA_REPLAY_MACHINE", str(machine))
    img = _image(machine, tmp) if image else None
    if img is not None:
        monkeypatch.setenv("TABULA_REPLAY_DISK", str(img))
    else:
        monkeypatch.delenv("TABULA_REPLAY_DISK", raising=False)
    return img


def _records(tmp: Path) -> list[JobRecord]:
    return [
        JobRecord.from_dict(json.loads(p.read_text()))
        for p in sorted((tmp / "home" / "jobs").glob("*/record.json"))
    ]


def _intact(img: Path) -> bool:
    data = img.read_bytes()
    return data == (PATTERN * (len(data) // len(PATTERN) + 1))[: len(data)]


STATION = Station(id="bench-test", kid="0" * 64, sequence=1, previous=None)


# -- plans of the recorded machines -----------------------------------------------------------------

PLANS = [
    ("qemu-sata-hdd", "/dev/sda", "Clear", "magnetic media", "the Security feature set is not supported"),
    ("qemu-sata-ssd", "/dev/sda", "Clear", "flash media", "no SANITIZE feature set"),
    ("qemu-nvme", "/dev/nvme0n1", "Purge", "nvme format /dev/nvme0n1 --ses=1 --force", "SANICAP"),
    ("qemu-scsi", "/dev/sda", "Clear", "magnetic media", "does not report SANITIZE support"),
    ("qemu-scsi-lsi", "/dev/sda", "Clear", "magnetic media", "does not report SANITIZE support"),
    ("qemu-usb", "/dev/sda", "Clear", "usb", "behind a USB bridge that does not pass ATA commands through"),
]


@pytest.mark.parametrize(("case", "dev", "level", "shown", "reason"), PLANS, ids=[p[0] for p in PLANS])
def test_plan_of_recorded_machines(
    case: str,
    dev: str,
    level: str,
    shown: str,
    reason: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _use(MACHINES / case, tmp_path, monkeypatch, image=False)
    assert main(["erase", "--plan", "--policy", "nist-purge", dev]) == 0
    out = capsys.readouterr().out
    assert f"achieves: NIST SP 800-88 {level}" in out
    assert "requested NIST SP 800-88 Purge" in out
    assert shown in out
    assert reason in out
    if level == "Clear":
        assert "then overwrite with zero" in out
        assert "lower than requested: Purge is not possible" in out
    else:
        assert "step 1:" in out and "then overwrite" not in out
    assert not (tmp_path / "home" / "jobs").exists(), "--plan must not create a job"


def test_clear_policy_plans_an_overwrite_even_when_purge_is_possible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _use(MACHINES / "qemu-nvme", tmp_path, monkeypatch, image=False)
    assert main(["erase", "--plan", "--policy", "nist-clear", "/dev/nvme0n1"]) == 0
    out = capsys.readouterr().out
    assert "requested NIST SP 800-88 Clear" in out
    assert "achieves: NIST SP 800-88 Clear" in out
    assert "nvme format" not in out


def test_recorded_machine_without_disk_image_cannot_erase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _use(MACHINES / "qemu-nvme", tmp_path, monkeypatch, image=False)
    assert main(["erase", "--policy", "nist-purge", "/dev/nvme0n1", "--yes", "--no-cert"]) == 2
    assert "no disk image" in capsys.readouterr().err
    assert not (tmp_path / "home" / "jobs").exists()


# -- whole jobs ---------------------------------------------------------------------------------------

LIES = [
    ("ata-hdd-setpass-lies", "/dev/sda", [], "did not accept the temporary password"),
    ("ata-hdd-erase-lies", "/dev/sda", [], "sampled ranges unchanged"),
    ("ata-ssd-sanitize-failed", "/dev/sda", [], "does not report a sanitize completed without error"),
    ("ata-hdd-frozen", "/dev/sda", ["--unfreeze-suspend"], "still frozen after a suspend/resume"),
    ("nvme-sanitize-failed", "/dev/nvme0n1", [], "sanitize log does not report a successful sanitize"),
    ("scsi-sanitize-lies", "/dev/sda", [], "are not 0x00"),
    ("ata-hdd-hpa-lies", "/dev/sda", [], "the native size is still hidden"),
    ("ata-hdd-owner-locked", "/dev/sda", [], "locked with a password that is not Tabula's"),
    ("nvme-sanitize-stale", "/dev/nvme0n1", [], "the sanitize log shows no new sanitize"),
]


@pytest.mark.parametrize(("case", "dev", "extra", "why"), LIES, ids=[c[0] for c in LIES])
def test_lying_tools_end_as_failed_jobs(
    case: str, dev: str, extra: list[str], why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    img = _use(PURGE / case, tmp_path, monkeypatch)
    assert img is not None
    assert main(["erase", "--policy", "nist-purge", dev, "--yes", "--no-cert", *extra]) == 3
    (record,) = _records(tmp_path)
    assert record.outcome.value == "failed"
    assert record.nist_level is None
    assert any(why in r for r in record.reasons), record.reasons
    failed = [s for s in record.firmware_steps if not s.ok]
    assert failed and all(s.level_achieved == "none" for s in failed)
    assert _intact(img), "the replay must leave the data as the lying drive did"
    cert = build_certificate(record, settings=CertSettings(), station=STATION)
    assert cert.kind == "failure_report"
    assert not cert.result.success
    assert cert.sanitization.level_achieved == "none"
    assert any(s.kind == "firmware" and s.level_achieved == "none" for s in cert.sanitization.steps)


SUCCESSES = [
    (MACHINES / "qemu-nvme", "/dev/nvme0n1", "nvme-format-erase", "zeros", "zero"),
    (PURGE / "nvme-sanitize-crypto", "/dev/nvme0n1", "nvme-sanitize-crypto", "changed", "random"),
    (PURGE / "ata-ssd-sanitize", "/dev/sda", "ata-sanitize-crypto", "changed", "random"),
    (PURGE / "nvme-sanitize-rerun", "/dev/nvme0n1", "nvme-sanitize-crypto", "changed", "random"),
]


@pytest.mark.parametrize(
    ("machine", "dev", "action", "evidence", "disk"), SUCCESSES, ids=[s[0].name for s in SUCCESSES]
)
def test_firmware_purge_with_evidence_is_certified_purge(
    machine: Path,
    dev: str,
    action: str,
    evidence: str,
    disk: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    img = _use(machine, tmp_path, monkeypatch)
    assert img is not None
    assert main(["erase", "--policy", "nist-purge", dev, "--yes", "--no-cert"]) == 0
    (record,) = _records(tmp_path)
    assert record.outcome.value == "verified"
    assert record.nist_level == "purge"
    assert record.plan.passes == ()
    (step,) = record.firmware_steps
    assert step.action == action and step.ok and step.status_ok
    assert step.data_check is not None and step.data_check["kind"] == evidence and step.data_check["passed"]
    assert all(
        c["mutating"] for c in step.commands if c["argv"][:2] in (["nvme", "format"], ["nvme", "sanitize"])
    )
    data = img.read_bytes()
    assert (data == bytes(len(data))) == (disk == "zero")
    assert not _intact(img)
    station = make_station(tmp_path / "station")
    issued = station.issue(record)
    assert issued.verified_success  # the signed certificate, issued for real, is one of success
    cert = build_certificate(record, settings=CertSettings(), station=STATION)
    assert cert.kind == "certificate" and cert.result.success
    assert cert.sanitization.level_requested == "purge"
    assert cert.sanitization.level_achieved == "purge"
    assert cert.sanitization.method_type == "Purge"
    fw = cert.sanitization.steps[0]
    assert (
        fw.kind == "firmware"
        and fw.level_achieved == "purge"
        and fw.command
        and "data read back" in (fw.status or "")
    )


def test_purge_requested_clear_achieved_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    img = _use(MACHINES / "qemu-sata-hdd", tmp_path, monkeypatch)
    assert img is not None
    assert main(["erase", "--policy", "nist-purge", "/dev/sda", "--yes", "--no-cert", "--sample"]) == 0
    (record,) = _records(tmp_path)
    assert record.nist_level == "clear"
    assert record.nist_level_requested == "purge"
    assert "Purge is not possible" in record.level_note
    assert img.read_bytes() == bytes(img.stat().st_size)
    cert = build_certificate(record, settings=CertSettings(), station=STATION)
    assert cert.kind == "certificate"
    assert (cert.sanitization.level_requested, cert.sanitization.level_achieved) == ("purge", "clear")
    assert "Purge is not possible" in cert.sanitization.level_note
    assert cert.media.hidden_before.status == "none" and cert.media.native_bytes == img.stat().st_size


def test_frozen_drive_without_consent_is_planned_as_overwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _use(PURGE / "ata-hdd-frozen", tmp_path, monkeypatch, image=False)
    assert main(["erase", "--plan", "--policy", "nist-purge", "/dev/sda"]) == 0
    out = capsys.readouterr().out
    assert "frozen by the BIOS (add --unfreeze-suspend" in out
    assert "rtcwake" not in out
    assert main(["erase", "--plan", "--policy", "nist-purge", "/dev/sda", "--unfreeze-suspend"]) == 0
    out = capsys.readouterr().out
    assert "step 1: suspend to RAM" in out and "rtcwake -m mem -s 5" in out
    assert "step 2: ATA SECURITY ERASE UNIT (enhanced)" in out


# -- runner discipline ----------------------------------------------------------------------------------


def test_mutating_commands_are_marked_mutating(tmp_path: Path) -> None:
    machine_dir = MACHINES / "qemu-nvme"
    runner = ScenarioRunner(machine_dir)
    with pytest.raises(ReplayError, match="not run as mutating"):
        runner.run(["nvme", "format", "/dev/nvme0n1", "--ses=1", "--force"])
    # The same step through a dry-run runner: the format is refused, so there is no evidence.
    img = _image(machine_dir, tmp_path)
    machine = ReplayMachine(machine_dir, img)
    dry = DryRunRunner(machine.runner)
    drive = machine.resolve("/dev/nvme0n1", include_loop=False).info
    caps = probe(drive, machine.runner)
    plan = plan_purge(drive, caps, "nist-purge", PlanOptions())

    class DryMachine(ReplayMachine):
        @property
        def runner(self) -> Any:
            return dry

    dm = DryMachine(machine_dir, img)
    rec = run_step(plan.steps[0], 0, StepContext(machine=dm, drive=drive, seed=b"s" * 16))
    assert dry.would_run == [("nvme", "format", "/dev/nvme0n1", "--ses=1", "--force")]
    assert not rec.ok and rec.level_achieved == "none"
    assert _intact(img)


@pytest.mark.parametrize(
    ("machine", "serial"),
    [(MACHINES / "qemu-nvme", "SOMEONE-ELSE"), (PURGE / "nvme-sanitize-crypto", "SOMEONE-ELSE")],
    ids=["format", "sanitize"],
)
def test_nvme_step_rechecks_the_controller_serial_before_erasing(
    machine: Path, serial: str, tmp_path: Path
) -> None:
    """The plan was made for one drive; right before the command, the controller answers with another
    serial (renumbered after a hot-plug, multipath): nothing mutating may run."""
    img = _image(machine, tmp_path)
    m = ReplayMachine(machine, img)
    drive = m.resolve("/dev/nvme0n1", include_loop=False).info
    plan = plan_purge(drive, probe(drive, m.runner), "nist-purge", PlanOptions())
    (step,) = plan.steps
    ctx = StepContext(machine=m, drive=drive, seed=b"s" * 16, sleep=lambda s: None)
    moved = StepContext(machine=m, drive=replace(drive, serial=serial), seed=b"s" * 16)
    rec = run_step(step, 0, moved)
    assert not rec.ok and rec.level_achieved == "none"
    assert "the controller's serial does not match this drive" in rec.note
    assert [c["argv"][:2] for c in rec.commands] == [["nvme", "id-ctrl"]]
    assert not any(c["mutating"] for c in rec.commands)
    assert _intact(img)
    # A plan that does not name the controller (older plan) is refused too.
    bare = replace(step, params={k: v for k, v in step.params.items() if k != "controller"})
    rec = run_step(bare, 0, ctx)
    assert not rec.ok and "does not name this drive's NVMe controller" in rec.note
    assert _intact(img)
    # The matching drive: the step runs and its evidence passes.
    rec = run_step(step, 0, ctx)
    assert rec.ok, rec.note
    assert rec.commands[0]["argv"][:2] == ["nvme", "id-ctrl"] and not rec.commands[0]["mutating"]
    assert "matches the drive" in rec.status


def test_a_drive_left_locked_by_a_cut_erase_is_unlocked_and_purged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Power lost during SECURITY ERASE UNIT leaves the drive locked with Tabula's fixed password: the
    plan shows a step that clears it, then the erase runs again and is certified Purge."""
    img = _use(PURGE / "ata-hdd-left-locked", tmp_path, monkeypatch)
    assert img is not None
    assert main(["erase", "--plan", "--policy", "nist-purge", "/dev/sda"]) == 0
    out = capsys.readouterr().out
    assert "clear the ATA password an interrupted erase left" in out
    assert main(["erase", "--policy", "nist-purge", "/dev/sda", "--yes", "--no-cert"]) == 0
    (record,) = _records(tmp_path)
    assert record.outcome.value == "verified" and record.nist_level == "purge"
    recover, erase = record.firmware_steps
    assert recover.action == "ata-password-recover" and recover.ok and recover.level_achieved == "none"
    unlocked = [c["argv"][3] for c in recover.commands if c["mutating"]]
    assert unlocked == ["--security-unlock", "--security-disable"]
    assert erase.action == "ata-secure-erase-enhanced" and erase.ok and erase.level_achieved == "purge"
    assert img.read_bytes() == bytes(img.stat().st_size)


def test_only_a_drive_with_a_security_password_gets_a_recovery_step() -> None:
    def actions(case: str) -> list[str]:
        m = ReplayMachine(PURGE / case, None)
        drive = m.resolve("/dev/sda", include_loop=False).info
        return [
            s.action for s in plan_purge(drive, probe(drive, m.runner), "nist-purge", PlanOptions()).steps
        ]

    assert actions("ata-hdd-erase-lies") == ["ata-secure-erase-enhanced"]
    assert actions("ata-hdd-owner-locked") == ["ata-password-recover", "ata-secure-erase-enhanced"]


def test_a_resumed_secure_erase_reuses_the_password_left_on_the_drive(tmp_path: Path) -> None:
    """A job resumed after a power loss reruns its erase step on a locked drive: no new SET PASSWORD
    (refused when locked), the erase itself with Tabula's password."""
    case = PURGE / "ata-hdd-left-locked"
    img = _image(case, tmp_path)
    m = ReplayMachine(case, img)
    drive = m.resolve("/dev/sda", include_loop=False).info
    plan = plan_purge(drive, probe(drive, m.runner), "nist-purge", PlanOptions())
    erase = plan.steps[-1]
    result = run_step(erase, 1, StepContext(machine=m, drive=drive, seed=b"s" * 16, sleep=lambda s: None))
    assert result.ok and result.level_achieved == "purge", result.note
    mutating = [c["argv"][3] for c in result.commands if c["mutating"]]
    assert mutating == ["--security-erase-enhanced"]
    assert img.read_bytes() == bytes(img.stat().st_size)


def test_the_tui_says_why_a_firmware_step_failed_in_the_technicians_language(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from station.i18n import set_language
    from station.jobs import JobWatcher
    from station.tui.model import failure_summary

    _use(PURGE / "ata-hdd-owner-locked", tmp_path, monkeypatch)
    assert main(["erase", "--policy", "nist-purge", "/dev/sda", "--yes", "--no-cert"]) == 3
    (job_dir,) = (tmp_path / "home" / "jobs").iterdir()
    state = JobWatcher([job_dir]).poll()[0]
    try:
        set_language("en")
        assert failure_summary(state) == (
            "clear the ATA password left by an interrupted erase (Tabula's password) failed: the drive is "
            "locked with its owner's password: unlock it with that password, then erase again"
        )
        set_language("fr")
        summary = failure_summary(state)
        assert summary.startswith("retirer le mot de passe ATA laissé par un effacement interrompu")
        assert "verrouillé par le mot de passe de son propriétaire" in summary
    finally:
        set_language("en")


def test_a_removed_hidden_area_is_overwritten_to_the_native_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret planted in the HPA (the last 2 MiB, invisible before the step) is overwritten and verified."""
    case = PURGE / "ata-hdd-hpa"
    _use(case, tmp_path, monkeypatch, image=False)
    native = 65536 * 512
    img = tmp_path / "native.img"
    img.write_bytes((PATTERN * (native // len(PATTERN) + 1))[:native])
    monkeypatch.setenv("TABULA_REPLAY_DISK", str(img))
    assert _size(case) < native  # the recorded drive shows only its accessible size
    assert main(["erase", "--policy", "nist-clear", "/dev/sda", "--yes", "--no-cert"]) == 0
    (record,) = _records(tmp_path)
    assert record.outcome.value == "verified" and record.nist_level == "clear"
    (step,) = record.firmware_steps
    assert step.action == "remove-hpa" and step.ok
    assert record.plan.drive.size_bytes == native
    assert all(v.passed and v.bytes_checked == native for v in record.verifications)
    assert img.read_bytes() == bytes(native)  # the formerly hidden tail too


# -- nvme-cli's own sanitize-log shapes --------------------------------------------------------------

# nvme-cli (1.x since 2018, and 2.x) prints SSTAT as an object it decoded, never as the register
# (nvme-print-json.c, json_sanitize_log); the constructed cases above print the register.
NVME_CLI_SSTAT = {
    "global_erased": 1,
    "no_cmplted_passes": 0,
    "status": "(1) Most Recent Sanitize Command Completed Successfully.",
}


def _with_sanitize_log(tmp: Path, stdout: str) -> Path:
    """nvme-sanitize-crypto, with ``stdout`` as the sanitize log the drive prints after the command."""
    case = tmp / "nvme-sanitize-crypto"
    shutil.copytree(PURGE / "nvme-sanitize-crypto", case)
    argv = ("nvme", "sanitize-log", "/dev/nvme0", "-o", "json")
    write_fixture(case / "after-sanitize", CommandResult(argv, 0, stdout))
    return case


def test_a_sanitize_log_in_nvme_cli_json_shape_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = {"/dev/nvme0": {"sprog": 65535, "sstat": NVME_CLI_SSTAT, "cdw10_info": 4, "time_crypto_erase": 10}}
    machine = _with_sanitize_log(tmp_path, json.dumps(log, indent=2) + "\n")
    assert _use(machine, tmp_path, monkeypatch) is not None
    assert main(["erase", "--policy", "nist-purge", "/dev/nvme0n1", "--yes", "--no-cert"]) == 0
    (record,) = _records(tmp_path)
    assert record.outcome.value == "verified" and record.nist_level == "purge"


def test_a_sanitize_log_that_cannot_be_read_fails_the_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    machine = _with_sanitize_log(tmp_path, "Sanitize log: (output of a future nvme-cli)\n")
    img = _use(machine, tmp_path, monkeypatch)
    assert img is not None
    assert main(["erase", "--policy", "nist-purge", "/dev/nvme0n1", "--yes", "--no-cert"]) == 3
    (record,) = _records(tmp_path)
    assert record.outcome.value == "failed" and record.nist_level is None
    (step,) = record.firmware_steps
    assert not step.ok and "cannot tell" in (step.note or ""), step.note
