"""Boot the QEMU lab guest with emulated disks, run commands in it, and get their results back.

``run_guest(disks, commands, timeout)`` is the whole interface most callers need::

    disks = [DiskSpec("sata-hdd", img, serial="TABHDD01"), DiskSpec("nvme", img2, serial="TABNVME01")]
    results = run_guest(disks, [["smartctl", "--json=c", "-i", disk_arg("TABHDD01")]], timeout=120)

Commands are argv lists, sent to the guest verbatim (never through a shell).  Because kernel names
(sdX) change between boots, an argument ``@disk:SERIAL@`` (see :func:`disk_arg`) is replaced in the
guest by the block device that has that serial, and ``@ctrl:SERIAL@`` (:func:`ctrl_arg`) by the NVMe
controller's character device; each returned :class:`CommandResult` carries the argv as it really
ran (``/dev/sda``, ``/dev/nvme0n1``), which is what a fixture must be named after.

The guest is built by :mod:`tests.qemu.build` (cached).  QEMU runs with TCG (KVM hangs on the CI
machines), without network, and is always killed when anything goes wrong.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from host.errors import TabulaError
from host.runner import CommandResult
from tests.qemu.build import GuestImage, build

DiskKind = Literal["sata-hdd", "sata-ssd", "nvme", "nvme-failing", "scsi-virtio", "scsi-lsi", "usb"]
DISK_KINDS: tuple[DiskKind, ...] = (
    "sata-hdd",
    "sata-ssd",
    "nvme",
    "nvme-failing",
    "scsi-virtio",
    "scsi-lsi",
    "usb",
)

_SERIAL = re.compile(r"^[A-Za-z0-9._-]{1,20}$")
_MODEL = re.compile(r"^[A-Za-z0-9 ._-]{0,40}$")

#: Bus name written into machine.json for each kind.
BUS = {
    "sata-hdd": "sata",
    "sata-ssd": "sata",
    "nvme": "nvme",
    "nvme-failing": "nvme",
    "scsi-virtio": "scsi (virtio-scsi-pci)",
    "scsi-lsi": "scsi (lsi53c895a)",
    "usb": "usb (qemu-xhci + usb-storage)",
}


class GuestError(TabulaError):
    """The lab guest did not boot, run or report as expected."""

    hint = "look at the guest console log named in the message; rebuild with tests/qemu/build.sh --force"


class GuestTimeout(GuestError):
    """The guest did not power off in time; QEMU was killed."""


@dataclass(frozen=True)
class DiskSpec:
    """One emulated disk: its kind (bus + personality), image file, serial and model.

    ``model`` is the ATA model (SATA) or the SCSI product (SCSI, at most 16 characters); QEMU 7.2
    cannot set it for NVMe or USB disks, whose model is QEMU's own.
    """

    kind: DiskKind
    image: Path
    serial: str
    model: str = ""
    fmt: Literal["raw", "qcow2"] = "raw"

    def __post_init__(self) -> None:
        if self.kind not in DISK_KINDS:
            raise ValueError(f"unknown disk kind {self.kind!r}; one of {', '.join(DISK_KINDS)}")
        if not _SERIAL.match(self.serial):
            raise ValueError(f"serial {self.serial!r} must be 1-20 characters of [A-Za-z0-9._-]")
        if not _MODEL.match(self.model):
            raise ValueError(f"model {self.model!r} must be at most 40 characters of [A-Za-z0-9 ._-]")
        if self.model and self.kind in ("nvme", "nvme-failing", "usb"):
            raise ValueError(f"QEMU 7.2 cannot set the model of a {self.kind} disk")
        if self.kind.startswith("scsi") and len(self.model) > 16:
            raise ValueError("a SCSI product name has at most 16 characters")


def disk_arg(serial: str) -> str:
    """Argument replaced in the guest by the block device of the disk with this serial."""
    return f"@disk:{serial}@"


def ctrl_arg(serial: str) -> str:
    """Argument replaced in the guest by the NVMe controller (/dev/nvmeX) with this serial."""
    return f"@ctrl:{serial}@"


@dataclass(frozen=True)
class GuestDevice:
    serial: str
    name: str  # kernel name: sda, nvme0n1
    controller: str | None  # nvme0 for NVMe namespaces

    @property
    def path(self) -> str:
        return f"/dev/{self.name}"


@dataclass
class GuestReport:
    """Everything one boot produced."""

    results: list[CommandResult]
    devices: dict[str, GuestDevice]
    kernel: str
    qemu_version: str
    console_log: str
    notes: list[str] = field(default_factory=list)


def make_image(path: Path, size: int, pattern: bytes | None = None) -> Path:
    """A raw disk image of ``size`` bytes, filled with ``pattern`` repeated (sparse when None)."""
    if size <= 0 or size % 512:
        raise ValueError("size must be a positive multiple of 512")
    with path.open("wb") as f:
        if pattern:
            chunk = (pattern * (1 << 20 // len(pattern) + 1))[: 1 << 20]
            left = size
            while left:
                n = min(left, len(chunk))
                f.write(chunk[:n])
                left -= n
        else:
            f.truncate(size)
    return path


def pattern_coverage(path: Path, pattern: bytes) -> tuple[float, float]:
    """(fraction of the image still equal to ``pattern`` repeated, fraction that is zero)."""
    data = path.read_bytes()
    if not data:
        return 0.0, 0.0
    reps = pattern * (len(data) // len(pattern) + 1)
    block = 4096
    same = zero = 0
    zeros = bytes(block)
    for off in range(0, len(data), block):
        piece = data[off : off + block]
        if piece == reps[off : off + len(piece)]:
            same += len(piece)
        elif piece == zeros[: len(piece)]:
            zero += len(piece)
    return same / len(data), zero / len(data)


def qemu_version() -> str:
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        raise GuestError("qemu-system-x86_64 is not installed", hint="apt-get install -y qemu-system-x86")
    out = subprocess.run([qemu, "--version"], capture_output=True, text=True, timeout=30, check=False)
    return out.stdout.splitlines()[0].strip() if out.stdout else "unknown"


def qemu_argv(
    image: GuestImage,
    disks: Sequence[DiskSpec],
    *,
    job: Path,
    console: Path,
    output: Path,
    memory_mib: int = 512,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The QEMU command line for one boot (no shell anywhere).

    ``extra_args`` are appended verbatim (e.g. a ``-virtfs`` share for tests/qemu/station_guest.py).
    """
    argv = [
        "qemu-system-x86_64",
        "-accel",
        "tcg",
        "-machine",
        "pc",
        "-m",
        str(memory_mib),
        "-smp",
        "1",
        "-nodefaults",
        "-nic",
        "none",
        "-display",
        "none",
        "-monitor",
        "none",
        "-no-reboot",
        "-serial",
        f"file:{console}",
        "-serial",
        f"file:{output}",
        "-kernel",
        str(image.kernel),
        "-initrd",
        str(image.initramfs),
        "-append",
        "console=ttyS0 panic=-1 loglevel=6",
        "-fw_cfg",
        f"name=opt/tabula/job,file={job}",
        "-smbios",
        "type=1,manufacturer=QEMU,product=Tabula QEMU lab,serial=TABULA-LAB-0001",
        "-uuid",
        "7ab01a00-0000-4000-8000-000000000001",
    ]
    controllers: set[str] = set()
    ahci_port = 0
    for i, disk in enumerate(disks):
        if "," in str(disk.image):
            raise ValueError(f"image path must not contain a comma: {disk.image}")
        drive = f"disk{i}"
        argv += [
            "-drive",
            f"if=none,id={drive},file={disk.image},format={disk.fmt},discard=unmap,cache=writeback",
        ]
        if disk.kind in ("sata-hdd", "sata-ssd"):
            if "ahci" not in controllers:
                argv += ["-device", "ahci,id=ahci0"]
                controllers.add("ahci")
            if ahci_port >= 6:
                raise ValueError("at most 6 SATA disks (one AHCI controller)")
            rate = 1 if disk.kind == "sata-ssd" else 7200
            dev = f"ide-hd,bus=ahci0.{ahci_port},drive={drive},serial={disk.serial},rotation_rate={rate}"
            if disk.model:
                dev += f",model={disk.model}"
            argv += ["-device", dev]
            ahci_port += 1
        elif disk.kind in ("nvme", "nvme-failing"):
            dev = f"nvme,id=nvme{i},drive={drive},serial={disk.serial}"
            if disk.kind == "nvme-failing":
                dev += ",smart_critical_warning=4"
            argv += ["-device", dev]
        elif disk.kind in ("scsi-virtio", "scsi-lsi"):
            hba = "vscsi0" if disk.kind == "scsi-virtio" else "lsi0"
            if hba not in controllers:
                model = "virtio-scsi-pci" if disk.kind == "scsi-virtio" else "lsi53c895a"
                argv += ["-device", f"{model},id={hba}"]
                controllers.add(hba)
            dev = f"scsi-hd,bus={hba}.0,drive={drive},serial={disk.serial}"
            if disk.model:
                dev += f",product={disk.model}"
            argv += ["-device", dev]
        elif disk.kind == "usb":
            if "xhci" not in controllers:
                argv += ["-device", "qemu-xhci,id=xhci0"]
                controllers.add("xhci")
            argv += ["-device", f"usb-storage,bus=xhci0.0,drive={drive},serial={disk.serial}"]
    argv += list(extra_args)
    return argv


