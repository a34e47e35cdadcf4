"""Record real tool outputs from emulated drives as fixtures: ``python3 -m tests.qemu.record``.

Each case is one boot of the lab guest with exactly one disk, so its directory under
``tests/fixtures/machines/<case>/`` is a consistent fake machine for ``ReplayRunner``: its lsblk,
``smartctl --scan-open`` and ``nvme list`` show that disk and no other.  Commands that change the
drive's state run last; what they left behind is recorded in a sub-directory (``after-short/``,
``after-format/``, ...) because the same argv answers differently there.  Mutating commands only
ever touch the disk image this module created in a temporary directory, filled with a known
pattern beforehand and checked on the host afterwards; the finding goes into ``machine.json``.

``--case NAME`` (repeatable) records only some cases; ``--list`` shows them.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from erase.purge.probe import level0_argvs
from host.errors import TabulaError
from host.runner import CommandResult, fixture_name, write_fixture
from tests.qemu.build import build
from tests.qemu.guest import BUS, DiskKind, DiskSpec, GuestError, boot, ctrl_arg, disk_arg, make_image
from tests.qemu.guest import pattern_coverage as coverage

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "machines"
IMAGE_SIZE = 32 << 20
PATTERN = b"TABULA-LAB-PATTERN-0123456789ab\n"  # 32 bytes; a 4 KiB block holds it 128 times


@dataclass(frozen=True)
class Step:
    argv: tuple[str, ...]
    subdir: str = ""  # fixture sub-directory: the state of the drive after earlier steps
    mutating: bool = False
    timeout: int = 120
    record: bool = True


@dataclass(frozen=True)
class Case:
    name: str
    kind: DiskKind
    serial: str
    model: str
    description: str
    steps: tuple[Step, ...]


def _s(*argv: str, subdir: str = "", mutating: bool = False, timeout: int = 120) -> Step:
    return Step(tuple(argv), subdir=subdir, mutating=mutating, timeout=timeout)


def _sleep(seconds: int) -> Step:
    return Step(("sleep", str(seconds)), record=False)


def _machine_steps() -> list[Step]:
    return [
        _s("lsblk", "-J", "-b", "-O"),
        _s("dmidecode"),
        _s("smartctl", "--scan-open", "--json=c"),
    ]


def _smart_steps(d: str) -> list[Step]:
    return [
        _s("smartctl", "--json=c", "-a", d),
        _s("smartctl", "-a", d),
        _s("smartctl", "-i", d),
        _s("smartctl", "--json=c", "-i", d),
        _s("smartctl", "--json=c", "-x", d),
        _s("smartctl", "--json=c", "-l", "selftest", d),
    ]


def _scsi_steps(d: str) -> list[Step]:
    return [
        _s("sg_inq", d),
        _s("sg_readcap", "-l", d),
        _s("sg_opcodes", d),
        _s("sg_vpd", d),
        _s("sg_vpd", "-p", "di", d),
        _s("sg_vpd", "-p", "sn", d),
    ]


def _ata_steps(d: str) -> list[Step]:
    return [
        _s("hdparm", "-I", d),
        _s("hdparm", "-N", d),
        _s("hdparm", "--dco-identify", d),
        _s("hdparm", "--sanitize-status", d),
    ]


def _level0_steps(protocol: str, d: str) -> list[Step]:
    """TCG Level 0 discovery as the probe asks it without sedutil-cli (QEMU's drives refuse it)."""
    return [_s(*argv) for argv in level0_argvs(protocol, d)]


def _short_test(d: str) -> list[Step]:
    return [
        _s("smartctl", "-t", "short", d, mutating=True),
        _sleep(5),
        _s("smartctl", "--json=c", "-l", "selftest", d, subdir="after-short"),
        _s("smartctl", "--json=c", "-a", d, subdir="after-short"),
    ]


def _sata_case(name: str, kind: DiskKind, serial: str, model: str, description: str) -> Case:
    d = disk_arg(serial)
    steps = [*_machine_steps(), *_smart_steps(d), *_ata_steps(d), *_scsi_steps(d), *_level0_steps("ata", d)]
    steps += _short_test(d)
    if kind == "sata-hdd":
        steps += [
            # ATA security: QEMU has no security feature set; hdparm still exits 0.
            _s("hdparm", "--user-master", "u", "--security-set-pass", "p", d, mutating=True),
            _s("hdparm", "-I", d, subdir="after-security-set-pass"),
            _s("hdparm", "--user-master", "u", "--security-erase", "p", d, mutating=True),
            _s("hdparm", "--user-master", "u", "--security-erase-enhanced", "p", d, mutating=True),
            # HPA: SET MAX ADDRESS is aborted by QEMU; hdparm still exits 0.
            _s("hdparm", "--yes-i-know-what-i-am-doing", "-N", "32768", d, mutating=True),
            _s("hdparm", "-N", d, subdir="after-hpa-set"),
            _s("hdparm", "--yes-i-know-what-i-am-doing", "--sanitize-block-erase", d, mutating=True),
        ]
    else:
        steps += [
            _s("blkdiscard", d, mutating=True),
        ]
    return Case(name, kind, serial, model, description, tuple(steps))


def _nvme_case(name: str, kind: DiskKind, serial: str, description: str, mutate: bool) -> Case:
    d = disk_arg(serial)
    c = ctrl_arg(serial)
    steps = [
        *_machine_steps(),
        _s("nvme", "list", "-o", "json"),
        *_smart_steps(d),
        _s("nvme", "id-ctrl", c, "-o", "json"),
        _s("nvme", "id-ctrl", d, "-o", "json"),
        _s("nvme", "id-ns", d, "-o", "json"),
        _s("nvme", "smart-log", c, "-o", "json"),
        _s("nvme", "smart-log", d, "-o", "json"),
        _s("nvme", "sanitize-log", c, "-o", "json"),
        _s("nvme", "self-test-log", c, "-o", "json"),
        _s("nvme", "error-log", c, "-o", "json"),
        *_level0_steps("nvme", c),
    ]
    if mutate:
        steps += [
            *_short_test(d),
            _s("nvme", "device-self-test", c, "-s", "1", mutating=True),
            _s("nvme", "sanitize", c, "-a", "2", mutating=True),
            _s("nvme", "sanitize-log", c, "-o", "json", subdir="after-sanitize"),
            _s("nvme", "format", d, "--ses=1", "--force", mutating=True),
            _s("nvme", "id-ns", d, "-o", "json", subdir="after-format"),
        ]
    return Case(name, kind, serial, "", description, tuple(steps))


def _scsi_case(name: str, kind: DiskKind, serial: str, description: str) -> Case:
    d = disk_arg(serial)
    steps = [
        *_machine_steps(),
        *_smart_steps(d),
        *_scsi_steps(d),
        _s("hdparm", "-I", d),
        *_level0_steps("scsi", d),
        _s("sg_format", "--format", d, mutating=True, timeout=300),
        _s("sg_format", "--format", "--quick", d, mutating=True, timeout=300),
        _s("sg_sanitize", "--quick", "--overwrite", "--zero", d, mutating=True),
        _s("sg_sanitize", "--quick", "--block", d, mutating=True),
        _s("sg_sanitize", "--quick", "--crypto", d, mutating=True),
    ]
    return Case(name, kind, serial, "", description, tuple(steps))


def _usb_case() -> Case:
    d = disk_arg("TBL-USB-0001")
    steps = [
        *_machine_steps(),
        *_smart_steps(d),
        _s("smartctl", "-d", "sat", "--json=c", "-a", d),
        _s("hdparm", "-I", d),
        _s("sg_inq", d),
        _s("sg_readcap", "-l", d),
        *_level0_steps("usb", d),
    ]
    return Case(
        "qemu-usb",
        "usb",
        "TBL-USB-0001",
        "",
        "USB mass-storage disk (qemu-xhci + usb-storage); no SAT bridge: SMART unreachable",
        tuple(steps),
    )


CASES: dict[str, Case] = {
    c.name: c
    for c in [
        _sata_case(
            "qemu-sata-hdd",
            "sata-hdd",
            "TBL-HDD-0001",
            "QEMU HARDDISK",
            "SATA disk on AHCI, rotation_rate=7200 (a spinning disk); security, HPA and sanitize lies",
        ),
        _sata_case(
            "qemu-sata-ssd",
            "sata-ssd",
            "TBL-SSD-0001",
            "QEMU SSD",
            "SATA disk on AHCI, rotation_rate=1 (non-rotational: an SSD); TRIM works",
        ),
        _nvme_case("qemu-nvme", "nvme", "TBL-NVME-0001", "NVMe namespace; format --ses=1 zeroes it", True),
        _nvme_case(
            "qemu-nvme-failing",
            "nvme-failing",
            "TBL-NVMEF-0001",
            "NVMe with smart_critical_warning=4 (reliability degraded): a failing drive",
            False,
        ),
        _scsi_case("qemu-scsi", "scsi-virtio", "TBL-SCSI-0001", "SCSI disk on virtio-scsi-pci"),
        _scsi_case("qemu-scsi-lsi", "scsi-lsi", "TBL-LSI-0001", "SCSI disk on an LSI 53C895A HBA"),
        _usb_case(),
    ]
}


def _describe(result: CommandResult) -> dict[str, object]:
    return {
        "argv": list(result.argv),
        "returncode": result.returncode,
        "stdout_tail": result.stdout.strip().splitlines()[-3:],
        "stderr_tail": result.stderr.strip().splitlines()[-3:],
    }


def _md5_of_pattern(size: int) -> str:
    h = hashlib.md5(usedforsecurity=False)
    chunk = (PATTERN * ((1 << 20) // len(PATTERN)))[: 1 << 20]
    for _ in range(size // len(chunk)):
        h.update(chunk)
    return h.hexdigest()


def _md5_of_zeros(size: int) -> str:
    h = hashlib.md5(usedforsecurity=False)
    zeros = bytes(1 << 20)
    for _ in range(size // len(zeros)):
        h.update(zeros)
    return h.hexdigest()


def _probe(disk: str) -> list[Step]:
    """Read the whole disk in the guest (page cache dropped first): what a mutation left behind."""
    return [
        Step(("blockdev", "--flushbufs", disk), record=False),
        Step(("md5sum", disk), record=False),
    ]


def record_case(case: Case, out_root: Path, workdir: Path) -> dict[str, object]:
    """Boot once for ``case``, write its fixtures and machine.json; returns the machine.json data."""
    image = make_image(workdir / f"{case.name}.img", IMAGE_SIZE, PATTERN)
    disk = DiskSpec(case.kind, image, serial=case.serial, model=case.model)
    states = {_md5_of_pattern(IMAGE_SIZE): "pattern", _md5_of_zeros(IMAGE_SIZE): "zero"}
    before = coverage(image, PATTERN)

    # After every mutating step (and before the first), the guest checksums the whole disk, so each
    # mutation's effect is known on its own, not only the state of the image after the boot.
    steps: list[Step] = []
    probe_after: dict[int, int] = {}  # index of the md5sum step -> index of the mutating step or -1
    for step in case.steps:
        if step.mutating and not probe_after:
            steps += _probe(disk_arg(case.serial))
            probe_after[len(steps) - 1] = -1
        steps.append(step)
        if step.mutating:
            index = len(steps) - 1
            steps += _probe(disk_arg(case.serial))
            probe_after[len(steps) - 1] = index

    start = time.monotonic()
    report = boot([disk], [list(s.argv) for s in steps], timeout=900, settle=60)
    boot_seconds = round(time.monotonic() - start, 1)
    after = coverage(image, PATTERN)

    target = out_root / case.name
    if target.exists():
        shutil.rmtree(target)
    seen: set[Path] = set()
    for step, result in zip(steps, report.results, strict=True):
        if not step.record:
            continue
        directory = target / step.subdir if step.subdir else target
        path = write_fixture(directory, result)
        if path in seen:
            raise GuestError(f"two steps of {case.name} record the same fixture {path.name}")
        seen.add(path)

    def state(md5_index: int) -> str:
        result = report.results[md5_index]
        if result.returncode != 0:
            return f"unreadable (md5sum exit {result.returncode}: {result.stderr.strip()})"
        return states.get(result.stdout.split()[0], "other")

    mutations = []
    disk_before = None
    for md5_index, step_index in probe_after.items():
        if step_index < 0:
            disk_before = state(md5_index)
            continue
        entry = _describe(report.results[step_index])
        entry["disk_after"] = state(md5_index)
        mutations.append(entry)

    dev = report.devices[case.serial]
    manifest = build().manifest
    machine: dict[str, object] = {
        "case": case.name,
        "description": case.description,
        "disks": [
            {
                "path": dev.path,
                "controller": f"/dev/{dev.controller}" if dev.controller else None,
                "serial": case.serial,
                "model": case.model or "(QEMU default)",
                "bus": BUS[case.kind],
                "kind": case.kind,
                "size_bytes": IMAGE_SIZE,
                "image_format": disk.fmt,
            }
        ],
        "mutating_commands_in_order": mutations,
        "image_check": {
            "pattern": PATTERN.decode().strip(),
            "disk_before_mutations": disk_before,
            "note": (
                "disk_after of each command: the guest's md5sum of the whole disk (buffers flushed) "
                "compared with the pattern and with zeros; host_* : the image file on the host, "
                "checked after QEMU exited"
            ),
            "host_before": {"pattern_fraction": before[0], "zero_fraction": before[1]},
            "host_after": {"pattern_fraction": round(after[0], 4), "zero_fraction": round(after[1], 4)},
        },
        "provenance": {
            "recorded_by": "python3 -m tests.qemu.record",
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "qemu": report.qemu_version,
            "qemu_accel": "tcg",
            "guest_kernel": report.kernel,
            "guest_packages": manifest.get("packages"),
            "tools": manifest.get("tools"),
            "boot_seconds": boot_seconds,
        },
        "notes": report.notes,
    }
    (target / "machine.json").write_text(json.dumps(machine, indent=2) + "\n")
    return machine


def _recorded_argv(argv: tuple[str, ...], machine: dict[str, Any], serial: str) -> list[str]:
    """``argv`` with the guest's disk placeholders as the case's machine.json says they resolved."""
    (disk,) = machine["disks"]
    names = {disk_arg(serial): disk["path"], ctrl_arg(serial): disk["controller"] or ""}
    return [names.get(a, a) for a in argv]


def record_missing(case: Case, out_root: Path, workdir: Path) -> list[str]:
    """Boot once for ``case`` and record only its read-only steps that have no fixture yet (a step
    added to the case later), leaving every other fixture as it is; machine.json lists them."""
    target = out_root / case.name
    path = target / "machine.json"
    machine = json.loads(path.read_text())
    steps = [
        s
        for s in case.steps
        if s.record
        and not s.mutating
        and not s.subdir
        and not (target / fixture_name(_recorded_argv(s.argv, machine, case.serial))).exists()
    ]
    if not steps:
        return []
    image = make_image(workdir / f"{case.name}.img", IMAGE_SIZE, PATTERN)
    disk = DiskSpec(case.kind, image, serial=case.serial, model=case.model)
    report = boot([disk], [list(s.argv) for s in steps], timeout=900, settle=60)
    names = []
    for result in report.results:
        if (target / fixture_name(result.argv)).exists():
            raise GuestError(f"{case.name}: {fixture_name(result.argv)} exists: the disk changed its name")
        names.append(write_fixture(target, result).name)
    machine["provenance"].setdefault("added_later", []).append(
        {
            "recorded_by": "python3 -m tests.qemu.record --missing-only",
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "qemu": report.qemu_version,
            "guest_kernel": report.kernel,
            "tools": build().manifest.get("tools"),
            "fixtures": names,
        }
    )
    path.write_text(json.dumps(machine, indent=2) + "\n")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Record QEMU lab fixtures into tests/fixtures/machines/")
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="only this case")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--out", type=Path, default=FIXTURES, help="fixture root directory")
    parser.add_argument(
        "--missing-only", action="store_true", help="record only read-only steps with no fixture yet"
    )
    args = parser.parse_args(argv)
    if args.list:
        for case in CASES.values():
            print(f"{case.name:20} {case.description}")
        return 0
    names = args.case or list(CASES)
    try:
        build(log=True)
        with tempfile.TemporaryDirectory(prefix="tabula-record-") as tmp:
            for name in names:
                if args.missing_only:
                    print(f"{name}: added {record_missing(CASES[name], args.out, Path(tmp)) or 'nothing'}")
                    continue
                machine = record_case(CASES[name], args.out, Path(tmp))
                check = machine["image_check"]
                assert isinstance(check, dict)
                print(f"{name}: recorded; host image after: {check['host_after']}")
    except TabulaError as exc:
        print(exc.diagnostics(), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
