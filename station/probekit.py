"""``station probe``: record what this machine's drives say about themselves, and plan from a recording.

* ``station probe --record OUT.tar.gz [DEVICE...]`` runs every read-only command the purge planner
  uses (``erase.purge.probe``), plus ``lsblk`` and the tools' versions, through
  :class:`host.runner.RecordingRunner` over :class:`ProbeOnlyRunner`, which refuses any command that
  is not on its read-only list: a recording can never change a drive.  Serial numbers and WWNs are
  replaced by fakes of the same shape (consistent inside one recording, unrelated to the real
  values) unless ``--keep-ids``.
* ``station probe --replay OUT.tar.gz`` unpacks it and plans every recorded drive from it
  (:class:`erase.purge.machine.ReplayMachine`), as ``station erase --plan`` would on that machine.

A workshop sends such a recording when a real drive is planned wrongly (README, "Contributing").
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import io
import json
import re
import secrets
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from erase.purge.errors import PurgeError
from erase.purge.machine import Machine, ReplayMachine, current_machine
from erase.purge.planner import POLICIES, PlanOptions, PurgePlan, plan_purge
from erase.purge.probe import ATA16_TRUSTED_RECEIVE, SPIN_CDB, Capabilities, probe
from host.drives import discover
from host.errors import CommandError
from host.fsio import atomic_write
from host.identity import DriveInfo
from host.redact import same_shape
from host.runner import CommandResult, RecordingRunner, Runner, check_argv
from host.units import human_duration, human_size
from station import __version__
from station.errors import Refused

MANIFEST = "probe.json"
FORMAT = 1
LSBLK = ["lsblk", "-J", "-b", "-O"]
VERSIONS = (
    ["hdparm", "-V"],
    ["nvme", "version"],
    ["smartctl", "--version"],
    ["sedutil-cli", "--version"],
    ["sg_raw", "-V"],
)

# The only commands a probe may run, whole: "DEV" stands for a /dev path, "*" for any lsblk options.
# Anything else is refused, however harmless it looks (an allow-list, never a deny-list).
_READ_ONLY: tuple[tuple[str, ...], ...] = (
    ("lsblk", "*"),
    ("hdparm", "-I", "DEV"),
    ("hdparm", "-N", "DEV"),
    ("hdparm", "--dco-identify", "DEV"),
    ("hdparm", "--sanitize-status", "DEV"),
    ("hdparm", "-V"),
    ("nvme", "id-ctrl", "DEV", "-o", "json"),
    ("nvme", "id-ns", "DEV", "-o", "json"),
    ("nvme", "sanitize-log", "DEV", "-o", "json"),
    ("nvme", "list", "-o", "json"),
    ("nvme", "version"),
    ("sg_opcodes", "DEV"),
    # TCG Level 0 discovery: only these two CDBs (SECURITY PROTOCOL IN, ATA TRUSTED RECEIVE), read-only.
    ("sg_raw", "-R", "-r", "2048", "DEV", *SPIN_CDB),
    ("sg_raw", "-R", "-r", "512", "DEV", *ATA16_TRUSTED_RECEIVE),
    ("sg_raw", "-V"),
    ("nvme", "security-recv", "DEV", "--secp=1", "--spsp=1", "--size=2048", "--al=2048"),
    ("sedutil-cli", "--query", "DEV"),
    ("sedutil-cli", "--scan"),
    ("sedutil-cli", "--version"),
    ("mmc", "extcsd", "read", "DEV"),
    ("smartctl", "--version"),
)


class ProbeRefused(Refused):
    """A command that could change a drive was asked of a probe recording."""

    hint = "a probe recording runs read-only commands only; this is a bug in Tabula"


def read_only(argv: Sequence[str]) -> bool:
    """True for a command of the probe's read-only list (``_READ_ONLY``), exactly."""
    args = check_argv(argv)
    for form in _READ_ONLY:
        if form[1:] == ("*",) and args[0] == form[0]:
            return True
        if len(form) == len(args) and all(
            f == a or (f == "DEV" and re.fullmatch(r"/dev/[A-Za-z0-9._/-]+", a))
            for f, a in zip(form, args, strict=True)
        ):
            return True
    return False


