"""Build the QEMU lab guest: a Debian kernel plus a busybox initramfs holding the drive tools.

Run ``python3 -m tests.qemu.build`` (or ``tests/qemu/build.sh``).  Everything lands in the cache
directory (``tests/qemu/cache/`` or ``$TABULA_QEMU_CACHE``), never in the host's /boot:

* ``debs/``: Debian packages fetched with ``apt-get download`` (the kernel, busybox-static, udev);
* ``root/``: those packages extracted with ``dpkg-deb -x``;
* ``vmlinuz``, ``initramfs.cpio`` and ``manifest.json`` (versions, for the fixtures' provenance).

The drive tools themselves (smartctl, hdparm, nvme, sg3-utils, lsblk, dmidecode, ...) are copied from
the host with the shared libraries ``ldd`` names, so the host needs their Debian packages installed
(see README.md).  The build is cached: a second run only hashes inputs and returns in well under a
second.  The initramfs is written by this module itself (cpio "newc"), so no cpio tool is needed.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from host.errors import TabulaError

HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = HERE / "cache"
INIT_SCRIPT = HERE / "init.sh"

#: Kernel modules the guest loads (their dependencies are added from modules.dep).
MODULES = [
    "drivers/firmware/qemu_fw_cfg.ko",
    "crypto/crct10dif_generic.ko",
    "crypto/crc64_rocksoft_generic.ko",
    "drivers/scsi/sd_mod.ko",
    "drivers/scsi/sg.ko",
    "drivers/ata/ahci.ko",
    "drivers/nvme/host/nvme.ko",
    "drivers/virtio/virtio_pci.ko",
    "drivers/scsi/virtio_scsi.ko",
    "drivers/scsi/sym53c8xx_2/sym53c8xx.ko",
    "drivers/usb/host/xhci-pci.ko",
    "drivers/usb/storage/usb-storage.ko",
]

#: Tools copied from the host: (name, Debian package).  All are required.
TOOLS = [
    ("smartctl", "smartmontools"),
    ("hdparm", "hdparm"),
    ("nvme", "nvme-cli"),
    ("dmidecode", "dmidecode"),
    ("lsblk", "util-linux"),
    ("blkdiscard", "util-linux"),
    ("blockdev", "util-linux"),
    ("wipefs", "util-linux"),
    ("sg_inq", "sg3-utils"),
    ("sg_opcodes", "sg3-utils"),
    ("sg_readcap", "sg3-utils"),
    ("sg_vpd", "sg3-utils"),
    ("sg_format", "sg3-utils"),
    ("sg_sanitize", "sg3-utils"),
    ("sg_turs", "sg3-utils"),
    ("sg_unmap", "sg3-utils"),
    ("sg_write_same", "sg3-utils"),
    ("sg_sat_identify", "sg3-utils"),
    ("sg_logs", "sg3-utils"),
    ("sg_requests", "sg3-utils"),
    ("sg_raw", "sg3-utils"),  # TCG Level 0 discovery (ATA TRUSTED RECEIVE, SECURITY PROTOCOL IN)
]

#: Data files copied from the host when present (smartctl's drive database).
HOST_DATA = [
    "/var/lib/smartmontools/drivedb/drivedb.h",
    "/usr/share/smartmontools/drivedb.h",
]

#: udev rules that give disks their ID_SERIAL and /dev/disk/by-id names.
UDEV_RULES = ["50-udev-default.rules", "60-block.rules", "60-persistent-storage.rules"]
UDEV_HELPERS = ["ata_id", "scsi_id"]

#: Host programs the build itself needs: (name, Debian package).
BUILD_TOOLS = [("apt-get", "apt"), ("apt-cache", "apt"), ("dpkg-deb", "dpkg"), ("ldd", "libc-bin")]

#: Debian packages the lab needs on the host (build + run).  README.md lists the same.
HOST_PACKAGES = sorted({pkg for _, pkg in TOOLS} | {"qemu-system-x86"})

BUILD_FORMAT = 1  # bump to force a rebuild when the layout of the initramfs changes


class LabBuildError(TabulaError):
    """The QEMU lab guest could not be built."""

    hint = (
        "install the host packages listed in tests/qemu/README.md "
        f"(apt-get install -y {' '.join(HOST_PACKAGES)}) and run tests/qemu/build.sh"
    )


@dataclass(frozen=True)
class GuestImage:
    """A built guest: what QEMU needs to boot it, and what it contains."""

    kernel: Path
    initramfs: Path
    manifest: dict[str, object]


def cache_dir() -> Path:
    env = os.environ.get("TABULA_QEMU_CACHE")
    return Path(env) if env else DEFAULT_CACHE


def _run(argv: list[str], *, cwd: Path | None = None, timeout: float = 600.0) -> str:
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise LabBuildError(f"'{argv[0]}' is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabBuildError(f"timed out after {timeout:.0f} s: {' '.join(argv)}") from exc
    if proc.returncode != 0:
        raise LabBuildError(
            f"{' '.join(argv)} failed with exit code {proc.returncode}: {proc.stderr.strip()[-2000:]}"
        )
    return proc.stdout


def missing_host_packages() -> list[str]:
    """Host packages whose programs are absent: empty when the lab can be built and run."""
    missing = [pkg for tool, pkg in TOOLS + BUILD_TOOLS if shutil.which(tool) is None]
    if shutil.which("qemu-system-x86_64") is None:
        missing.append("qemu-system-x86")
    return sorted(set(missing))


# ---------------------------------------------------------------------------------------------
# Debian packages


def _kernel_package() -> str:
    out = _run(["apt-cache", "depends", "linux-image-amd64"])
    for line in out.splitlines():
        m = re.match(r"\s*Depends:\s*(linux-image-[0-9][^\s]*-amd64)\s*$", line)
        if m:
            return m.group(1)
    raise LabBuildError("apt-cache does not know linux-image-amd64 (run apt-get update)")


def _fetch_deb(debs: Path, package: str) -> Path:
    """The cached .deb of ``package``, downloaded once with apt-get download."""
    debs.mkdir(parents=True, exist_ok=True)
    pattern = re.compile(re.escape(package) + r"_[^_]+_amd64\.deb$")
    found = sorted(p for p in debs.iterdir() if pattern.match(p.name))
    if found:
        return found[-1]
    _run(["apt-get", "download", package], cwd=debs)
    found = sorted(p for p in debs.iterdir() if pattern.match(p.name))
    if not found:
        raise LabBuildError(f"apt-get download {package} produced no .deb in {debs}")
    return found[-1]


def _deb_version(deb: Path) -> str:
    return _run(["dpkg-deb", "-f", str(deb), "Version"]).strip()


def _extract(deb: Path, root: Path) -> None:
    stamp = root / ".extracted" / deb.name
    if stamp.exists():
        return
    _run(["dpkg-deb", "-x", str(deb), str(root)])
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.touch()


# ---------------------------------------------------------------------------------------------
# Modules


def _module_closure(moddir: Path, wanted: Iterable[str]) -> list[str]:
    """``wanted`` and their dependencies, each after everything it depends on."""
    depfile = moddir / "modules.dep"
    deps: dict[str, list[str]] = {}
    for line in depfile.read_text().splitlines():
        name, _, rest = line.partition(":")
        deps[name.strip()] = rest.split()
    order: list[str] = []

    def visit(mod: str, path: tuple[str, ...]) -> None:
        if mod in order:
            return
        if mod in path:
            raise LabBuildError(f"module dependency loop: {' -> '.join((*path, mod))}")
        if mod not in deps:
            raise LabBuildError(f"module {mod} is not in {depfile}")
        for dep in deps[mod]:
            visit(dep, (*path, mod))
        order.append(mod)

    for mod in wanted:
        visit("kernel/" + mod, ())
    return order


# ---------------------------------------------------------------------------------------------
# cpio (newc) writer


class Cpio:
    """A minimal writer of the "newc" cpio format the kernel unpacks as initramfs."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._ino = 1
        self._names: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        name = name.lstrip("/")
        if name in self._names:
            return
        self._names.add(name)
        encoded = name.encode() + b"\0"
        fields = [self._ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0]
        self._ino += 1
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        blob = header + encoded
        blob += b"\0" * (-len(blob) % 4)
        blob += data
        blob += b"\0" * (-len(blob) % 4)
        self._chunks.append(blob)

    def has(self, name: str) -> bool:
        return name.lstrip("/") in self._names

    def directory(self, name: str) -> None:
        parts = name.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            self._entry("/".join(parts[:i]), stat.S_IFDIR | 0o755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self.directory(os.path.dirname(name.strip("/")) or ".")
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self.directory(os.path.dirname(name.strip("/")) or ".")
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name: str, major: int, minor: int) -> None:
        self.directory(os.path.dirname(name.strip("/")) or ".")
        self._entry(name, stat.S_IFCHR | 0o600, rdev=(major, minor))

    def bytes(self) -> bytes:
        trailer = Cpio()
        trailer._entry("TRAILER!!!", 0)
        return b"".join(self._chunks) + b"".join(trailer._chunks)


