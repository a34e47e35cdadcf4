"""The purge plans of every recorded machine, pinned: refactoring the planner or the probe must not
change one of them.

For every fixture machine (``tests/fixtures/machines``, ``tests/fixtures/purge``), every drive, both
policies and a few option sets, the plan (or the refusal) is compared with
``tests/fixtures/purge_plans.json``.  A deliberate change of plans is recorded with
``TABULA_UPDATE_GOLDEN=1 pytest tests/test_purge_golden.py`` and reviewed in the diff.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from erase.purge.errors import PurgeError
from erase.purge.machine import ReplayMachine
from erase.purge.planner import POLICIES, PlanOptions, plan_purge
from erase.purge.probe import Capabilities, probe
from host.identity import DriveInfo

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = FIXTURES / "purge_plans.json"
MACHINES = sorted(
    p
    for base in (FIXTURES / "machines", FIXTURES / "purge")
    for p in base.iterdir()
    if p.is_dir() and (p / "lsblk_-J_-b_-O").exists()
)
OPTIONS = {
    "default": PlanOptions(),
    "unfreeze": PlanOptions(unfreeze_suspend=True),
    "usb-ata": PlanOptions(allow_usb_ata=True),
    "psid": PlanOptions(psid="PSID0123456789ABCDEF0123456789AB"),
    "three-passes": PlanOptions(overwrite_passes=3),
}


def plans_of(machine_dir: Path) -> dict[str, Any]:
    """Per drive and recorded state (the initial one, then each ``after-*`` one): its capabilities
    and its plans."""
    out: dict[str, Any] = {}
    for state in [None, *sorted(p.name for p in machine_dir.glob("after-*") if p.is_dir())]:
        machine = ReplayMachine(machine_dir)
        machine.runner._set_state(state)
        for drive in machine.drives():
            out[f"{drive.path} {state or 'initial'}"] = drive_plans(machine, drive)
            if state is None:
                caps = probe(drive, machine.runner, sysfs=None)
                for name, variant in variants(drive, caps).items():
                    out[f"{drive.path} variant {name}"] = {
                        key: plan_or_refusal(drive, variant, "nist-purge", OPTIONS[key])
                        for key in ("default", "unfreeze")
                    }
    return out


def variants(drive: DriveInfo, caps: Capabilities) -> dict[str, Capabilities]:
    """The recorded capabilities changed where drives in the field differ: every rule's other side."""
    out = {
        "no-tools": replace(caps, tools={t: False for t in caps.tools}),
        "other-media": replace(caps, flash=not caps.flash),
    }
    if caps.ata is not None:
        sec = caps.ata.security
        out["usb-bridge"] = replace(caps, protocol="usb", usb_bridge_sat=True)
        out["usb-no-sat"] = replace(caps, protocol="usb", usb_bridge_sat=False)
        out["frozen"] = replace(
            caps, ata=replace(caps.ata, security=replace(sec, supported=True, frozen=True))
        )
        out["expired"] = replace(
            caps, ata=replace(caps.ata, security=replace(sec, supported=True, count_expired=True))
        )
        out["locked"] = replace(
            caps, ata=replace(caps.ata, security=replace(sec, supported=True, enabled=True, locked=True))
        )
        out["all-sanitize"] = replace(
            caps,
            ata=replace(
                caps.ata, sanitize=True, sanitize_crypto=True, sanitize_block=True, sanitize_overwrite=True
            ),
        )
    if caps.hpa is not None:
        native = caps.hpa.native
        out["dco"] = replace(caps, hpa=replace(caps.hpa, current=native - 8), dco_real_max=native + 1024)
        out["dco-usb"] = replace(out["dco"], protocol="usb", usb_bridge_sat=False)
        out["hpa-usb"] = replace(caps, hpa=replace(caps.hpa, current=native - 8), protocol="usb")
    if caps.nvme_ctrl is not None:
        out["namespaces-unknown"] = replace(caps, nvme_namespaces=None)
        out["two-namespaces"] = replace(caps, nvme_namespaces=2)
        out["other-controller"] = replace(caps, nvme_ctrl=replace(caps.nvme_ctrl, serial="SOMEONE-ELSE"))
        out["format-all"] = replace(caps, nvme_ctrl=replace(caps.nvme_ctrl, fna=caps.nvme_ctrl.fna | 1))
    if caps.scsi is not None:
        out["scsi-all"] = replace(
            caps, scsi=replace(caps.scsi, reported=True, sanitize_crypto=True, sanitize_block=True)
        )
    if caps.protocol in ("scsi", "none"):
        out["as-ata"] = replace(caps, protocol="ata")
    return out


def plan_or_refusal(drive: DriveInfo, caps: Capabilities, policy: str, options: PlanOptions) -> Any:
    try:
        plan = plan_purge(drive, caps, policy, options).to_dict()
    except PurgeError as exc:
        return {"refused": type(exc).__name__, "message": exc.message, "hint": exc.hint}
    plan.pop("capabilities")
    return plan


def drive_plans(machine: ReplayMachine, drive: DriveInfo) -> dict[str, Any]:
    caps = probe(drive, machine.runner, sysfs=None)
    plans: dict[str, Any] = {}
    for policy in POLICIES:
        for name, options in OPTIONS.items():
            plans[f"{policy} {name}"] = plan_or_refusal(drive, caps, policy, options)
    return {"capabilities": caps.to_dict(), "plans": plans}


def current() -> dict[str, Any]:
    return {d.name: plans_of(d) for d in MACHINES}


def test_fixture_machines_are_found() -> None:
    assert len(MACHINES) >= 20


@pytest.mark.parametrize("machine_dir", MACHINES, ids=[d.name for d in MACHINES])
def test_plans_are_unchanged(machine_dir: Path) -> None:
    if os.environ.get("TABULA_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(current(), indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    # Through JSON, as the plan is journalled: tuples and lists compare alike.
    assert json.loads(json.dumps(plans_of(machine_dir))) == golden[machine_dir.name]
