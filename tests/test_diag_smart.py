"""SMART parsing and self-tests, on smartctl 7.3 JSON recorded from QEMU guests (tests/fixtures/machines)
and from this machine (virtio, tests/fixtures/diag/this-machine).  Variants (a failing attribute, a
running self-test) are derived from those recordings in tmp_path, field by field."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from diagnostics.errors import SelfTestError
from diagnostics.smart import (
    SelfTestNotStarted,
    decode_exit_status,
    parse_report,
    read_smart,
    run_self_test,
    start_self_test,
    wait_self_test,
)
from host.runner import CommandResult, ReplayRunner, write_fixture
from tests.test_diag_helpers import MACHINES, THIS_MACHINE, StagedReplay, ata_row, copy_case, derive


def test_healthy_sata_hdd_reads_passed_with_its_recorded_attributes() -> None:
    rep = read_smart(ReplayRunner(MACHINES / "qemu-sata-hdd"), "/dev/sda")
    assert rep.status == "passed"
    assert rep.protocol == "ATA" and rep.device_type == "sat"
    assert rep.serial == "TBL-HDD-0001" and rep.model == "QEMU HARDDISK"
    assert rep.rotation_rate == 7200
    assert rep.capacity_bytes == 33554432
    a = rep.attributes
    assert a.reallocated_sectors == 0
    assert a.power_on_hours == 1 and a.power_cycles == 0 and a.temperature_c == 31
    # QEMU's ATA disk has no attributes 197/198: not reported means None, never 0.
    assert a.pending_sectors is None and a.offline_uncorrectable is None
    assert a.media_errors is None and a.critical_warning is None
    assert rep.self_test is not None and rep.self_test.supported is True and not rep.self_test.running
    assert rep.self_test.short_minutes == 2 and rep.self_test.long_minutes == 54


def test_healthy_nvme_reads_passed_with_health_log() -> None:
    rep = read_smart(ReplayRunner(MACHINES / "qemu-nvme"), "/dev/nvme0n1")
    assert rep.status == "passed" and rep.protocol == "NVMe"
    a = rep.attributes
    assert (a.critical_warning, a.media_errors, a.percentage_used, a.temperature_c) == (0, 0, 0, 50)
    assert a.reallocated_sectors is None  # not an NVMe attribute


def test_failing_nvme_critical_warning_is_failed_whatever_the_exit_code_says() -> None:
    runner = ReplayRunner(MACHINES / "qemu-nvme-failing")
    rep = read_smart(runner, "/dev/nvme0n1")
    assert rep.status == "failed"
    assert rep.attributes.critical_warning == 4
    assert rep.exit_status == 8
    assert any("reliability degraded" in r for r in rep.reasons)
    assert "SMART status check returned 'DISK FAILING'" in rep.exit_meaning


def test_critical_warning_alone_fails_even_if_smart_status_says_passed(tmp_path: Path) -> None:
    def edit(doc: dict[str, Any]) -> None:
        doc["smart_status"] = {"passed": True, "nvme": {"value": 0}}

    derive(MACHINES / "qemu-nvme-failing" / "smartctl_--json=c_-a_dev_nvme0n1", tmp_path, edit, returncode=0)
    rep = read_smart(ReplayRunner(tmp_path), "/dev/nvme0n1")
    assert rep.status == "failed"


def test_virtio_disk_of_this_machine_is_unknown_never_passed() -> None:
    rep = read_smart(ReplayRunner(THIS_MACHINE), "/dev/vda")
    assert rep.status == "unknown"
    assert rep.exit_status == 1
    assert any("Unable to detect device type" in r for r in rep.reasons)


def test_usb_bridge_is_unknown_never_passed() -> None:
    rep = read_smart(ReplayRunner(MACHINES / "qemu-usb"), "/dev/sda")
    assert rep.status == "unknown" and rep.protocol is None
    assert any("Unknown USB bridge" in r for r in rep.reasons)
    assert rep.attributes.power_on_hours is None


def test_scsi_disk_without_smart_support_is_unknown_never_passed() -> None:
    rep = read_smart(ReplayRunner(MACHINES / "qemu-scsi"), "/dev/sda")
    assert rep.status == "unknown"
    assert rep.smart_available is False and rep.protocol == "SCSI"
    assert rep.model == "QEMU QEMU HARDDISK" and rep.serial == "TBL-SCSI-0001"
    assert rep.attributes.temperature_c is None  # the device reports 0 C: no sensor
    assert any("does not support SMART" in r for r in rep.reasons)


def test_attribute_at_threshold_now_is_failed(tmp_path: Path) -> None:
    def edit(doc: dict[str, Any]) -> None:
        row = ata_row(doc, 5)
        row["value"], row["when_failed"] = 30, "now"
        row["raw"] = {"value": 3000, "string": "3000"}

    derive(MACHINES / "qemu-sata-hdd" / "smartctl_--json=c_-a_dev_sda", tmp_path, edit, returncode=16)
    rep = read_smart(ReplayRunner(tmp_path), "/dev/sda")
    assert rep.status == "failed"
    assert rep.failing_attributes == ("Reallocated_Sector_Ct (id 5)",)
    assert rep.attributes.reallocated_sectors == 3000


def test_vendor_packed_raw_values_are_masked_and_ssd_wear_is_read(tmp_path: Path) -> None:
    def edit(doc: dict[str, Any]) -> None:
        ata_row(doc, 197)["raw"] = {"value": (7 << 32) | 3, "string": "3"}
        ata_row(doc, 177)["value"] = 83  # Wear_Leveling_Count: 83 % life left
        ata_row(doc, 194)["raw"] = {"value": (45 << 16) | 36, "string": "36 (Min/Max 20/45)"}
        del doc["temperature"]

    derive(MACHINES / "qemu-sata-hdd" / "smartctl_--json=c_-a_dev_sda", tmp_path, edit)
    a = read_smart(ReplayRunner(tmp_path), "/dev/sda").attributes
    assert a.pending_sectors == 3
    assert a.percentage_used == 17
    assert a.temperature_c == 36


@pytest.mark.parametrize("stdout", ["", "smartctl 6.2 text only\n", "[1, 2]"])
def test_output_that_is_not_a_json_document_is_unknown(stdout: str) -> None:
    rep = parse_report("/dev/sdz", CommandResult(("smartctl",), 0, stdout, "boom"))
    assert rep.status == "unknown"


def test_exit_status_bits_are_decoded() -> None:
    assert decode_exit_status(0) == []
    assert decode_exit_status(8 | 64) == [
        "SMART status check returned 'DISK FAILING'",
        "the device error log contains records of errors",
    ]
    assert decode_exit_status(-9) == ["smartctl was killed by signal 9"]


# --------------------------------------------------------------------------- self-tests


def test_ata_short_self_test_is_confirmed_from_the_log_and_passes() -> None:
    base = MACHINES / "qemu-sata-hdd"
    runner = StagedReplay(base, {("smartctl", "-t", "short", "/dev/sda"): base / "after-short"})
    seen: list[int | None] = []
    out = run_self_test(runner, "/dev/sda", "short", poll_interval=0, on_progress=seen.append)
    assert out.status == "passed", out.reason
    assert out.entry is not None and out.entry.kind == "Short offline" and out.entry.lifetime_hours == 4660
    assert ("smartctl", "-t", "short", "/dev/sda") in runner.log


def test_nvme_short_self_test_that_exits_0_but_starts_nothing_is_unknown() -> None:
    base = MACHINES / "qemu-nvme"
    runner = StagedReplay(base, {("smartctl", "-t", "short", "/dev/nvme0n1"): base / "after-short"})
    out = run_self_test(runner, "/dev/nvme0n1", "short", poll_interval=0)
    assert out.status == "unknown"
    assert "exited 0" in out.reason and "shows no short test" in out.reason
    with pytest.raises(SelfTestNotStarted):
        start_self_test(StagedReplay(base, {}), "/dev/nvme0n1", "short")


def _running_stage(tmp_path: Path) -> tuple[StagedReplay, Path]:
    """sata-hdd as recorded, then (derived) a short test at 90 % remaining, then (derived) aborted."""
    base = copy_case("qemu-sata-hdd", tmp_path / "base")
    src = MACHINES / "qemu-sata-hdd" / "smartctl_--json=c_-a_dev_sda"

    def running(doc: dict[str, Any]) -> None:
        doc["ata_smart_data"]["self_test"]["status"] = {
            "value": 249,
            "string": "in progress, 90% remaining",
            "remaining_percent": 90,
        }

    def aborted(doc: dict[str, Any]) -> None:
        doc["ata_smart_self_test_log"]["standard"].update(
            count=1,
            table=[
                {
                    "type": {"value": 1, "string": "Short offline"},
                    "status": {"value": 16, "string": "Aborted by host"},
                    "lifetime_hours": 1,
                }
            ],
        )

    derive(src, tmp_path / "running", running)
    derive(src, tmp_path / "aborted", aborted)
    # smartctl -X prints text we do not parse; constructed, smartctl 7.3 style.
    write_fixture(base, CommandResult(("smartctl", "-X", "/dev/sda"), 0, "Self-testing aborted!\n"))
    runner = StagedReplay(
        base,
        {
            ("smartctl", "-t", "short", "/dev/sda"): tmp_path / "running",
            ("smartctl", "-X", "/dev/sda"): tmp_path / "aborted",
        },
    )
    return runner, base


def test_cancel_aborts_the_running_self_test_and_reports_unknown(tmp_path: Path) -> None:
    runner, _ = _running_stage(tmp_path)
    before = start_self_test(runner, "/dev/sda", "short")
    cancel = threading.Event()
    progress: list[int | None] = []

    def on_progress(pct: int | None) -> None:
        progress.append(pct)
        cancel.set()

    out = wait_self_test(
        runner, "/dev/sda", "short", before, cancel=cancel, poll_interval=0, on_progress=on_progress
    )
    assert progress == [90]
    assert out.status == "unknown" and out.reason.startswith("cancelled")
    assert ("smartctl", "-X", "/dev/sda") in runner.log


def test_timeout_aborts_too(tmp_path: Path) -> None:
    runner, _ = _running_stage(tmp_path)
    before = start_self_test(runner, "/dev/sda", "short")
    ticks = iter(range(0, 10_000, 100))
    out = wait_self_test(
        runner, "/dev/sda", "short", before, timeout=150, poll_interval=0, clock=lambda: next(ticks)
    )
    assert out.status == "unknown" and "timed out" in out.reason
    assert runner.log[-2] == ("smartctl", "-X", "/dev/sda")


def test_a_second_test_is_refused_while_one_runs(tmp_path: Path) -> None:
    runner, _ = _running_stage(tmp_path)
    start_self_test(runner, "/dev/sda", "short")
    with pytest.raises(SelfTestError, match="already running"):
        start_self_test(runner, "/dev/sda", "short")


def test_self_test_on_a_device_without_smart_is_unknown() -> None:
    out = run_self_test(ReplayRunner(THIS_MACHINE), "/dev/vda", "short", poll_interval=0)
    assert out.status == "unknown"


@pytest.mark.parametrize("version", [[0, 1], [2, 0], None])
def test_an_unknown_json_format_version_is_unknown_never_passed(
    version: list[int] | None, tmp_path: Path
) -> None:
    """smartctl 6.7 printed an experimental JSON (format 0.1); a future smartctl may print 2.x."""

    def edit(doc: dict[str, Any]) -> None:
        if version is None:
            del doc["json_format_version"]
        else:
            doc["json_format_version"] = version

    derive(MACHINES / "qemu-sata-hdd" / "smartctl_--json=c_-a_dev_sda", tmp_path, edit, returncode=0)
    rep = read_smart(ReplayRunner(tmp_path), "/dev/sda")
    assert rep.status == "unknown"
    assert "JSON format version" in rep.reasons[0] and "cannot tell" in rep.reasons[0]
    assert rep.model is None and rep.self_test is None
    with pytest.raises(SelfTestError, match="no self-test information"):
        start_self_test(ReplayRunner(tmp_path), "/dev/sda", "short")