def encode_job(
    disks: Sequence[DiskSpec], commands: Sequence[Sequence[str]], command_timeout: int, settle: int
) -> bytes:
    lines = [f"settle {settle}"]
    lines += [f"wait {d.serial}" for d in disks]
    for argv in commands:
        if isinstance(argv, str) or not argv:
            raise TypeError("each command must be a non-empty argv list, never a shell string")
        for arg in argv:
            if not isinstance(arg, str):
                raise TypeError(f"argv items must be strings, got {arg!r}")
            if "\n" in arg or "\0" in arg:
                raise ValueError(f"a guest argument cannot contain a newline or NUL: {arg!r}")
        lines.append(f"cmd {len(argv)} {command_timeout}")
        lines += list(argv)
    return ("\n".join(lines) + "\n").encode()


@dataclass
class _Block:
    tag: str
    data: list[str] = field(default_factory=list)

    def decode(self) -> str:
        return base64.b64decode("".join(self.data)).decode("utf-8", errors="replace")


def parse_output(text: str) -> tuple[list[CommandResult], dict[str, GuestDevice], str, list[str], bool]:
    """Decode the guest's report (see init.sh): results, devices, kernel, notes, done."""
    results: list[CommandResult] = []
    devices: dict[str, GuestDevice] = {}
    notes: list[str] = []
    kernel = ""
    done = False
    argv: list[str] = []
    blocks: dict[str, _Block] = {}
    current: _Block | None = None
    rc: int | None = None
    times = (0.0, 0.0)
    for raw in text.splitlines():
        line = raw.strip("\r")
        if not line.startswith("@@T "):
            if current is not None and line:
                current.data.append(line)
            continue
        if current is not None and current.tag == "ARG":
            argv.append(current.decode())
        current = None
        words = line.split()
        tag = words[1]
        if tag == "HELLO":
            kernel = words[2] if len(words) > 2 else ""
        elif tag == "DEV":
            ctrl = words[4] if len(words) > 4 and words[4] != "-" else None
            devices[words[2]] = GuestDevice(serial=words[2], name=words[3], controller=ctrl)
        elif tag in ("MISSING", "FATAL"):
            notes.append(line[4:])
        elif tag == "BEGIN":
            argv, blocks, rc, times = [], {}, None, (0.0, 0.0)
        elif tag in ("ARG", "OUT", "ERR", "LOG"):
            current = _Block(tag)
            if tag != "ARG":
                blocks[tag] = current
        elif tag == "RC":
            rc = int(words[2])
        elif tag == "TIME":
            times = (float(words[2]), float(words[3]))
        elif tag == "END":
            if rc is None:
                raise GuestError(f"guest report has no exit code for command {words[2]}")
            results.append(
                CommandResult(
                    argv=tuple(argv),
                    returncode=rc,
                    stdout=blocks["OUT"].decode() if "OUT" in blocks else "",
                    stderr=blocks["ERR"].decode() if "ERR" in blocks else "",
                    duration=round(times[1] - times[0], 2),
                )
            )
        elif tag == "DONE":
            done = True
    if current is not None and current.tag == "LOG" and current.data:
        log = current.decode().strip()
        if log:
            notes.append("insmod: " + log)
    return results, devices, kernel, notes, done


