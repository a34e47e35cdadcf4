"""Boot the live image under QEMU (TCG), BIOS and UEFI, in headless mode, and check the result on the host.

The ISO is built (or reused from the cache) by ``image-build/build.sh --variant test-auto`` with
``tabula.auto=zero tabula.countdown=3 tabula.after=poweroff`` on its default GRUB entry.  The guest
has the ISO as a SATA disk (the boot medium, attached read-write), a SATA and an NVMe disk filled
with a pattern, and a SATA disk with an ext4 partition labelled TABULA-DATA (the persistence
partition).  The serial console is read as the guest runs: the countdown and the results appear on
it.  After the guest powered itself off, the host checks that both drives are all zeros, that the
boot medium is byte for byte what it was, and that signed certificates landed on the persistence
disk and verify (``station verify``) against the station public key stored there.

Run only this: ``python3 -m pytest tests/test_image_boot.py -m qemu``.  The first build takes ~4 min
(debootstrap), later ones ~1-2 min (only the station changed) or seconds (nothing changed).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "image-build" / "build.sh"
# loglevel=7 after the image's "quiet": the kernel's own "secureboot: Secure boot enabled/disabled"
# line (an info message) is how the test knows which way the firmware started the kernel.
AUTO_PARAMS = "tabula.auto=zero tabula.countdown=3 tabula.after=poweroff loglevel=7"
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
# Secure Boot: the SMM build of OVMF with Microsoft's keys enrolled, as on a PC sold with Windows.
OVMF_SB_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.ms.fd")
OVMF_SB_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.ms.fd")
HOST_TOOLS = {
    "debootstrap": "debootstrap",
    "mksquashfs": "squashfs-tools",
    "grub-mkrescue": "grub-common",
    "xorriso": "xorriso",
    "osirrox": "xorriso",
    "mformat": "mtools",
    "mcopy": "mtools",
    "mkfs.vfat": "dosfstools",
    "qemu-system-x86_64": "qemu-system-x86",
    "mkfs.ext4": "e2fsprogs",
    "debugfs": "e2fsprogs",
    "sfdisk": "fdisk",
    "zstd": "zstd",
}
PATTERN = b"TABULA-DONOR-SECRET-" * 25 + b"\x00" * 12  # 512 bytes
DISK_SIZE = 32 << 20
MIB = 1 << 20


def missing_host_packages() -> list[str]:
    missing = {pkg for tool, pkg in HOST_TOOLS.items() if shutil.which(tool) is None}
    for d, pkg in (
        ("/usr/lib/grub/i386-pc", "grub-pc-bin"),
        ("/usr/lib/grub/x86_64-efi", "grub-efi-amd64-bin"),
    ):
        if not Path(d).is_dir():
            missing.add(pkg)
    if not OVMF_CODE.exists() or not OVMF_SB_CODE.exists():
        missing.add("ovmf")
    return sorted(missing)


@pytest.fixture(scope="module")
def auto_iso() -> Path:
    missing = missing_host_packages()
    if missing or os.geteuid() != 0:
        message = f"needs root and: apt-get install -y {' '.join(missing)}" if missing else "needs root"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    out = REPO / "image-build" / "out"
    t0 = time.monotonic()
    proc = subprocess.run(
        [str(BUILD), "--variant", "test-auto", "--append", AUTO_PARAMS, "--timeout", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    print(f"image build: {time.monotonic() - t0:.0f} s", file=sys.stderr)
    return out / "tabula-test-auto.iso"


def make_pattern_disk(path: Path, size: int = DISK_SIZE) -> Path:
    with path.open("wb") as f:
        chunk = PATTERN * (MIB // len(PATTERN))
        for _ in range(size // MIB):
            f.write(chunk)
    return path


def make_data_disk(path: Path, size: int = 64 * MIB) -> Path:
    """A disk with a GPT and one ext4 partition labelled TABULA-DATA from 1 MiB to the end."""
    part = path.with_suffix(".part")
    with part.open("wb") as f:
        f.truncate(size - 2 * MIB)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "TABULA-DATA", str(part)], check=True)
    with path.open("wb") as f:
        f.truncate(size)
    subprocess.run(
        ["sfdisk", "-q", str(path)],
        input="label: gpt\nstart=2048, size=126976, type=linux\n",
        text=True,
        check=True,
    )
    with path.open("r+b") as dst, part.open("rb") as src:
        dst.seek(MIB)
        shutil.copyfileobj(src, dst, MIB)
    part.unlink()
    return path


def extract_data_partition(disk: Path, dest: Path) -> Path:
    """Copy the TABULA-DATA filesystem's files out with debugfs (no mount, no loop device)."""
    part = disk.with_suffix(".part-after")
    with disk.open("rb") as src, part.open("wb") as dst:
        src.seek(MIB)
        shutil.copyfileobj(src, dst, MIB)
    dest.mkdir()
    subprocess.run(["debugfs", "-R", f"rdump / {dest}", str(part)], check=True, capture_output=True)
    return dest


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(MIB), b""):
            h.update(chunk)
    return h.hexdigest()