@dataclass
class ProbeOnlyRunner:
    """Lets through read-only commands only; anything else raises :class:`ProbeRefused` unrun."""

    inner: Runner
    refused: list[tuple[str, ...]] = field(default_factory=list)

    def which(self, tool: str) -> bool:
        return self.inner.which(tool)

    def run(self, argv: Sequence[str], *, timeout: float = 60.0, mutating: bool = False) -> CommandResult:
        args = check_argv(argv)
        if mutating or not read_only(args):
            self.refused.append(args)
            raise ProbeRefused(f"refused to run '{' '.join(args)}' while recording a probe")
        return self.inner.run(args, timeout=timeout)


# -- redaction ---------------------------------------------------------------------------------------


class Redactor:
    """Replaces identifiers by fakes of the same shape: digits by digits, letters by letters of the
    same case, hex digits by hex digits.  The fakes come from a key drawn for this recording, so the
    same serial gets the same fake everywhere in it, and nothing links it to the real value."""

    def __init__(self, key: bytes | None = None) -> None:
        self.key = key or secrets.token_bytes(32)
        self.values: dict[str, bool] = {}  # identifier -> hexadecimal

    def add(self, value: str | None, *, hexadecimal: bool = False) -> None:
        value = (value or "").strip()
        if len(value) >= 4:
            self.values.setdefault(value, hexadecimal)

    def add_wwn(self, wwn: str | None) -> None:
        """A WWN as lsblk or hdparm print it: its unique part (after NAA and OUI, what hdparm prints
        as 'Unique ID'), or the whole value when it has another form (an NVMe 'nvme.' name)."""
        core = re.sub(r"^(0x|eui\.|naa\.|nvme\.|t10\.)", "", (wwn or "").strip(), flags=re.I)
        if re.fullmatch(r"[0-9a-fA-F]{16}", core):
            self.add(core[7:], hexadecimal=True)  # NAA and OUI (the manufacturer) stay
        else:
            self.add(core, hexadecimal=bool(re.fullmatch(r"[0-9a-fA-F]+", core)))

    def fake(self, value: str, hexadecimal: bool) -> str:
        stream = hmac.new(self.key, value.encode(), hashlib.sha256).digest() * (1 + len(value) // 32)
        return same_shape(value, iter(stream), hexadecimal=hexadecimal)

    def apply(self, text: str) -> tuple[str, int]:
        """``text`` with every identifier replaced (longest first), and how many were replaced."""
        count = 0
        for value in sorted(self.values, key=len, reverse=True):
            fake = self.fake(value, self.values[value])
            pattern = re.compile(re.escape(value), re.I if self.values[value] else 0)
            text, n = pattern.subn(fake, text)
            count += n
        return text, count


def identifiers_of(drive: DriveInfo, caps: Capabilities, redactor: Redactor) -> None:
    """Every identifier of ``drive`` that its recordings may print."""
    redactor.add(drive.serial)
    redactor.add_wwn(drive.wwn)
    if caps.ata is not None:
        redactor.add(caps.ata.serial)
    if caps.nvme_ctrl is not None:
        redactor.add(caps.nvme_ctrl.serial)
    for entry in caps.raw.values():
        text = str(entry.get("stdout", ""))
        for m in re.finditer(r"WWN Device Identifier:\s*([0-9a-fA-F]{16})", text):
            redactor.add_wwn(m.group(1))
        for m in re.finditer(r'"(?:eui64|nguid)"\s*:\s*"([0-9a-fA-F]{16,32})"', text):
            redactor.add(m.group(1)[7:], hexadecimal=True)


def lsblk_identifiers(text: str, redactor: Redactor) -> None:
    """Every serial and WWN lsblk lists: it lists every block device of the machine, not only the
    recorded ones (the boot stick, the station's own disk)."""
    try:
        doc = json.loads(text)
    except ValueError:
        return
    stack = list(doc.get("blockdevices", [])) if isinstance(doc, dict) else []
    while stack:
        entry = stack.pop()
        if not isinstance(entry, dict):
            continue
        redactor.add(entry.get("serial"))
        redactor.add_wwn(entry.get("wwn"))
        stack.extend(entry.get("children") or [])


# -- recording -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordResult:
    path: Path
    devices: tuple[str, ...]
    replaced: int
    refused: tuple[tuple[str, ...], ...]


def _drives(machine: Machine, devices: Sequence[str], include_loop: bool) -> list[DriveInfo]:
    if devices:
        return [machine.resolve(d, include_loop=include_loop).info for d in devices]
    if isinstance(machine, ReplayMachine):
        return machine.drives()
    return [e.info for e in discover(include_loop=include_loop)]


def _manifest(drives: Sequence[DriveInfo], versions: dict[str, str], redacted: bool) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "tabula": __version__,
        "recorded_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "devices": [d.path for d in drives],
        # What discovery said of each drive (lsblk's listing leaves some out, loop devices): the
        # replay plans these, exactly as the recording probed them.
        "drives": [d.to_dict() for d in drives],
        "redacted": redacted,
        "tools": versions,
    }


