"""Helpers for the diagnostics tests: recorded machines, staged replays, derived recordings."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from host.runner import CommandResult, ReplayRunner, fixture_name, read_fixture, write_fixture

ROOT = Path(__file__).resolve().parent
MACHINES = ROOT / "fixtures" / "machines"
DIAG = ROOT / "fixtures" / "diag"
THIS_MACHINE = DIAG / "this-machine"
LAPTOP = DIAG / "sysfs-laptop"
LAPTOP_CHARGE = DIAG / "sysfs-laptop-charge"


@dataclass
class StagedReplay:
    """A ReplayRunner whose answers change after given commands, as a real drive's do.

    ``stages`` maps an argv (tuple) to a directory of recordings that override the base ones once
    that argv has been run (e.g. ``smartctl -t short`` -> ``after-short/``).
    """

    base: Path
    stages: dict[tuple[str, ...], Path] = field(default_factory=dict)
    overlay: Path | None = None
    log: list[tuple[str, ...]] = field(default_factory=list)

    def which(self, tool: str) -> bool:
        return ReplayRunner(self.base).which(tool)

    def run(self, argv: Sequence[str], *, timeout: float = 60.0, mutating: bool = False) -> CommandResult:
        args = tuple(argv)
        self.log.append(args)
        result: CommandResult | None = None
        if self.overlay is not None and (self.overlay / fixture_name(args)).exists():
            result = read_fixture(self.overlay / fixture_name(args))
        if result is None:
            result = ReplayRunner(self.base).run(args, timeout=timeout, mutating=mutating)
        if args in self.stages:
            self.overlay = self.stages[args]
        return result


def derive(
    source: Path, target_dir: Path, edit: Callable[[dict[str, Any]], None], *, returncode: int | None = None
) -> Path:
    """Write a copy of a recorded smartctl JSON fixture with ``edit`` applied (a derived recording)."""
    rec = read_fixture(source)
    doc = json.loads(rec.stdout)
    edit(doc)
    rc = rec.returncode if returncode is None else returncode
    doc.setdefault("smartctl", {})["exit_status"] = rc
    return write_fixture(
        target_dir, CommandResult(argv=rec.argv, returncode=rc, stdout=json.dumps(doc), stderr=rec.stderr)
    )


def copy_case(case: str, target: Path) -> Path:
    """Copy a recorded machine's top-level recordings into ``target`` (to derive variants from)."""
    target.mkdir(parents=True, exist_ok=True)
    for p in (MACHINES / case).iterdir():
        if p.is_file() and p.name != "machine.json":
            (target / p.name).write_bytes(p.read_bytes())
    return target


def ata_row(doc: dict[str, Any], attr_id: int) -> dict[str, Any]:
    for row in doc["ata_smart_attributes"]["table"]:
        if row["id"] == attr_id:
            return row  # type: ignore[no-any-return]
    row = {
        "id": attr_id,
        "name": f"Attr_{attr_id}",
        "value": 100,
        "worst": 100,
        "thresh": 0,
        "when_failed": "",
        "raw": {"value": 0, "string": "0"},
    }
    doc["ata_smart_attributes"]["table"].append(row)
    return row


def test_staged_replay_switches_recordings_after_the_staging_command() -> None:
    base = MACHINES / "qemu-sata-hdd"
    runner = StagedReplay(base, {("smartctl", "-t", "short", "/dev/sda"): base / "after-short"})
    argv = ["smartctl", "--json=c", "-a", "/dev/sda"]
    before = json.loads(runner.run(argv).stdout)
    runner.run(["smartctl", "-t", "short", "/dev/sda"])
    after = json.loads(runner.run(argv).stdout)
    assert before["ata_smart_self_test_log"]["standard"]["count"] == 0
    assert after["ata_smart_self_test_log"]["standard"]["count"] == 1
