"""Run the station's own Python code inside the QEMU lab guest.

The lab guest (tests/qemu/build.py) is a busybox initramfs without Python.  This module shares the
host's root file system with the guest read-only over 9p (``-virtfs``), mounts it in the guest, mounts
the guest's own ``/proc``, ``/sys``, ``/dev`` and ``/run`` (udev's database; ``/run/tabula-lab`` is
the writable scratch space), and runs commands chrooted into it: the host's python3, the repository and its
installed packages, talking to the guest's kernel and its emulated disks.

Nothing of the host is writable from the guest (``readonly=on``); the guest's disks are image files
created by the caller.

The 9p modules are not in the lab initramfs; they are appended to it as a second cpio archive (the
kernel unpacks concatenated archives), built here from the lab's extracted kernel package, so the
lab build itself is unchanged.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from host.runner import CommandResult
from tests.qemu.build import Cpio, GuestImage, _module_closure, build, cache_dir
from tests.qemu.guest import DiskSpec, GuestReport, boot

REPO = Path(__file__).resolve().parents[2]
HOST_MOUNT = "/mnt/host"
NINEP_MODULES = ["fs/9p/9p.ko", "net/9p/9pnet_virtio.ko"]
# The guest's writable scratch space.  It lives in the guest's own /run (the initramfs, bind-mounted
# into the chroot), NOT on a tmpfs over the host's /tmp: the repository or its virtualenv may well be
# under /tmp (CI clones anywhere), and hiding them made the chroot lose the code it was meant to run.
GUEST_SCRATCH = "/run/tabula-lab"
GUEST_HOME = f"{GUEST_SCRATCH}/tabula"


@dataclass(frozen=True)
class StationGuest:
    image: GuestImage
    modules: tuple[str, ...]  # extra modules to insmod in the guest, in order


def station_image(base: GuestImage | None = None) -> StationGuest:
    """The lab image plus a second cpio with the 9p modules (cached next to the lab's)."""
    base = base or build()
    kver = str(base.manifest["kernel"])
    moddir = cache_dir() / "root" / "lib" / "modules" / kver
    have = set(base.manifest.get("modules", []))  # type: ignore[arg-type]
    extra = [m for m in _module_closure(moddir, NINEP_MODULES) if m not in have]
    out = cache_dir() / "initramfs-station.cpio"
    stamp = cache_dir() / "initramfs-station.json"
    want = {"base": base.manifest.get("inputs"), "modules": extra}
    if not (out.exists() and stamp.exists() and json.loads(stamp.read_text()) == want):
        cpio = Cpio()
        for mod in extra:
            cpio.file(f"usr/lib/modules/{mod}", (moddir / mod).read_bytes())
        cpio.directory("mnt/host")
        tmp = out.with_suffix(".tmp")
        tmp.write_bytes(base.initramfs.read_bytes() + cpio.bytes())
        os.replace(tmp, out)
        stamp.write_text(json.dumps(want))
    return StationGuest(GuestImage(base.kernel, out, base.manifest), tuple(extra))


def setup_command(guest: StationGuest) -> list[str]:
    """One guest command: load 9p, mount the host root read-only and the guest's own pseudo file systems."""
    h = HOST_MOUNT
    steps = [f"insmod /usr/lib/modules/{m}" for m in guest.modules]
    steps += [
        f"mkdir -p {h}",
        f"mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose hostroot {h}",
        f"mount -t proc proc {h}/proc",
        f"mount -o bind /sys {h}/sys",
        f"mount -o bind /dev {h}/dev",
        f"mkdir -p {GUEST_SCRATCH}",
        f"mount -o bind /run {h}/run",
        f"mkdir -p {GUEST_HOME}",
        "hostname tabula-lab",
        # Inside the chroot: a virtualenv's python is a symlink to an absolute path of the host.
        f"chroot {h} /usr/bin/test -x {sys.executable}",
        "echo mounted",
    ]
    return ["sh", "-c", " && ".join(steps)]


def chroot_command(argv: Sequence[str], env: dict[str, str] | None = None) -> list[str]:
    """``argv`` run chrooted into the host root, with the repository importable and TABULA_HOME set."""
    base = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": GUEST_SCRATCH,
        "TMPDIR": GUEST_SCRATCH,
        "LC_ALL": "C.UTF-8",
        "PYTHONPATH": str(REPO),
        "PYTHONDONTWRITEBYTECODE": "1",
        "TABULA_HOME": GUEST_HOME,
        # Who erases, as the live image's tabula.technician= / tabula.org= give it (tests/conftest.py)
        "TABULA_TECHNICIAN": "QEMU Test Technician",
        "TABULA_ORG": "Test Workshop",
    }
    base.update(env or {})
    return ["chroot", HOST_MOUNT, "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in base.items()), *argv]


def station_command(args: Sequence[str], env: dict[str, str] | None = None) -> list[str]:
    """``python3 -m station.cli ARGS`` inside the guest."""
    return chroot_command([sys.executable, "-m", "station.cli", *args], env)


def shell_in_root(script: str) -> list[str]:
    """A busybox-free shell line run inside the chroot (the host's /bin/sh)."""
    return chroot_command(["/bin/sh", "-c", script])


def run_station(
    disks: Sequence[DiskSpec],
    commands: Sequence[Sequence[str]],
    *,
    timeout: float = 240.0,
    command_timeout: int = 180,
) -> tuple[GuestReport, list[CommandResult]]:
    """Boot with ``disks``, set the chroot up, run ``commands`` (built with the helpers above)."""
    guest = station_image()
    share = "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
    report = boot(
        disks,
        [setup_command(guest), *commands],
        timeout,
        command_timeout=command_timeout,
        image=guest.image,
        extra_qemu_args=["-virtfs", share],
        memory_mib=768,
    )
    setup, *rest = report.results
    if setup.returncode != 0 or "mounted" not in setup.stdout:
        from tests.qemu.guest import GuestError

        raise GuestError(
            f"could not mount the host root in the guest (exit {setup.returncode}): "
            f"{setup.stderr.strip()[-800:]}\n{report.console_log[-2000:]}"
        )
    return report, rest


def quote(argv: Sequence[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)
