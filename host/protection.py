"""Protection: never erase the wrong drive.

:func:`check` looks at a whole disk and everything that depends on it, and returns a :class:`Verdict`:
either the disk may be erased, or a list of :class:`Reason` s, each in plain English for a technician.

What "depends on it" means
--------------------------
Starting from the disk, we walk *down the stack*, transitively:

* its partitions (``/sys/class/block/<disk>/<part>/partition``);
* its holders (``holders/``: device-mapper, md RAID, LVM, LUKS, bcache, ...);
* every attached loop device whose backing file lives on a filesystem of the disk.

Every device reached that way is looked at.  Only that direction counts: a loop device over a file on the
system disk is just a file on that disk and may be erased, while the system disk itself stays refused
because of what it holds.  Devices are matched by their major:minor numbers through sysfs, never by a
prefix of their names (``/dev/sda`` and ``/dev/sdaa`` are different disks).

Reasons (:class:`ReasonCode`)
-----------------------------
``SYSTEM_DISK``
    a device of the stack is mounted on ``/``, ``/boot``, ``/boot/efi``, ``/efi`` or ``/usr``, or under
    the upper/lower directories of an overlay mounted there (the live system's squashfs), or the kernel
    command line names it as ``root=``.
``LOOP_BACKS_SYSTEM``
    the disk holds the backing file of a loop device that holds the running system.
``BOOT_MEDIUM``
    the disk is the medium Tabula booted from: one of its filesystems is mounted on a live-boot medium
    mount point (``/run/live/medium``, ``/lib/live/mount/medium``, ``/run/initramfs/live``, ``/cdrom``);
    or one of its mounted filesystems has a file named ``.tabula-boot`` at its root (the image build
    puts this marker on the boot medium; put one on any stick you want Tabula never to offer);
    or it carries a filesystem label from :data:`BOOT_LABELS` (``/dev/disk/by-label``, so only when udev
    runs); or the kernel command line names it with ``tabula.boot=``, ``live-media=``, ``bootfrom=`` or a
    device-like ``boot=`` (``/dev/...``, ``LABEL=``, ``UUID=``, ``PARTUUID=``, ``PARTLABEL=``; label and
    UUID forms are resolved through ``/dev/disk/by-*`` links, so only when udev runs).
``MOUNTED``
    a filesystem of the stack is mounted anywhere else (``/proc/self/mountinfo``).
``SWAP``
    a device of the stack is active swap, or holds an active swap file (``/proc/swaps``).
``HOLDERS``
    a device of the stack is held by another block device (LVM, RAID, encryption, multipath).
``READ_ONLY``
    the kernel reports the disk read-only (``ro`` = 1): it is reported, never attempted.
``IN_USE``
    a process has the disk (or a device of its stack) open (``/proc/<pid>/fd``).

Policy
------
``Verdict.allowed`` is True only when there is no reason at all.  ``Verdict.forceable`` is True only when
*every* reason is forceable, and only ``IN_USE`` is: another process holding the device open is a
softer reason a future ``--force`` may override.  ``SYSTEM_DISK``, ``LOOP_BACKS_SYSTEM`` and
``BOOT_MEDIUM`` are never forceable.  ``MOUNTED``, ``SWAP`` and ``HOLDERS`` are not forceable either: the
technician must unmount, ``swapoff`` or deactivate first, because writing under a live filesystem or
volume corrupts whatever still uses it and may not even reach the disk.  ``READ_ONLY`` cannot be forced
since the kernel would refuse every write.

Nothing here opens a block device: everything is read from sysfs, procfs and ``/dev/disk`` links, so a
check is safe to run at any time on any device.
"""

from __future__ import annotations

import enum
import os
import re
import stat
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from host.identity import DriveInfo

#: Marker file at the root of a filesystem that makes its whole disk a refused boot medium.
BOOT_MARKER = ".tabula-boot"
#: Filesystem labels of the Tabula boot image (the ISO9660 volume id of the hybrid image).
BOOT_LABELS: tuple[str, ...] = ("TABULA",)
#: Mount points that make the device under them hold the running system.
SYSTEM_MOUNTS: tuple[str, ...] = ("/", "/boot", "/boot/efi", "/efi", "/usr")
#: Mount points where live-boot systems (Debian live-boot, dracut, casper) mount the boot medium.
LIVE_MEDIUM_MOUNTS: tuple[str, ...] = (
    "/run/live/medium",
    "/lib/live/mount/medium",
    "/run/initramfs/live",
    "/cdrom",
)
#: Kernel command line keys naming the boot medium (``root=`` is handled apart: it names the system).
BOOT_CMDLINE_KEYS: tuple[str, ...] = ("tabula.boot", "live-media", "bootfrom", "boot")