def _usr_path(path: str) -> str:
    """Debian 12 is merged-/usr: /lib/x -> /usr/lib/x etc., so copies land in one tree."""
    for top in ("/lib/", "/lib64/", "/bin/", "/sbin/"):
        if path.startswith(top):
            return "/usr" + path
    return path


def _add_host_file(cpio: Cpio, host_path: str) -> None:
    real = os.path.realpath(host_path)
    target = _usr_path(host_path)
    if cpio.has(target):
        return
    mode = os.stat(real).st_mode & 0o777
    cpio.file(target, Path(real).read_bytes(), mode)


def _shared_libs(binary: str) -> list[str]:
    """Paths of the shared libraries ``binary`` needs, as ldd resolves them on this host."""
    out = _run(["ldd", binary])
    libs = []
    for line in out.splitlines():
        line = line.strip()
        if "=>" in line:
            target = line.split("=>", 1)[1].strip().split(" ")[0]
            if target.startswith("/"):
                libs.append(target)
            elif "not found" in line:
                raise LabBuildError(f"{binary} needs a library ldd cannot find: {line}")
        elif line.startswith("/"):
            libs.append(line.split(" ")[0])
    return libs


def _add_binary(cpio: Cpio, host_path: str, guest_path: str | None = None) -> None:
    real = os.path.realpath(host_path)
    dest = guest_path or _usr_path(host_path)
    if not cpio.has(dest):
        cpio.file(dest, Path(real).read_bytes(), 0o755)
    for lib in _shared_libs(real):
        _add_host_file(cpio, lib)