def _versions(runner: Runner) -> dict[str, str]:
    """The first line each tool prints about its version ('unknown (why)' when it cannot say)."""
    out: dict[str, str] = {}
    for argv in VERSIONS:
        if not runner.which(argv[0]):
            continue
        try:
            r = runner.run(argv)
        except CommandError as exc:
            out[argv[0]] = f"unknown ({exc.message})"
            continue
        text = (r.stdout + r.stderr).strip()
        out[argv[0]] = text.splitlines()[0] if text else ""
    return out


def record(
    out: Path,
    devices: Sequence[str] = (),
    *,
    keep_ids: bool = False,
    include_loop: bool = False,
    machine: Machine | None = None,
) -> RecordResult:
    """Record every read-only probe of ``devices`` (all drives when empty) into ``out`` (tar.gz)."""
    machine = machine or current_machine()
    drives = _drives(machine, devices, include_loop)
    with tempfile.TemporaryDirectory(prefix="tabula-probe-") as tmp:
        directory = Path(tmp)
        guard = ProbeOnlyRunner(machine.runner)
        runner = RecordingRunner(guard, directory)
        redactor = Redactor()
        lsblk_identifiers(runner.run(LSBLK).stdout, redactor)
        for drive in drives:
            # sysfs=None: the replay has no sysfs either, so both ask the same commands.
            identifiers_of(drive, probe(drive, runner, sysfs=None), redactor)
        versions = _versions(runner)
        manifest = _manifest(drives, versions, not keep_ids)
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        replaced = 0 if keep_ids else _redact_directory(directory, redactor)
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, _tar_gz(directory))
    return RecordResult(out, tuple(d.path for d in drives), replaced, tuple(guard.refused))


def _redact_directory(directory: Path, redactor: Redactor) -> int:
    total = 0
    for path in sorted(directory.iterdir()):
        text, n = redactor.apply(path.read_text())
        if n:
            path.write_text(text)
        total += n
    return total