class ReasonCode(enum.Enum):
    BOOT_MEDIUM = "boot-medium"
    SYSTEM_DISK = "system-disk"
    LOOP_BACKS_SYSTEM = "loop-backs-system"
    MOUNTED = "mounted"
    SWAP = "swap"
    HOLDERS = "holders"
    READ_ONLY = "read-only"
    IN_USE = "in-use"

    @property
    def forceable(self) -> bool:
        """Whether a future ``--force`` may override this reason (see the module docstring)."""
        return self is ReasonCode.IN_USE


@dataclass(frozen=True)
class Reason:
    """Why a disk must not be erased now.

    ``message`` completes a sentence whose subject is the disk: "/dev/vda" + " " + message.
    ``device`` is the block device the reason was found on (the disk, a partition, a holder, a loop),
    ``target`` what it is about (a mount point, a swap file, a holder, a command-line hint, a marker
    file), ``via`` the devices from the disk down to ``device``, and ``hint`` what to do about it.
    """

    code: ReasonCode
    message: str
    device: str
    target: str = ""
    hint: str = ""
    via: tuple[str, ...] = ()

    @property
    def forceable(self) -> bool:
        return self.code.forceable

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code.name,
            "message": self.message,
            "device": self.device,
            "target": self.target,
            "hint": self.hint,
            "via": list(self.via),
            "forceable": self.forceable,
        }


@dataclass(frozen=True)
class Verdict:
    """Whether a disk may be erased; when not, every reason found."""

    allowed: bool
    reasons: tuple[Reason, ...]
    forceable: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "reasons", tuple(self.reasons))
        if self.allowed != (not self.reasons):
            raise ValueError("a verdict is allowed exactly when it has no reason")
        if self.forceable and not (self.reasons and all(r.forceable for r in self.reasons)):
            raise ValueError("a verdict is forceable only when every reason is forceable")

    @classmethod
    def from_reasons(cls, reasons: Iterable[Reason]) -> Verdict:
        unique: list[Reason] = []
        for r in reasons:
            if r not in unique:
                unique.append(r)
        forceable = bool(unique) and all(r.forceable for r in unique)
        return cls(allowed=not unique, reasons=tuple(unique), forceable=forceable)

    @property
    def codes(self) -> frozenset[ReasonCode]:
        return frozenset(r.code for r in self.reasons)

    def has(self, code: ReasonCode) -> bool:
        return code in self.codes

    def explain(self, disk: str) -> str:
        """One line per reason, for a technician: "/dev/vda holds the running system: ..."."""
        if self.allowed:
            return f"{disk} may be erased"
        return "\n".join(f"{disk} {r.message}" for r in self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "forceable": self.forceable,
            "reasons": [r.to_dict() for r in self.reasons],
        }


# --------------------------------------------------------------------------------------------------
# Reading the machine: sysfs block tree, mounts, swaps, open files, kernel command line


def _read(path: Path) -> str | None:
    """A sysfs/procfs attribute, stripped; None when it does not exist (or vanished meanwhile)."""
    try:
        return path.read_text(errors="replace").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _listdir(path: Path) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []


_OCTAL = re.compile(r"\\([0-7]{3})")