# ---------------------------------------------------------------------------------------------
# The build


def _inputs_digest(parts: Iterable[str]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() + b"\0")
    return h.hexdigest()


def _tool_paths() -> dict[str, str]:
    paths = {}
    missing = []
    for tool, pkg in TOOLS:
        found = shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin")
        if found is None:
            missing.append(f"{tool} ({pkg})")
        else:
            paths[tool] = found
    if missing:
        raise LabBuildError("host tools missing for the guest: " + ", ".join(missing))
    return paths


def _tool_versions(paths: dict[str, str]) -> dict[str, str]:
    def first_line(argv: list[str]) -> str:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        text = (proc.stdout or proc.stderr).strip()
        line = text.splitlines()[0] if text else ""
        # smartctl names the kernel it runs on, which is the host's here, not the guest's.
        return re.sub(r"\s*\[[^]]*\].*$", "", line)

    return {
        "smartctl": first_line([paths["smartctl"], "--version"]),
        "hdparm": first_line([paths["hdparm"], "-V"]),
        "nvme": first_line([paths["nvme"], "version"]),
        "sg3-utils (sg_inq)": first_line([paths["sg_inq"], "--version"]),
        "dmidecode": first_line([paths["dmidecode"], "--version"]),
        "lsblk": first_line([paths["lsblk"], "--version"]),
    }


def build(*, cache: Path | None = None, force: bool = False, log: bool = False) -> GuestImage:
    """Build (or reuse) the guest kernel and initramfs in ``cache``; returns their paths.

    Safe to call from several processes at once: they take turns on a lock file in the cache.
    """
    cache = cache or cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(cache, force=force, log=log)


