"""Grading with the shipped rules on each recorded case, and rule-file validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diagnostics.errors import RulesError
from diagnostics.grading import default_rules_text, grade_machine, load_rules, parse_rules
from diagnostics.health import drive_health
from host.runner import ReplayRunner
from tests.test_diag_helpers import MACHINES, THIS_MACHINE, ata_row, derive

RULES = load_rules()


def test_healthy_sata_hdd_is_reuse_with_its_unreported_attributes_listed() -> None:
    h = drive_health("/dev/sda", ReplayRunner(MACHINES / "qemu-sata-hdd"))
    d = h.to_dict()
    assert d["status"] == "passed" and d["verdict"] == "reuse" and d["verdict_reasons"] == []
    assert "pending_sectors" in d["unknowns"]  # QEMU's disk has no attribute 197
    assert d["attributes"]["reallocated_sectors"] == 0
    assert "media_errors" not in d["attributes"]  # NVMe-only: not applicable
    json.dumps(d)  # certificates embed it


def test_healthy_sata_ssd_and_nvme_are_reuse() -> None:
    assert drive_health("/dev/sda", ReplayRunner(MACHINES / "qemu-sata-ssd")).verdict.verdict == "reuse"
    h = drive_health("/dev/nvme0n1", ReplayRunner(MACHINES / "qemu-nvme"))
    assert h.verdict.verdict == "reuse" and h.verdict.unknowns == ()


def test_failing_nvme_is_recycle() -> None:
    h = drive_health("/dev/nvme0n1", ReplayRunner(MACHINES / "qemu-nvme-failing"))
    assert h.status == "failed" and h.verdict.verdict == "recycle"
    assert any("critical_warning = 4 > 0" in r for r in h.verdict.reasons)


@pytest.mark.parametrize(
    ("runner_dir", "device"),
    [
        (THIS_MACHINE, "/dev/vda"),
        (MACHINES / "qemu-scsi", "/dev/sda"),
        (MACHINES / "qemu-usb", "/dev/sda"),
        (MACHINES / "qemu-scsi-lsi", "/dev/sda"),
    ],
)
def test_drives_without_smart_are_listed_unknown_never_reuse(runner_dir: Path, device: str) -> None:
    d = drive_health(device, ReplayRunner(runner_dir)).to_dict()
    assert d["status"] == "unknown" and d["verdict"] == "unknown"
    assert "smart_health" in d["unknowns"]


@pytest.mark.parametrize(
    ("raw", "verdict"),
    [(0, "reuse"), (5, "reuse"), (6, "repair"), (50, "repair"), (51, "recycle")],
)
def test_reallocated_sector_thresholds(tmp_path: Path, raw: int, verdict: str) -> None:
    def edit(doc: dict[str, object]) -> None:
        ata_row(doc, 5)["raw"] = {"value": raw, "string": str(raw)}  # type: ignore[arg-type]

    derive(MACHINES / "qemu-sata-hdd" / "smartctl_--json=c_-a_dev_sda", tmp_path, edit)
    h = drive_health("/dev/sda", ReplayRunner(tmp_path))
    assert h.status == "passed" and h.verdict.verdict == verdict
    if verdict == "recycle":
        assert len([r for r in h.verdict.reasons if "reallocated" in r]) == 1  # worst limit only


def test_a_custom_rule_file_changes_the_verdict(tmp_path: Path) -> None:
    text = default_rules_text().replace('smart_unknown = "unknown"', 'smart_unknown = "repair"')
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text(text)
    rules = load_rules(rules_file)
    h = drive_health("/dev/vda", ReplayRunner(THIS_MACHINE), rules=rules)
    assert h.verdict.verdict == "repair" and "smart_health" in h.verdict.unknowns


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("version = 1", "version = 2"), "unsupported rules version"),
        (lambda t: t.replace('smart_failed = "recycle"', 'smart_failed = "bin"'), "verdict must be one of"),
        (lambda t: t.replace('fact = "pending_sectors"', 'fact = "pending"'), "unknown fact 'pending'"),
        (lambda t: t.replace("max = 0\nverdict", "verdict", 1), "give 'max' or 'min'"),
        (lambda t: t.replace('self_test_failed = "recycle"\n', ""), "missing keys ['self_test_failed']"),
        (lambda t: t + "\n[extra]\n", "unknown top-level keys"),
        (lambda t: t + "\n[[[", "not valid TOML"),
    ],
)
def test_bad_rule_files_are_refused_with_the_reason(edit: object, message: str) -> None:
    with pytest.raises(RulesError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        parse_rules(edit(default_rules_text()))  # type: ignore[operator]


def test_missing_rule_file_is_a_rules_error(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read rule file"):
        load_rules(tmp_path / "nope.toml")


def test_machine_grading() -> None:
    # A laptop whose battery lost 45 %: repair.  Its failing drive: repair (replace the drive).
    v = grade_machine(
        RULES,
        facts={"battery_wear_percent": 45.0, "battery_cycle_count": 412, "ram_total_gib": 15.5},
        drives={"/dev/nvme0n1": "recycle"},
        tests={"cpu": "pass", "ram": "pass", "battery": "pass"},
        portable=True,
        battery_count=1,
    )
    assert v.verdict == "repair"
    assert any("battery_wear_percent = 45 > 40" in r for r in v.reasons)
    assert any("/dev/nvme0n1 must be recycled" in r for r in v.reasons)
    # Wrong computations: recycle the machine.
    assert grade_machine(
        RULES, facts={}, drives={}, tests={"cpu": "fail"}, portable=False, battery_count=0
    ).verdict == ("recycle")
    # A laptop without a battery needs one.
    v = grade_machine(RULES, facts={}, drives={}, tests={}, portable=True, battery_count=0)
    assert v.verdict == "repair"
    # A desktop with a healthy drive and no battery: reuse, nothing unknown.
    v = grade_machine(
        RULES,
        facts={"ram_total_gib": 8.0, "cpu_max_temperature_c": 70.0, "cpu_throttle_events": 0.0},
        drives={"/dev/sda": "reuse"},
        tests={"cpu": "pass", "ram": "pass", "battery": "unknown"},
        portable=False,
        battery_count=0,
    )
    assert v.verdict == "reuse" and v.unknowns == ()
    # Unknown drive + unknown chassis: unknown, and both listed.
    v = grade_machine(
        RULES,
        facts={"ram_total_gib": 8.0},
        drives={"/dev/vda": "unknown"},
        tests={},
        portable=None,
        battery_count=0,
    )
    assert v.verdict == "unknown" and "drive /dev/vda" in v.unknowns
    assert "battery (none found, chassis type unknown)" in v.unknowns