def qemu_argv(firmware: str, iso: Path, sata: Path, nvme: Path, data: Path, vars_file: Path) -> list[str]:
    argv = ["qemu-system-x86_64", "-accel", "tcg", "-m", "1024", "-smp", "2", "-nodefaults"]
    argv += ["-display", "none", "-monitor", "none", "-nic", "none", "-no-reboot"]
    argv += ["-chardev", "stdio,id=ser0,signal=off", "-serial", "chardev:ser0"]
    if firmware in ("uefi", "uefi-secureboot"):
        secure = firmware == "uefi-secureboot"
        argv += ["-machine", "q35,smm=on" if secure else "q35"]
        if secure:
            argv += ["-global", "driver=cfi.pflash01,property=secure,value=on"]
        code = OVMF_SB_CODE if secure else OVMF_CODE
        argv += ["-drive", f"if=pflash,format=raw,readonly=on,file={code}"]
        argv += ["-drive", f"if=pflash,format=raw,file={vars_file}"]
    else:
        argv += ["-machine", "pc"]
    argv += ["-device", "ahci,id=ahci0"]
    argv += ["-drive", f"if=none,id=sata,file={sata},format=raw"]
    argv += ["-device", "ide-hd,bus=ahci0.0,drive=sata,serial=DONOR-SATA-1,rotation_rate=7200"]
    argv += ["-drive", f"if=none,id=data,file={data},format=raw"]
    argv += ["-device", "ide-hd,bus=ahci0.1,drive=data,serial=TABULA-DATA-1"]
    # The boot medium as what it is in a workshop: a USB stick (usb-storage behind xHCI).
    argv += ["-device", "qemu-xhci,id=xhci"]
    argv += ["-drive", f"if=none,id=stick,file={iso},format=raw"]
    argv += ["-device", "usb-storage,bus=xhci.0,drive=stick,serial=TABULASTICK,bootindex=0"]
    argv += ["-drive", f"if=none,id=nvme,file={nvme},format=raw"]
    argv += ["-device", "nvme,drive=nvme,serial=DONOR-NVME-1"]
    return argv