def _build_locked(cache: Path, *, force: bool, log: bool) -> GuestImage:
    start = time.monotonic()
    missing = missing_host_packages()
    if missing:
        raise LabBuildError(f"missing host packages: {', '.join(missing)}")
    tools = _tool_paths()
    data_files = [p for p in HOST_DATA if os.path.exists(p)]

    debs = cache / "debs"
    kernel_deb = _fetch_deb(debs, _kernel_package_cached(debs))
    busybox_deb = _fetch_deb(debs, "busybox-static")
    udev_deb = _fetch_deb(debs, "udev")

    stamp_parts = [f"format={BUILD_FORMAT}", INIT_SCRIPT.read_text(), Path(__file__).read_text()]
    for deb in (kernel_deb, busybox_deb, udev_deb):
        stamp_parts.append(deb.name)
    for host in [*tools.values(), *data_files]:
        st = os.stat(os.path.realpath(host))
        stamp_parts.append(f"{host}:{st.st_size}:{st.st_mtime_ns}")
    digest = _inputs_digest(stamp_parts)

    manifest_path = cache / "manifest.json"
    kernel_out = cache / "vmlinuz"
    initramfs_out = cache / "initramfs.cpio"
    if not force and manifest_path.exists() and kernel_out.exists() and initramfs_out.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("inputs") == digest:
            return GuestImage(kernel_out, initramfs_out, manifest)

    root = cache / "root"
    for deb in (kernel_deb, busybox_deb, udev_deb):
        _extract(deb, root)
    kvers = sorted(p.name for p in (root / "lib/modules").iterdir() if p.is_dir())
    kver = [k for k in kvers if kernel_deb.name.startswith(f"linux-image-{k}_")]
    if len(kver) != 1:
        raise LabBuildError(f"cannot tell the kernel version of {kernel_deb.name} among {kvers}")
    kver_s = kver[0]
    moddir = root / "lib/modules" / kver_s
    busybox = root / "bin/busybox"
    if not (moddir / "modules.dep").exists():
        _run([str(busybox), "depmod", "-b", str(root), kver_s])

    cpio = Cpio()
    for d in ("proc", "sys", "dev", "run", "tmp", "root", "etc/tabula", "usr/lib64"):
        cpio.directory(d)
    for top in ("bin", "sbin", "lib", "lib64"):
        cpio.symlink(top, "usr/" + top)
    cpio.chardev("dev/console", 5, 1)
    cpio.chardev("dev/null", 1, 3)
    cpio.file("init", INIT_SCRIPT.read_bytes(), 0o755)
    cpio.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    cpio.file("etc/group", b"root:x:0:\ndisk:x:6:\ntape:x:26:\ncdrom:x:24:\n")

    # busybox applets live in their own directory, last in PATH, so the real tools win.
    cpio.file("usr/bin/busybox", busybox.read_bytes(), 0o755)
    cpio.symlink("usr/bin/sh", "busybox")
    applets = _run([str(busybox), "--list"]).split()
    for applet in applets:
        cpio.symlink(f"usr/lib/tabula-busybox/{applet}", "/usr/bin/busybox")

    modules = _module_closure(moddir, MODULES)
    for mod in modules:
        cpio.file(f"usr/lib/modules/{mod}", (moddir / mod).read_bytes())
    cpio.file("etc/tabula/modules", "".join(m + "\n" for m in modules).encode())

    for path in tools.values():
        _add_binary(cpio, path)
    for path in data_files:
        _add_host_file(cpio, path)

    udevadm = root / "bin/udevadm"
    _add_binary(cpio, str(udevadm), "/usr/bin/udevadm")
    cpio.symlink("usr/lib/systemd/systemd-udevd", "/usr/bin/udevadm")
    for helper in UDEV_HELPERS:
        _add_binary(cpio, str(root / "lib/udev" / helper), f"/usr/lib/udev/{helper}")
    for rule in UDEV_RULES:
        cpio.file(f"usr/lib/udev/rules.d/{rule}", (root / "lib/udev/rules.d" / rule).read_bytes())

    initramfs_out.write_bytes(cpio.bytes())
    shutil.copyfile(root / "boot" / f"vmlinuz-{kver_s}", kernel_out)

    manifest = {
        "inputs": digest,
        "kernel": kver_s,
        "packages": {
            "kernel": f"{kernel_deb.name.split('_')[0]} {_deb_version(kernel_deb)}",
            "busybox-static": _deb_version(busybox_deb),
            "udev": _deb_version(udev_deb),
        },
        "tools": _tool_versions(tools),
        "modules": modules,
        "initramfs_bytes": initramfs_out.stat().st_size,
        "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_seconds": round(time.monotonic() - start, 1),
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    if log:
        print(f"built {initramfs_out} ({manifest['initramfs_bytes']} bytes) in {manifest['build_seconds']} s")
    return GuestImage(kernel_out, initramfs_out, manifest)


def _kernel_package_cached(debs: Path) -> str:
    """The kernel package already downloaded, else the one linux-image-amd64 points to now."""
    if debs.is_dir():
        found = sorted(p.name for p in debs.iterdir() if re.match(r"linux-image-[0-9].*-amd64_", p.name))
        if found:
            return found[-1].split("_")[0]
    return _kernel_package()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--force", action="store_true", help="rebuild even if the cache is current")
    parser.add_argument("--cache", type=Path, default=None, help="cache directory")
    args = parser.parse_args(argv)
    try:
        image = build(cache=args.cache, force=args.force, log=True)
    except LabBuildError as exc:
        print(exc.diagnostics(), file=sys.stderr)
        return 1
    print(f"kernel:    {image.kernel}\ninitramfs: {image.initramfs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