def _tar_gz(directory: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(directory.iterdir()):
            info = tar.gettarinfo(str(path), arcname=path.name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            with open(path, "rb") as f:
                tar.addfile(info, f)
    return buf.getvalue()


# -- replay ----------------------------------------------------------------------------------------------


def unpack(archive: Path, directory: Path) -> dict[str, Any]:
    """Unpack a recording (regular files only, no paths) and return its manifest."""
    with tarfile.open(archive, mode="r:gz") as tar:
        for member in tar.getmembers():
            if not member.isfile() or "/" in member.name or member.name.startswith("."):
                raise Refused(f"{archive}: '{member.name}' is not a probe recording's file")
        tar.extractall(directory, filter="data")
    path = directory / MANIFEST
    if not path.exists():
        raise Refused(f"{archive}: not a probe recording (no {MANIFEST})")
    manifest: dict[str, Any] = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise Refused(
            f"{archive}: probe recording format {manifest.get('format')!r}, this station reads {FORMAT}"
        )
    return manifest


@dataclass(frozen=True)
class ReplayedDrive:
    drive: DriveInfo
    caps: Capabilities
    plans: dict[str, PurgePlan | PurgeError]


def replay(archive: Path, options: PlanOptions | None = None) -> tuple[dict[str, Any], list[ReplayedDrive]]:
    """Plan every drive of a recording, for both policies."""
    with tempfile.TemporaryDirectory(prefix="tabula-replay-") as tmp:
        directory = Path(tmp)
        manifest = unpack(archive, directory)
        machine = ReplayMachine(directory)
        out = []
        for fields in manifest.get("drives", []):
            drive = DriveInfo.from_dict(fields)
            caps = probe(drive, machine.runner, sysfs=None)
            plans: dict[str, PurgePlan | PurgeError] = {}
            for policy in POLICIES:
                try:
                    plans[policy] = plan_purge(drive, caps, policy, options)
                except PurgeError as exc:
                    plans[policy] = exc
            out.append(ReplayedDrive(drive, caps, plans))
    return manifest, out


def _plan_lines(policy: str, plan: PurgePlan | PurgeError) -> Iterable[str]:
    if isinstance(plan, PurgeError):
        yield f"  {policy}: refused: {plan.message}" + (f" ({plan.hint})" if plan.hint else "")
        return
    yield f"  {policy}: reaches {plan.level_expected.capitalize()}, ~{human_duration(plan.estimate_seconds)}"
    for n, step in enumerate(plan.steps, start=1):
        yield f"    step {n}: {step.label} -> {step.level}: {' '.join(step.argv)}"
    if plan.overwrite:
        yield f"    then overwrite -> clear (~{human_duration(plan.overwrite_estimate_seconds)})"
    for alt in plan.alternatives:
        yield f"    not used: {alt.label}: {alt.reason}"
    for warning in plan.warnings:
        yield f"    warning: {warning}"


def show_replay(manifest: dict[str, Any], drives: Sequence[ReplayedDrive], out: TextIO) -> None:
    redacted = "identifiers redacted" if manifest.get("redacted") else "identifiers kept"
    out.write(
        f"probe recording of {manifest.get('recorded_at')} (Tabula {manifest.get('tabula')}, {redacted})\n"
    )
    for r in drives:
        d = r.drive
        out.write(f"\n{d.path}: {d.model or '-'}  serial {d.serial or '-'}  {human_size(d.size_bytes)}  ")
        out.write(f"{d.media_type}/{d.transport}\n")
        for note in r.caps.notes:
            out.write(f"  probe: {note}\n")
        for policy, plan in r.plans.items():
            out.write("\n".join(_plan_lines(policy, plan)) + "\n")


def _json(manifest: dict[str, Any], drives: Sequence[ReplayedDrive]) -> dict[str, Any]:
    def plan(p: PurgePlan | PurgeError) -> dict[str, Any]:
        if isinstance(p, PurgeError):
            return {"refused": p.message, "hint": p.hint}
        d = p.to_dict()
        d.pop("capabilities")
        return d

    return {
        "manifest": manifest,
        "drives": [
            {
                "path": r.drive.path,
                "model": r.drive.model,
                "notes": list(r.caps.notes),
                "plans": {k: plan(v) for k, v in r.plans.items()},
            }
            for r in drives
        ],
    }


# -- command line ----------------------------------------------------------------------------------------


def cmd_probe(args: argparse.Namespace, stdout: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    if args.replay is not None:
        options = PlanOptions(unfreeze_suspend=args.unfreeze_suspend, allow_usb_ata=args.allow_usb_ata)
        manifest, drives = replay(Path(args.replay), options)
        if args.json:
            out.write(json.dumps(_json(manifest, drives), indent=2) + "\n")
        else:
            show_replay(manifest, drives, out)
        return 0
    result = record(Path(args.record), args.devices, keep_ids=args.keep_ids, include_loop=args.include_loop)
    redacted = (
        "identifiers kept (--keep-ids)" if args.keep_ids else f"{result.replaced} identifier(s) redacted"
    )
    out.write(
        f"recorded {len(result.devices)} drive(s) to {result.path}: {', '.join(result.devices) or '-'}; {redacted}\n"
    )
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "probe",
        help="record what the drives say (read-only, redacted) or plan from such a recording",
        description="Record every read-only probe the purge planner uses (serials and WWNs redacted "
        "unless --keep-ids), or plan every drive of a recording.  Never changes a drive.",
    )
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--record", metavar="OUT.tar.gz", help="write a recording of DEVICE... (default: every drive)"
    )
    mode.add_argument("--replay", metavar="IN.tar.gz", help="plan every drive of a recording")
    p.add_argument("devices", nargs="*", metavar="DEVICE", help="drives to record (/dev path, serial, WWN)")
    p.add_argument("--keep-ids", action="store_true", help="keep serial numbers and WWNs (for your own use)")
    p.add_argument("--include-loop", action="store_true", help="allow loop devices (tests, demo)")
    p.add_argument(
        "--unfreeze-suspend", action="store_true", help="replay: plan as if the operator allowed it"
    )
    p.add_argument("--allow-usb-ata", action="store_true", help="replay: plan as if the operator allowed it")
    p.add_argument("--json", action="store_true", help="replay: print the plans as JSON")
    p.set_defaults(func=cmd_probe)