class Console:
    """The guest's serial console: everything it prints, kept in memory and in a log file."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path, t0: float | None = None) -> None:
        self.proc = proc
        self.log = log
        self.text = ""
        self.t0 = time.monotonic() if t0 is None else t0
        self.stamps: list[tuple[int, float]] = []  # (length of text, seconds since t0) after each chunk
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        with self.log.open("wb") as f:
            while True:
                chunk = self.proc.stdout.read1(4096)
                if not chunk:
                    return
                f.write(chunk)
                f.flush()
                with self._lock:
                    self.text += chunk.decode(errors="replace")
                    self.stamps.append((len(self.text), time.monotonic() - self.t0))

    def wait_for(self, needle: str, timeout: float) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            with self._lock:
                if needle in self.text:
                    return time.monotonic() - t0
            if self.proc.poll() is not None:
                break
            time.sleep(0.5)
        raise AssertionError(
            f"{needle!r} not seen on the serial console; see {self.log}\n{self.text[-4000:]}"
        )

    def seen_at(self, needle: str, start: int = 0) -> tuple[int, float] | None:
        """Where ``needle`` first is in the text from ``start`` (index after it), and when it arrived."""
        with self._lock:
            i = self.text.find(needle, start)
            if i < 0:
                return None
            end = i + len(needle)
            at = next(t for n, t in self.stamps if n >= end)
        return end, at

    def join(self) -> None:
        self._thread.join(timeout=10)


@pytest.mark.qemu
@pytest.mark.parametrize("firmware", ["bios", "uefi", "uefi-secureboot"])
def test_headless_boot_erases_the_drives_and_never_the_stick(
    auto_iso: Path, tmp_path: Path, firmware: str
) -> None:
    stick = tmp_path / "stick.iso"
    shutil.copyfile(auto_iso, stick)
    stick_hash = sha256(stick)
    sata = make_pattern_disk(tmp_path / "sata.img")
    nvme = make_pattern_disk(tmp_path / "nvme.img")
    data = make_data_disk(tmp_path / "data.img")
    vars_file = tmp_path / "OVMF_VARS.fd"
    shutil.copyfile(OVMF_SB_VARS if firmware == "uefi-secureboot" else OVMF_VARS, vars_file)

    argv = qemu_argv(firmware, stick, sata, nvme, data, vars_file)
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    # Kept after the test (image-build/out/ is git-ignored): the first thing to read when it fails.
    console = Console(proc, auto_iso.parent / f"console-{firmware}.log")
    try:
        console.wait_for("Persistence: /dev/", 600)
        t_session = time.monotonic() - t0
        console.wait_for("Erasing 2 drive(s) in", 300)
        console.wait_for("Certificates: /var/lib/tabula/certs", 600)
        proc.wait(timeout=300)  # tabula.after=poweroff: QEMU exits when the guest powers off
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        console.join()
    total = time.monotonic() - t0
    print(f"{firmware}: session after {t_session:.0f} s, powered off after {total:.0f} s", file=sys.stderr)
    text = console.text
    assert proc.returncode == 0, text[-4000:]
    assert "protected, not erased" in text, "the boot stick and the data disk must be listed as protected"
    if firmware == "uefi-secureboot":  # shim -> signed GRUB -> signed kernel, verified by the firmware
        assert "secureboot: Secure boot enabled" in text, text[:6000]
    elif firmware == "uefi":
        assert "secureboot: Secure boot disabled" in text, text[:6000]
    assert text.count(": ERASED AND VERIFIED") == 2, text[-4000:]  # station.words: the outcome in full

    assert sha256(stick) == stick_hash, "the boot medium was modified"
    for disk in (sata, nvme):
        with disk.open("rb") as f:
            for chunk in iter(lambda: f.read(MIB), b""):
                assert chunk == bytes(len(chunk)), f"{disk.name} is not all zeros"

    home = extract_data_partition(data, tmp_path / "home")
    certs = sorted((home / "certs").rglob("*.json"))
    assert len(certs) == 2, sorted(p.relative_to(home) for p in home.rglob("*"))
    assert len(sorted((home / "certs").rglob("*.pdf"))) == 2
    trust = tmp_path / "trust"
    trust.mkdir()
    shutil.copyfile(home / "keys" / "station.pub.pem", trust / "station.pub.pem")
    verify = subprocess.run(
        [sys.executable, "-m", "station.cli", "verify", "--trust", str(trust), *map(str, certs)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert len(list((home / "jobs").iterdir())) == 2