def unescape_octal(s: str) -> str:
    r"""Undo the kernel's octal escapes in mountinfo and swaps (``\040`` is a space)."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), s)


def _strip_deleted(path: str) -> str:
    return path[: -len(" (deleted)")] if path.endswith(" (deleted)") else path


@dataclass(frozen=True)
class Block:
    """One entry of ``/sys/class/block``: a disk, a partition, a loop, a dm or md device."""

    name: str
    devnum: str  # "8:0"
    parent: str | None  # the disk, for a partition
    partitions: tuple[str, ...]
    holders: tuple[str, ...]
    slaves: tuple[str, ...]
    read_only: bool
    size_sectors: int
    backing_file: str | None = None  # attached loop devices
    dm_name: str | None = None
    dm_uuid: str | None = None

    @property
    def path(self) -> str:
        return f"/dev/{self.name}"

    @property
    def is_partition(self) -> bool:
        return self.parent is not None

    def describe(self) -> str:
        """What kind of device this is, for messages about holders."""
        if self.dm_uuid is not None or self.dm_name is not None:
            uuid = self.dm_uuid or ""
            kind = "device-mapper volume"
            if uuid.startswith("LVM-"):
                kind = "LVM logical volume"
            elif uuid.startswith("CRYPT-"):
                kind = "encrypted volume"
            elif uuid.startswith("mpath-"):
                kind = "multipath device"
            return f"{kind} {self.dm_name}" if self.dm_name else kind
        if self.name.startswith("md"):
            return "software RAID array"
        if self.name.startswith("bcache"):
            return "bcache device"
        if self.name.startswith("loop"):
            return "loop device"
        return "block device"


def block_tree(sysfs_root: str = "/sys") -> dict[str, Block]:
    """Every block device in ``<sysfs_root>/class/block``, with partitions, holders and loop files."""
    base = Path(sysfs_root) / "class" / "block"
    names = _listdir(base)
    parts_of: dict[str, list[str]] = {}
    parent_of: dict[str, str] = {}
    for name in names:
        if (base / name / "partition").exists():
            continue
        for child in _listdir(base / name):
            if (base / name / child / "partition").exists():
                parts_of.setdefault(name, []).append(child)
                parent_of[child] = name
    tree: dict[str, Block] = {}
    for name in names:
        d = base / name
        devnum = _read(d / "dev")
        if devnum is None:
            continue  # vanished between listing and reading
        size = _read(d / "size")
        backing = _read(d / "loop" / "backing_file")
        tree[name] = Block(
            name=name,
            devnum=devnum,
            parent=parent_of.get(name),
            partitions=tuple(parts_of.get(name, ())),
            holders=tuple(_listdir(d / "holders")),
            slaves=tuple(_listdir(d / "slaves")),
            read_only=_read(d / "ro") == "1",
            size_sectors=int(size) if size and size.isdigit() else 0,
            backing_file=_strip_deleted(backing) if backing else None,
            dm_name=_read(d / "dm" / "name"),
            dm_uuid=_read(d / "dm" / "uuid"),
        )
    return tree


@dataclass(frozen=True)
class Mount:
    """One line of ``/proc/<pid>/mountinfo``."""

    devnum: str
    root: str  # the path inside the filesystem that is mounted (not "/" for bind mounts of a subdir)
    mountpoint: str
    fstype: str
    source: str
    super_options: str


def parse_mountinfo(text: str) -> list[Mount]:
    mounts: list[Mount] = []
    for line in text.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 7:
            continue
        sep = fields.index("-", 6)
        tail = fields[sep + 1 :]
        mounts.append(
            Mount(
                devnum=fields[2],
                root=unescape_octal(fields[3]),
                mountpoint=unescape_octal(fields[4]),
                fstype=tail[0] if tail else "",
                source=unescape_octal(tail[1]) if len(tail) > 1 else "",
                super_options=tail[2] if len(tail) > 2 else "",
            )
        )
    return mounts


@dataclass(frozen=True)
class Swap:
    path: str
    kind: str  # "partition" or "file"


def parse_swaps(text: str) -> list[Swap]:
    swaps: list[Swap] = []
    for line in text.splitlines()[1:]:
        # The path is escaped (spaces as \040), so whitespace splitting is safe.
        fields = line.split()
        if len(fields) >= 2:
            swaps.append(Swap(path=_strip_deleted(unescape_octal(fields[0])), kind=fields[1]))
    return swaps


def parse_cmdline(text: str) -> list[tuple[str, str]]:
    """``key=value`` pairs of the kernel command line, in order (bare words have an empty value)."""
    pairs: list[tuple[str, str]] = []
    for token in text.split():
        if token == "--":
            break  # the rest goes to init
        key, _, value = token.partition("=")
        pairs.append((key, value.strip('"')))
    return pairs


_UDEV_SAFE = re.compile(r"[A-Za-z0-9#+\-.:=@_]")


def udev_encode(label: str) -> str:
    r"""How udev spells a label in /dev/disk/by-label (``My Disk`` -> ``My\x20Disk``)."""
    return "".join(
        c if _UDEV_SAFE.fullmatch(c) else "".join(f"\\x{b:02x}" for b in c.encode()) for c in label
    )


@dataclass(frozen=True)
class SystemState:
    """A snapshot of what the running system uses: read once, then used to check every disk."""

    blocks: Mapping[str, Block]
    mounts: tuple[Mount, ...]
    swaps: tuple[Swap, ...]
    cmdline: tuple[tuple[str, str], ...]
    open_by: Mapping[str, tuple[tuple[int, str], ...]]  # block name -> (pid, command) holding it open
    dev_root: str = "/dev"
    root: str = "/"

    @classmethod
    def load(
        cls,
        *,
        sysfs_root: str = "/sys",
        proc_root: str = "/proc",
        dev_root: str = "/dev",
        root: str = "/",
    ) -> SystemState:
        proc = Path(proc_root)
        blocks = block_tree(sysfs_root)
        return cls(
            blocks=blocks,
            mounts=tuple(parse_mountinfo(_read(proc / "self" / "mountinfo") or "")),
            swaps=tuple(parse_swaps(_read(proc / "swaps") or "")),
            cmdline=tuple(parse_cmdline(_read(proc / "cmdline") or "")),
            open_by=_open_block_devices(proc, blocks, skip_pid=os.getpid() if proc_root == "/proc" else None),
            dev_root=dev_root,
            root=root,
        )

    # -- lookups ------------------------------------------------------------------------------------

    @cached_property
    def by_devnum(self) -> dict[str, str]:
        return {b.devnum: b.name for b in self.blocks.values()}

    def name_of_dev_path(self, path: str) -> str | None:
        """The block device a ``/dev/...`` path names (following links under ``dev_root``)."""
        if not path.startswith("/dev/"):
            return None
        local = Path(self.dev_root) / path[len("/dev/") :]
        target = os.path.realpath(local) if os.path.lexists(local) else str(local)
        name = os.path.basename(target)
        if name in self.blocks:
            return name
        # /dev/mapper/<name> without udev links: match the device-mapper name.
        base = os.path.basename(path)
        for b in self.blocks.values():
            if b.dm_name is not None and b.dm_name == base:
                return b.name
        return None

    def mount_device(self, m: Mount) -> str | None:
        """The block device under a mount: by major:minor, or by source for btrfs-like 0:N mounts."""
        name = self.by_devnum.get(m.devnum)
        if name is not None and not m.devnum.startswith("0:"):
            return name
        return self.name_of_dev_path(m.source)

    def mount_of_path(self, path: str) -> Mount | None:
        """The mount a path lives on: the longest mount point prefix (the last one mounted wins)."""
        best: Mount | None = None
        for m in self.mounts:
            mp = m.mountpoint.rstrip("/") or "/"
            if (path == mp or path.startswith(mp + "/") or mp == "/") and (
                best is None or len(mp) >= len(best.mountpoint.rstrip("/") or "/")
            ):
                best = m
        return best

    @cached_property
    def system_mountpoints(self) -> frozenset[str]:
        """SYSTEM_MOUNTS plus the mounts behind overlay layers mounted there (a live system's squashfs)."""
        result = {m.mountpoint for m in self.mounts if m.mountpoint in SYSTEM_MOUNTS}
        todo = deque(m for m in self.mounts if m.mountpoint in result)
        seen: set[int] = set()
        while todo:
            m = todo.popleft()
            if id(m) in seen or m.fstype != "overlay":
                continue
            seen.add(id(m))
            for d in _overlay_dirs(m.super_options):
                under = self.mount_of_path(d)
                if under is not None and under.mountpoint not in result:
                    result.add(under.mountpoint)
                    todo.extend(x for x in self.mounts if x.mountpoint == under.mountpoint)
        return frozenset(result)

    @cached_property
    def loop_backing_devices(self) -> dict[str, str]:
        """Loop name -> the block device holding its backing file (via the mount the file lives on)."""
        out: dict[str, str] = {}
        for b in self.blocks.values():
            if b.backing_file is None:
                continue
            # A loop set up directly on a block device (losetup /dev/loopN /dev/sdb1, or with an
            # offset on /dev/sdb) depends on that device itself: its "file" lives on devtmpfs, which
            # maps to no disk, and the kernel records no holder for loops.
            dev = self.block_device_at(b.backing_file)
            if dev is None:
                m = self.mount_of_path(b.backing_file)
                dev = self.mount_device(m) if m is not None else None
            if dev is not None and dev != b.name:
                out[b.name] = dev
        return out

    def block_device_at(self, path: str) -> str | None:
        """The block device a path names when it is a device node (under /dev, or anywhere else)."""
        name = self.name_of_dev_path(path)
        if name is not None:
            return name
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not stat.S_ISBLK(st.st_mode):
            return None
        return self.by_devnum.get(f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}")

    def resolve_spec(self, spec: str) -> str | None:
        """A device named like fstab/cmdline do (``/dev/sdb1``, ``LABEL=x``, ``UUID=y``) -> block name."""
        if spec.startswith("live:"):
            spec = spec[len("live:") :]
        if spec.startswith("/dev/"):
            return self.name_of_dev_path(spec)
        key, sep, value = spec.partition("=")
        if not sep or not value:
            return None
        folder = {
            "LABEL": "by-label",
            "CDLABEL": "by-label",
            "UUID": "by-uuid",
            "PARTUUID": "by-partuuid",
            "PARTLABEL": "by-partlabel",
        }.get(key.upper())
        if folder is None:
            return None
        if folder in ("by-uuid", "by-partuuid"):
            value = value.lower()
        return self.name_of_dev_path(f"/dev/disk/{folder}/{udev_encode(value)}")


def _overlay_dirs(options: str) -> list[str]:
    dirs: list[str] = []
    # Overlay options escape ',' and ':' with a backslash.
    for opt in re.split(r"(?<!\\),", options):
        key, _, value = opt.partition("=")
        if key == "lowerdir":
            dirs.extend(d.replace("\\:", ":").replace("\\,", ",") for d in re.split(r"(?<!\\):+", value) if d)
        elif key in ("upperdir", "workdir") and value:
            dirs.append(value.replace("\\:", ":").replace("\\,", ","))
    return [d.rstrip("/") or "/" for d in dirs]


def _open_block_devices(
    proc: Path, blocks: Mapping[str, Block], *, skip_pid: int | None
) -> dict[str, tuple[tuple[int, str], ...]]:
    """Which processes hold which block devices open, from ``/proc/<pid>/fd`` links."""
    found: dict[str, list[tuple[int, str]]] = {}
    for entry in _listdir(proc):
        if not entry.isdigit() or (skip_pid is not None and int(entry) == skip_pid):
            continue
        fd_dir = proc / entry / "fd"
        try:
            fds = os.listdir(fd_dir)
        except (FileNotFoundError, NotADirectoryError, PermissionError, ProcessLookupError):
            continue  # the process exited, or is not ours to look at: nothing to learn from it
        names: set[str] = set()
        for fd in fds:
            try:
                target = os.readlink(fd_dir / fd)
            except (FileNotFoundError, PermissionError, ProcessLookupError):
                continue  # closed meanwhile
            if target.startswith("/dev/"):
                name = os.path.basename(target)
                if name in blocks:
                    names.add(name)
        if names:
            comm = _read(proc / entry / "comm") or "?"
            for name in names:
                found.setdefault(name, []).append((int(entry), comm))
    return {k: tuple(v) for k, v in found.items()}


# --------------------------------------------------------------------------------------------------
# The check


@dataclass(frozen=True)
class _Member:
    name: str
    via: tuple[str, ...]  # block names from the disk down to (not including) this one
    loop: tuple[str, str] | None  # (loop name, backing file) when reached through a loop's file


def stack_of(disk: str, state: SystemState) -> list[_Member]:
    """The disk and everything that depends on it (partitions, holders, loops over its files)."""
    backing = state.loop_backing_devices
    loops_on: dict[str, list[str]] = {}
    for loop, dev in backing.items():
        loops_on.setdefault(dev, []).append(loop)
    members: list[_Member] = []
    seen = {disk}
    todo = deque([_Member(disk, (), None)])
    while todo:
        m = todo.popleft()
        members.append(m)
        block = state.blocks.get(m.name)
        if block is None:
            continue
        nxt: list[tuple[str, tuple[str, str] | None]] = [(p, m.loop) for p in block.partitions]
        nxt += [(h, m.loop) for h in block.holders]
        for loop in sorted(loops_on.get(m.name, ())):
            lb = state.blocks[loop].backing_file or ""
            nxt.append((loop, m.loop or (loop, lb)))
        for name, loop_info in nxt:
            if name not in seen:
                seen.add(name)
                todo.append(_Member(name, (*m.via, m.name), loop_info))
    return members


def _dev(name: str) -> str:
    return f"/dev/{name}"


def _where(m: _Member, disk: str) -> str:
    """ " (on /dev/sda2)" when the device is not the disk itself: how it hangs off the disk."""
    if m.name == disk or not m.via or (m.loop is not None and m.loop[0] == m.name):
        return ""  # the disk itself, or a loop already introduced by "the file behind /dev/loopN"
    return f" (on {_dev(m.via[-1])})" if len(m.via) > 1 else ""


def _loop_prefix(m: _Member) -> str:
    if m.loop is None:
        return ""
    loop, backing = m.loop
    return f"holds {backing}, the file behind {_dev(loop)}, which "


def check(
    info: DriveInfo,
    *,
    sysfs_root: str = "/sys",
    proc_root: str = "/proc",
    dev_root: str = "/dev",
    root: str = "/",
    state: SystemState | None = None,
) -> Verdict:
    """Whether ``info``'s disk may be erased now.  Pass ``state`` to share one snapshot between disks."""
    if state is None:
        state = SystemState.load(sysfs_root=sysfs_root, proc_root=proc_root, dev_root=dev_root, root=root)
    disk = info.kernel_name or os.path.basename(info.path)
    return Verdict.from_reasons(_reasons(disk, info, state))


@dataclass(frozen=True)
class _Disk:
    """What every rule looks at: the disk, its stack (by block name) and the system's state."""

    name: str
    info: DriveInfo
    state: SystemState
    members: tuple[_Member, ...]

    @cached_property
    def by_name(self) -> dict[str, _Member]:
        return {m.name: m for m in self.members}

    def member(self, name: str | None) -> _Member | None:
        """The member of this disk's stack called ``name`` (None: not part of it)."""
        return self.by_name.get(name) if name is not None else None

    def reason(self, code: ReasonCode, m: _Member, what: str, *, target: str, hint: str) -> Reason:
        """A reason found on member ``m``: its message says how ``m`` hangs off the disk."""
        return Reason(
            code,
            f"{_loop_prefix(m)}{what}",
            device=_dev(m.name),
            target=target,
            hint=hint,
            via=tuple(_dev(v) for v in m.via),
        )


def _read_only(d: _Disk) -> Iterator[Reason]:
    block = d.state.blocks.get(d.name)
    if d.info.read_only or (block is not None and block.read_only):
        yield Reason(
            ReasonCode.READ_ONLY,
            "is read-only (the kernel reports ro=1): it cannot be overwritten",
            device=_dev(d.name),
            hint="check the drive's write-protect switch or the adapter; Tabula does not attempt it",
        )


def _mounted(d: _Disk) -> Iterator[Reason]:
    """SYSTEM_DISK, LOOP_BACKS_SYSTEM, BOOT_MEDIUM or MOUNTED: by where a filesystem is mounted."""
    system_mps = d.state.system_mountpoints
    for mount in d.state.mounts:
        m = d.member(d.state.mount_device(mount))
        if m is not None:
            yield _mount_reason(mount, m, d.name, system_mps, d.state)


def _swap(d: _Disk) -> Iterator[Reason]:
    for swap in d.state.swaps:
        if swap.kind == "file":
            under = d.state.mount_of_path(swap.path)
            name = d.state.mount_device(under) if under is not None else None
            what = f"the swap file {swap.path} on {_dev(name)} is active" if name else ""
        else:
            name = d.state.name_of_dev_path(swap.path)
            what = f"{_dev(name)} is active swap" if name else ""
        m = d.member(name)
        if m is not None:
            yield d.reason(
                ReasonCode.SWAP,
                m,
                f"is in use as swap: {what}{_where(m, d.name)}",
                target=swap.path,
                hint=f"turn it off first: swapoff {swap.path}",
            )


def _holders(d: _Disk) -> Iterator[Reason]:
    for m in d.members:
        block = d.state.blocks.get(m.name)
        for h in block.holders if block is not None else ():
            holder = d.state.blocks.get(h)
            kind = holder.describe() if holder is not None else "block device"
            yield d.reason(
                ReasonCode.HOLDERS,
                m,
                f"is held by {_dev(h)} ({kind}): {_dev(m.name)} is part of it",
                target=_dev(h),
                hint="stop what uses it first (vgchange -an, cryptsetup close, mdadm --stop)",
            )


def _named_on_cmdline(d: _Disk) -> Iterator[Reason]:
    """SYSTEM_DISK (``root=``) or BOOT_MEDIUM (``tabula.boot=``, ``live-media=``...)."""
    for key, value in d.state.cmdline:
        if key not in (*BOOT_CMDLINE_KEYS, "root"):
            continue
        m = d.member(d.state.resolve_spec(value))
        if m is None:
            continue
        if key == "root":
            code = ReasonCode.LOOP_BACKS_SYSTEM if m.loop else ReasonCode.SYSTEM_DISK
            what = "holds the running system"
        else:
            code, what = ReasonCode.BOOT_MEDIUM, "is the boot medium"
        yield d.reason(
            code,
            m,
            f"{what}: the kernel command line names {_dev(m.name)} ({key}={value})",
            target=f"{key}={value}",
            hint="Tabula never erases the medium it runs from",
        )


def _boot_label(d: _Disk) -> Iterator[Reason]:
    for label in BOOT_LABELS:
        m = d.member(d.state.resolve_spec(f"LABEL={label}"))
        if m is not None:
            yield d.reason(
                ReasonCode.BOOT_MEDIUM,
                m,
                f"is the Tabula boot medium: {_dev(m.name)} carries the label {label}",
                target=f"LABEL={label}",
                hint="Tabula never erases the medium it runs from",
            )


def _in_use(d: _Disk) -> Iterator[Reason]:
    for m in d.members:
        users = d.state.open_by.get(m.name, ())
        if users:
            who = ", ".join(f"{comm} (pid {pid})" for pid, comm in users)
            yield d.reason(
                ReasonCode.IN_USE,
                m,
                f"is open in another program: {_dev(m.name)} is used by {who}",
                target=who,
                hint="close that program (or wait for it to finish) and check again",
            )


#: The rules, in the order their reasons are shown.
RULES: tuple[Callable[[_Disk], Iterator[Reason]], ...] = (
    _read_only,
    _mounted,
    _swap,
    _holders,
    _named_on_cmdline,
    _boot_label,
    _in_use,
)


def _reasons(disk: str, info: DriveInfo, state: SystemState) -> Iterable[Reason]:
    d = _Disk(disk, info, state, tuple(stack_of(disk, state)))
    for rule in RULES:
        yield from rule(d)


def _mount_reason(
    mount: Mount, m: _Member, disk: str, system_mps: frozenset[str], state: SystemState
) -> Reason:
    via = tuple(_dev(v) for v in m.via)
    src = f"{_dev(m.name)}{_where(m, disk)}"
    prefix = _loop_prefix(m)
    mp = mount.mountpoint
    if mp in system_mps:
        return Reason(
            ReasonCode.LOOP_BACKS_SYSTEM if m.loop else ReasonCode.SYSTEM_DISK,
            f"{prefix}holds the running system: {mp} is mounted from {src}",
            device=_dev(m.name),
            target=mp,
            hint="Tabula never erases the disk it runs from",
            via=via,
        )
    if mp in LIVE_MEDIUM_MOUNTS:
        return Reason(
            ReasonCode.BOOT_MEDIUM,
            f"{prefix}is the boot medium: {mp} is mounted from {src}",
            device=_dev(m.name),
            target=mp,
            hint="Tabula never erases the medium it runs from",
            via=via,
        )
    marker = Path(state.root) / mp.lstrip("/") / BOOT_MARKER
    if mount.root == "/" and marker.is_file():
        return Reason(
            ReasonCode.BOOT_MEDIUM,
            f"{prefix}is a Tabula boot medium: {os.path.join(mp, BOOT_MARKER)} is on {src}",
            device=_dev(m.name),
            target=os.path.join(mp, BOOT_MARKER),
            hint="remove the marker file only if this drive really must be erased",
            via=via,
        )
    return Reason(
        ReasonCode.MOUNTED,
        f"{prefix}has a mounted filesystem: {src} is mounted on {mp}",
        device=_dev(m.name),
        target=mp,
        hint=f"unmount it first: umount {mp}",
        via=via,
    )