def boot(
    disks: Sequence[DiskSpec],
    commands: Sequence[Sequence[str]],
    timeout: float = 300.0,
    *,
    command_timeout: int = 120,
    settle: int = 60,
    image: GuestImage | None = None,
    workdir: Path | None = None,
    extra_qemu_args: Sequence[str] = (),
    memory_mib: int = 512,
) -> GuestReport:
    """Boot once, run ``commands`` in order, power off; the full report of the boot."""
    if shutil.which("qemu-system-x86_64") is None:
        raise GuestError("qemu-system-x86_64 is not installed", hint="apt-get install -y qemu-system-x86")
    serials = [d.serial for d in disks]
    if len(set(serials)) != len(serials):
        raise ValueError(f"disk serials must be unique: {serials}")
    for d in disks:
        if not d.image.is_file():
            raise GuestError(f"disk image {d.image} does not exist", hint="create it with make_image()")
    image = image or build()
    job_data = encode_job(disks, commands, command_timeout, settle)
    with tempfile.TemporaryDirectory(prefix="tabula-qemu-", dir=workdir) as tmp:
        tmpdir = Path(tmp)
        job = tmpdir / "job"
        console = tmpdir / "console.log"
        output = tmpdir / "output.log"
        job.write_bytes(job_data)
        argv = qemu_argv(
            image,
            disks,
            job=job,
            console=console,
            output=output,
            memory_mib=memory_mib,
            extra_args=extra_qemu_args,
        )
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            try:
                qemu_out, _ = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                proc.kill()
                proc.communicate()
                raise GuestTimeout(
                    f"the guest did not finish within {timeout:.0f} s; QEMU killed.\n"
                    + _tail(console, output)
                ) from exc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        text = output.read_text(errors="replace") if output.exists() else ""
        console_log = console.read_text(errors="replace") if console.exists() else ""
        results, devices, kernel, notes, done = parse_output(text)
        if proc.returncode != 0 or not done:
            raise GuestError(
                f"QEMU exited with {proc.returncode} and the guest "
                f"{'finished' if done else 'did not finish'} ({len(results)}/{len(commands)} commands "
                f"reported); QEMU said: {qemu_out.decode(errors='replace').strip()[-1000:]}\n"
                + _tail(console, output)
            )
        missing = [s for s in serials if s not in devices]
        if missing:
            raise GuestError(
                f"the guest did not see the disks with serials {missing}; it saw {sorted(devices)}\n"
                + _tail(console, output)
            )
        if len(results) != len(commands):
            raise GuestError(f"the guest reported {len(results)} results for {len(commands)} commands")
        return GuestReport(
            results=results,
            devices=devices,
            kernel=kernel,
            qemu_version=qemu_version(),
            console_log=console_log,
            notes=notes,
        )


def run_guest(
    disks: Sequence[DiskSpec], commands: Sequence[Sequence[str]], timeout: float = 300.0
) -> list[CommandResult]:
    """Boot the lab guest with ``disks``, run ``commands`` in order; their results, in order."""
    return boot(disks, commands, timeout).results


def _tail(console: Path, output: Path, lines: int = 30) -> str:
    parts = []
    for label, path in (("console", console), ("report", output)):
        if path.exists():
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- last {len(text)} lines of the guest {label} ---\n" + "\n".join(text))
        else:
            parts.append(f"--- no guest {label} log ---")
    return "\n".join(parts)


__all__ = [
    "DISK_KINDS",
    "DiskKind",
    "DiskSpec",
    "GuestDevice",
    "GuestError",
    "GuestReport",
    "GuestTimeout",
    "boot",
    "ctrl_arg",
    "disk_arg",
    "make_image",
    "pattern_coverage",
    "qemu_argv",
    "run_guest",
]
