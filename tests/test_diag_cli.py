"""``station diagnose`` through diagnostics.cli.run: on recorded machines, and on this machine for real
(read-only: SMART through smartctl, inventory, CPU and RAM tests; no drive read in tests)."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from diagnostics import cli
from diagnostics.diagnose import Bounds
from host.runner import ReplayRunner, SubprocessRunner
from tests.test_diag_helpers import LAPTOP, MACHINES

SMALL = Bounds(
    cpu_seconds=0.3,
    ram_bytes=16 << 20,
    ram_seconds=10,
    read_bytes=1 << 20,
    read_seconds=1,
    battery_seconds=0.05,
    self_test=None,
)


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="station")
    sub = p.add_subparsers()
    cli.register(sub)
    return p.parse_args(["diagnose", *argv])


def run_json(argv: list[str], **kw: object) -> tuple[int, dict[str, object], str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.run(parse(["--json", *argv]), out=out, err=err, bounds=kw.pop("bounds", SMALL), **kw)  # type: ignore[arg-type]
    return code, (json.loads(out.getvalue()) if out.getvalue() else {}), err.getvalue()


def test_parser_options() -> None:
    a = parse(
        ["--drives-only", "--full", "--device", "/dev/sda", "--device", "/dev/sdb", "--rules", "r.toml"]
    )
    assert (a.drives_only, a.mode, a.device, a.rules, a.json) == (
        True,
        "full",
        ["/dev/sda", "/dev/sdb"],
        "r.toml",
        False,
    )
    assert parse([]).mode == "quick"
    with pytest.raises(SystemExit):
        parse(["--quick", "--full"])


def test_recorded_healthy_sata_laptop_with_worn_battery_needs_repair() -> None:
    code, rep, _ = run_json(
        ["--no-read-test"],
        runner=ReplayRunner(MACHINES / "qemu-sata-hdd"),
        sys_root=LAPTOP / "sys",
        proc_root=LAPTOP / "proc",
    )
    assert code == cli.EXIT_NEEDS_WORK
    drives = rep["drives"]
    assert isinstance(drives, list) and [d["verdict"] for d in drives] == ["reuse"]
    machine = rep["machine"]
    assert isinstance(machine, dict) and machine["verdict"] == "repair"
    assert any("battery_wear_percent = 45 > 40" in r for r in machine["reasons"])
    tests = {t["name"]: t["status"] for t in rep["tests"]}  # type: ignore[attr-defined]
    assert tests == {"cpu": "pass", "ram": "pass", "battery": "pass"}


def test_drives_only_on_the_failing_nvme_is_recycle_and_exit_3() -> None:
    code, rep, _ = run_json(
        ["--drives-only", "--no-read-test"], runner=ReplayRunner(MACHINES / "qemu-nvme-failing")
    )
    assert code == cli.EXIT_NEEDS_WORK
    assert rep["overall"] == "recycle" and rep["machine"] is None and rep["inventory"] is None
    assert rep["tests"] == []


def test_drives_only_healthy_nvme_exit_0() -> None:
    code, rep, _ = run_json(
        ["--drives-only", "--no-read-test", "--device", "/dev/nvme0n1"],
        runner=ReplayRunner(MACHINES / "qemu-nvme"),
        check_devices=False,
    )
    assert code == cli.EXIT_OK and rep["overall"] == "reuse"


def test_full_mode_runs_a_confirmed_self_test_on_the_recorded_sata_disk() -> None:
    from tests.test_diag_helpers import StagedReplay

    base = MACHINES / "qemu-sata-hdd"
    runner = StagedReplay(base, {("smartctl", "-t", "short", "/dev/sda"): base / "after-short"})
    b = Bounds(0.1, 1 << 20, 1, 1 << 20, 1, 0, "short")
    code, rep, _ = run_json(["--drives-only", "--full", "--no-read-test"], runner=runner, bounds=b)
    (drive,) = rep["drives"]  # type: ignore[misc]
    assert drive["self_test"]["status"] == "passed"
    assert code == cli.EXIT_OK


def test_bad_rules_and_bad_device_are_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "r.toml"
    bad.write_text("version = 7\n")
    code, _, err = run_json(["--rules", str(bad)], runner=ReplayRunner(MACHINES / "qemu-nvme"))
    assert code == cli.EXIT_BAD_INPUT and "unsupported rules version" in err
    code, _, err = run_json(["--device", str(tmp_path)], runner=ReplayRunner(MACHINES / "qemu-nvme"))
    assert code == cli.EXIT_BAD_INPUT and "not a block device" in err


def test_human_output_names_verdicts_and_unknowns() -> None:
    out = io.StringIO()
    code = cli.run(
        parse(["--no-read-test"]),
        runner=ReplayRunner(MACHINES / "qemu-scsi"),
        out=out,
        err=io.StringIO(),
        bounds=SMALL,
        sys_root=LAPTOP / "sys",
        proc_root=LAPTOP / "proc",
    )
    text = out.getvalue()
    assert "SMART UNKNOWN  -> unknown" in text
    assert "Machine verdict: repair" in text  # the worn battery; the unknown drive stays listed
    assert "unknown: drive /dev/sda" in text
    assert code == cli.EXIT_NEEDS_WORK


def test_this_machine_for_real_gives_an_honest_report() -> None:
    runner = SubprocessRunner()
    if not runner.which("smartctl"):
        pytest.skip("smartctl not installed")
    code, rep, _ = run_json(["--no-read-test"], runner=runner)
    assert code in (cli.EXIT_OK, cli.EXIT_NEEDS_WORK, cli.EXIT_UNKNOWN)
    for d in rep["drives"]:  # type: ignore[attr-defined]
        smart = rep["smart"][d["device"]]  # type: ignore[index]
        if d["status"] == "passed":
            assert any("PASSED" in r for r in smart["reasons"])
        if d["device"].startswith("/dev/vd"):  # virtio cannot report SMART
            assert d["status"] == "unknown" and d["verdict"] == "unknown"
    tests = {t["name"]: t for t in rep["tests"]}  # type: ignore[attr-defined]
    assert tests["cpu"]["status"] == "pass" and tests["ram"]["status"] == "pass"
    inv = rep["inventory"]
    assert isinstance(inv, dict) and inv["cpu"]["threads"] >= 1
    # Whatever could not be read is said, not guessed.
    for key, value in inv["system"].items():
        if key in ("manufacturer", "model", "serial") and value is None:
            assert "system" in inv["unavailable"] or f"system.{key}" in inv["unavailable"]
