"""Drive discovery: which whole disks this machine has, what they are, and whether they may be erased.

Two sources, one mapping:

* with udevd running (the live image), pyudev gives each disk's udev properties: ``ID_SERIAL_SHORT``,
  ``ID_WWN``, ``ID_MODEL``, ``ID_BUS``, ``DEVLINKS`` (``/dev/disk/by-id``, ``by-path``) ...;
* without udevd (containers, CI) only the kernel's properties exist, and the identity comes from sysfs
  (``device/serial``, ``device/model``, ``device/vpd_pg80``, ``wwid``, ...).

Both are read into a :class:`DeviceRecord` (properties + sysfs attributes + the parents' subsystems),
and :func:`drive_info_from_record` turns a record into an :class:`host.identity.DriveInfo`: a pure
function, tested with recorded records.

Only whole disks are offered.  Never offered: partitions, ``ram``/``zram``/``dm``/``md``/``nbd`` and every
other virtual block device (holders, not targets), optical drives, hidden NVMe paths, empty slots
(size 0).  Loop devices are offered only when asked (``include_loop``) and only while attached.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyudev

from host.errors import BadInput
from host.identity import DriveInfo
from host.protection import Block, SystemState, Verdict, block_tree, check

# --------------------------------------------------------------------------------------------------
# Errors


class DriveNotFound(BadInput):
    hint = "list the drives Tabula sees and name one by its /dev path, by-id link, serial or WWN"


class NotABlockDevice(BadInput):
    hint = "name a disk such as /dev/sda, /dev/nvme0n1 or a /dev/disk/by-id link"


class PartitionNotDisk(BadInput):
    """Tabula erases whole disks: a partition was named."""

    def __init__(self, partition: str, disk: str) -> None:
        super().__init__(
            f"{partition} is a partition of {disk}: erase the whole disk {disk}",
            hint=f"name {disk} instead",
        )
        self.partition = partition
        self.disk = disk


class LoopNeedsFlag(BadInput):
    def __init__(self, path: str) -> None:
        super().__init__(
            f"{path} is a loop device, which is only offered with --include-loop",
            hint="add --include-loop if you really mean this loop device (tests, demonstrations)",
        )
        self.path = path


class NotOfferable(BadInput):
    """A block device that is never an erase target (zram, device-mapper, optical, ...)."""

    hint = "name the physical disk instead"


class AmbiguousDrive(BadInput):
    def __init__(self, name: str, paths: list[str]) -> None:
        super().__init__(
            f"'{name}' matches several drives: {', '.join(paths)}",
            hint="name the drive by its /dev path or its full serial or WWN",
        )


# --------------------------------------------------------------------------------------------------
# Records: what we read about one block device


@dataclass(frozen=True)
class DeviceRecord:
    """Everything discovery reads about one block device, before any interpretation.

    ``sys_path`` is the device's directory in sysfs (``/sys/devices/.../block/sda``), ``properties``
    its udev properties (or only the kernel's when udevd is not running), ``attrs`` sysfs attribute
    values by short name (see :data:`SYSFS_ATTRS`), ``subsystems`` the subsystems of its parent
    devices, nearest first (``("scsi", "scsi", "scsi", "pci")``).
    """

    kernel_name: str
    sys_path: str
    properties: Mapping[str, str] = field(default_factory=dict)
    attrs: Mapping[str, str] = field(default_factory=dict)
    subsystems: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kernel_name": self.kernel_name,
            "sys_path": self.sys_path,
            "properties": dict(self.properties),
            "attrs": dict(self.attrs),
            "subsystems": list(self.subsystems),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DeviceRecord:
        return cls(
            kernel_name=str(d["kernel_name"]),
            sys_path=str(d["sys_path"]),
            properties={str(k): str(v) for k, v in dict(d.get("properties", {})).items()},
            attrs={str(k): str(v) for k, v in dict(d.get("attrs", {})).items()},
            subsystems=tuple(str(s) for s in d.get("subsystems", ())),
        )


#: Short attribute name -> path relative to the block device's sysfs directory.
SYSFS_ATTRS: dict[str, str] = {
    "size": "size",
    "ro": "ro",
    "removable": "removable",
    "hidden": "hidden",
    "rotational": "queue/rotational",
    "logical_block_size": "queue/logical_block_size",
    "physical_block_size": "queue/physical_block_size",
    "wwid": "wwid",  # NVMe namespaces
    "block_serial": "serial",  # virtio-blk
    "backing_file": "loop/backing_file",
    "partition": "partition",
    "serial": "device/serial",  # NVMe controllers, MMC cards
    "model": "device/model",
    "vendor": "device/vendor",
    "rev": "device/rev",
    "firmware_rev": "device/firmware_rev",
    "device_wwid": "device/wwid",  # SCSI/ATA: from VPD page 0x83
    "scsi_type": "device/type",
    "mmc_name": "device/name",
}


_UNKNOWN_ATTR_ERRNOS = frozenset(
    {errno.EIO, errno.ENXIO, errno.ENODEV, errno.EINVAL, errno.ENODATA, errno.EOPNOTSUPP}
)


def _read_attr(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except OSError as exc:
        # Some attributes fail instead of being absent: "not known".  NVMe wwid on old firmware
        # (EIO/ENODEV/EINVAL), device/wwid behind many USB bridges (ENXIO: no VPD page 0x83).
        if exc.errno in _UNKNOWN_ATTR_ERRNOS:
            return None
        raise


def parse_vpd_pg80(data: bytes) -> str | None:
    """The unit serial number from a SCSI VPD page 0x80 (4-byte header, then ASCII)."""
    if len(data) < 4 or data[1] != 0x80:
        return None
    length = int.from_bytes(data[2:4], "big")
    serial = data[4 : 4 + length].decode("ascii", errors="replace").strip(" \x00")
    return serial or None


def _subsystems(sys_path: Path) -> tuple[str, ...]:
    chain: list[str] = []
    p = sys_path.parent
    while p.name and p.name != "devices" and p != p.parent:
        link = p / "subsystem"
        if os.path.islink(link):
            chain.append(os.path.basename(os.readlink(link)))
        p = p.parent
    return tuple(chain)


def _ata_is_sata(sys_path: Path) -> str | None:
    """ "1" when the libata port above the disk has a SATA link, "0" for PATA, None when not ATA."""
    for parent in sys_path.parents:
        if re.fullmatch(r"ata\d+", parent.name):
            return "1" if any(parent.glob("link*/ata_link/link*/sata_spd")) else "0"
    return None


def read_record(sys_path: str, properties: Mapping[str, str] | None = None) -> DeviceRecord:
    """Read a block device's record from its sysfs directory (``properties``: udev's, when known)."""
    path = Path(sys_path)
    props = dict(properties) if properties is not None else _read_uevent(path)
    attrs: dict[str, str] = {}
    for key, rel in SYSFS_ATTRS.items():
        value = _read_attr(path / rel)
        if value is not None:
            attrs[key] = value
    try:
        pg80 = parse_vpd_pg80((path / "device" / "vpd_pg80").read_bytes())
    except (FileNotFoundError, NotADirectoryError):
        pg80 = None
    except OSError as exc:
        if exc.errno not in _UNKNOWN_ATTR_ERRNOS:
            raise
        pg80 = None
    if pg80 is not None:
        attrs["vpd_serial"] = pg80
    sata = _ata_is_sata(Path(os.path.realpath(path)))
    if sata is not None:
        attrs["sata"] = sata
    real = Path(os.path.realpath(path))
    return DeviceRecord(
        kernel_name=real.name,
        sys_path=str(real),
        properties=props,
        attrs=attrs,
        subsystems=_subsystems(real),
    )


def _read_uevent(path: Path) -> dict[str, str]:
    props: dict[str, str] = {}
    for line in (_read_attr(path / "uevent") or "").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            props[key] = value
    if "DEVNAME" in props and not props["DEVNAME"].startswith("/"):
        props["DEVNAME"] = "/dev/" + props["DEVNAME"]
    return props


# --------------------------------------------------------------------------------------------------
# The mapping: record -> DriveInfo (pure)

_HEXID = re.compile(r"^[0-9a-f]{16}(?:[0-9a-f]{16})?$")


def normalize_wwn(value: str | None) -> str | None:
    """A world wide name in one spelling whatever the source: ``naa.<hex>``, ``eui.<hex>``, ``uuid.<uuid>``.

    udev's ``ID_WWN`` ``0x5002538e40a1b2c3`` and sysfs's ``naa.5002538e40a1b2c3`` are the same name.
    Vendor-made ids that are not WWNs (``t10.``, NVMe's ``nvme.``) and all-zero names are None.
    """
    if not value:
        return None
    v = value.strip().lower()
    if v.startswith("0x"):
        v = "naa." + v[2:]
    elif _HEXID.match(v):
        v = "naa." + v
    kind, sep, rest = v.partition(".")
    if not sep or kind not in ("naa", "eui", "uuid") or not rest:
        return None
    if kind in ("naa", "eui") and not re.fullmatch(r"[0-9a-f]+", rest):
        return None
    if not rest.strip("0-"):
        return None
    return f"{kind}.{rest}"


_UDEV_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")


def _udev_decode(value: str) -> str:
    return _UDEV_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), value)


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    v = " ".join(value.replace("\x00", " ").split())
    return v or None


#: Transports known by a subsystem above the disk, a udev bus, or the kernel's name for it.
_BY_BUS = (("usb", "usb", None), ("nvme", "nvme", "nvme"), ("mmc", None, "mmcblk"))


def _transport(rec: DeviceRecord) -> str:
    name = rec.kernel_name
    subs = set(rec.subsystems)
    bus = rec.properties.get("ID_BUS", "")
    if name.startswith("loop"):
        return "loop"
    for transport, bus_name, prefix in _BY_BUS:
        if transport in subs or (bus_name and bus == bus_name) or (prefix and name.startswith(prefix)):
            return transport
    if _is_sas(rec):
        return "sas"
    ata = _ata_kind(rec)
    if ata is not None:
        return ata
    if "virtio" in subs and "scsi" not in subs:
        return "virtio"
    if "scsi" in subs or bus == "scsi":
        return "scsi"
    return "unknown"


def _is_sas(rec: DeviceRecord) -> bool:
    parts = rec.sys_path.split("/")
    return (
        any(p.startswith(("end_device-", "expander-")) for p in parts)
        or rec.properties.get("ID_SCSI_TRANSPORT") == "sas"
    )


def _ata_kind(rec: DeviceRecord) -> str | None:
    """ "sata" or "ata" (parallel) for a disk on a libata port; None when it is not ATA."""
    props, attrs = rec.properties, rec.attrs
    parts = rec.sys_path.split("/")
    if not (
        any(re.fullmatch(r"ata\d+", p) for p in parts) or props.get("ID_BUS") == "ata" or "sata" in attrs
    ):
        return None
    if props.get("ID_ATA_SATA") == "1" or attrs.get("sata") == "1":
        return "sata"
    if "ID_ATA" in props or attrs.get("sata") == "0":
        return "ata"
    return "sata"


def _rotational(rec: DeviceRecord) -> bool:
    rpm = rec.properties.get("ID_ATA_ROTATION_RATE_RPM")
    if rpm is not None and rpm.isdigit():
        return int(rpm) > 0
    return rec.attrs.get("rotational") == "1"


def _media_type(transport: str, rotational: bool) -> str:
    if transport in ("loop", "virtio"):
        return "virtual"
    if transport in ("nvme", "usb", "mmc"):
        return transport
    if transport in ("sata", "ata", "scsi", "sas"):
        return "hdd" if rotational else "ssd"
    return "unknown"


def skip_reason(rec: DeviceRecord) -> str | None:
    """Why a block device is never offered as a drive (None when it is a candidate disk)."""
    name = rec.kernel_name
    devtype = rec.properties.get("DEVTYPE")
    if devtype == "partition" or "partition" in rec.attrs:
        return "a partition"
    if devtype not in (None, "disk"):
        return f"not a disk ({devtype})"
    if name.startswith(("zram", "ram")):
        return "a RAM disk"
    if name.startswith("dm-"):
        return "a device-mapper volume"
    if name.startswith("md"):
        return "a software RAID array"
    if "/devices/virtual/" in rec.sys_path and not name.startswith("loop"):
        return "a virtual block device"
    if name.startswith("sr") or (rec.attrs.get("scsi_type") == "5" and "scsi" in rec.subsystems):
        return "an optical drive"
    if rec.attrs.get("hidden") == "1":
        return "a hidden NVMe path"
    return None


def drive_info_from_record(rec: DeviceRecord) -> DriveInfo | None:
    """The DriveInfo of a candidate disk; None when it is never offered or has no medium (size 0).

    Loop devices are returned (transport "loop"); whether to offer them is the caller's choice.
    """
    if skip_reason(rec) is not None:
        return None
    props, attrs = rec.properties, rec.attrs
    size = attrs.get("size", "")
    lbs = attrs.get("logical_block_size", "")
    pbs = attrs.get("physical_block_size", "")
    if not (size.isdigit() and lbs.isdigit() and pbs.isdigit()) or int(size) == 0:
        return None  # gone, or an empty slot (card reader without a card, detached loop)
    transport = _transport(rec)
    rotational = _rotational(rec)
    devname = props.get("DEVNAME", "")
    links = props.get("DEVLINKS", "").split()
    return DriveInfo(
        path=devname if devname.startswith("/") else f"/dev/{rec.kernel_name}",
        size_bytes=int(size) * 512,  # sysfs sizes are always in 512-byte units
        logical_sector_size=int(lbs),
        physical_sector_size=int(pbs),
        transport=transport,
        media_type=_media_type(transport, rotational),
        rotational=rotational,
        removable=attrs.get("removable") == "1",
        read_only=attrs.get("ro") == "1",
        **(_identity(rec) if transport != "loop" else {}),
        by_id=tuple(sorted(link for link in links if link.startswith("/dev/disk/by-id/"))),
        by_path=tuple(sorted(link for link in links if link.startswith("/dev/disk/by-path/"))),
        kernel_name=rec.kernel_name,
        backing_file=attrs.get("backing_file") if transport == "loop" else None,
    )


def _identity(rec: DeviceRecord) -> dict[str, str | None]:
    """Serial, WWN, model, vendor and firmware: udev's properties first, then sysfs's attributes."""
    props, attrs = rec.properties, rec.attrs
    wwn = normalize_wwn(props.get("ID_WWN_WITH_EXTENSION") or props.get("ID_WWN"))
    return {
        "serial": _clean(
            props.get("ID_SERIAL_SHORT")
            or props.get("ID_SCSI_SERIAL")
            or attrs.get("serial")
            or attrs.get("vpd_serial")
            or attrs.get("block_serial")
        ),
        "wwn": wwn or normalize_wwn(attrs.get("wwid")) or normalize_wwn(attrs.get("device_wwid")),
        "model": _clean(_udev_text(props, "ID_MODEL") or attrs.get("model") or attrs.get("mmc_name")),
        "vendor": _vendor(rec),
        "firmware": _clean(props.get("ID_REVISION") or attrs.get("firmware_rev") or attrs.get("rev")),
    }


def _udev_text(props: Mapping[str, str], key: str) -> str:
    """A udev string property: its encoded form (``ID_MODEL_ENC``) decoded, else the plain one with
    udev's underscores as spaces."""
    encoded = props.get(key + "_ENC")
    return _udev_decode(encoded) if encoded else props.get(key, "").replace("_", " ")


def _vendor(rec: DeviceRecord) -> str | None:
    vendor = _clean(_udev_text(rec.properties, "ID_VENDOR"))
    if vendor is None and _transport(rec) not in ("virtio", "nvme"):
        vendor = _clean(rec.attrs.get("vendor"))  # virtio and NVMe give a PCI vendor id here, not a name
    if vendor is not None and vendor.upper() == "ATA":
        return None  # libata's placeholder, not the maker
    return vendor


def drive_from_device(device: pyudev.Device) -> DriveInfo | None:
    """The DriveInfo of a pyudev block device (for hot-plug events); None when not a candidate disk."""
    props = {str(k): str(v) for k, v in device.properties.items()}
    return drive_info_from_record(read_record(device.sys_path, props))


# --------------------------------------------------------------------------------------------------
# Discovery


@dataclass(frozen=True)
class DriveEntry:
    """A discovered drive and whether it may be erased now."""

    info: DriveInfo
    protection: Verdict

    @property
    def path(self) -> str:
        return self.info.path

    @property
    def identity(self) -> str:
        return self.info.identity


def _natural_key(name: str) -> tuple[Any, ...]:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def udev_running() -> bool:
    """Whether udevd runs here (its control socket exists): then udev properties and links exist."""
    return os.path.exists("/run/udev/control")


def records(*, context: pyudev.Context | None = None, sysfs_root: str = "/sys") -> Iterator[DeviceRecord]:
    """A record for every whole-disk block device: through udev for the real /sys, else from the tree."""
    if sysfs_root == "/sys":
        ctx = context if context is not None else pyudev.Context()
        for dev in ctx.list_devices(subsystem="block", DEVTYPE="disk"):
            props = {str(k): str(v) for k, v in dev.properties.items()}
            yield read_record(dev.sys_path, props)
        return
    base = Path(sysfs_root) / "class" / "block"
    for name in sorted(os.listdir(base)) if base.is_dir() else []:
        rec = read_record(str(base / name))
        if rec.properties.get("DEVTYPE", "disk") == "disk" and "partition" not in rec.attrs:
            yield rec


def _scan(*, include_loop: bool, context: pyudev.Context | None, sysfs_root: str) -> list[DriveInfo]:
    infos: list[DriveInfo] = []
    for rec in records(context=context, sysfs_root=sysfs_root):
        info = drive_info_from_record(rec)
        if info is None or (info.transport == "loop" and not include_loop):
            continue
        infos.append(info)
    infos.sort(key=lambda i: _natural_key(i.kernel_name))
    return infos


def discover(
    *,
    include_loop: bool = False,
    context: pyudev.Context | None = None,
    sysfs_root: str = "/sys",
    proc_root: str = "/proc",
    dev_root: str = "/dev",
) -> list[DriveEntry]:
    """Every whole disk that could be erased, each with its protection verdict."""
    infos = _scan(include_loop=include_loop, context=context, sysfs_root=sysfs_root)
    state = SystemState.load(sysfs_root=sysfs_root, proc_root=proc_root, dev_root=dev_root)
    return [DriveEntry(info=i, protection=check(i, state=state)) for i in infos]


def resolve(
    path_or_id: str,
    *,
    include_loop: bool,
    context: pyudev.Context | None = None,
    sysfs_root: str = "/sys",
    proc_root: str = "/proc",
    dev_root: str = "/dev",
) -> DriveEntry:
    """The drive named by a /dev path, a /dev/disk/by-* link, a serial, a WWN or an identity.

    Raises a :class:`station.errors.BadInput` subclass, with a one-line message and a hint, for an
    unknown name, a partition, something that is not a block device, a block device that is never a
    drive (zram, dm, optical), and a loop device without ``include_loop``.
    """
    text = path_or_id.strip()
    if not text:
        raise DriveNotFound("no drive named")
    entries = discover(
        include_loop=True, context=context, sysfs_root=sysfs_root, proc_root=proc_root, dev_root=dev_root
    )
    if text.startswith("/"):
        name = _block_name_of_path(text, sysfs_root)
        matches = [e for e in entries if e.info.kernel_name == name]
        if not matches:
            _explain_not_offered(text, name, sysfs_root)
    else:
        matches = _match_id(text, entries)
        if not matches:
            raise DriveNotFound(f"no drive matches '{text}' (not a serial, WWN, by-id name or identity)")
        if len(matches) > 1:
            raise AmbiguousDrive(text, [e.path for e in matches])
    entry = matches[0]
    if entry.info.transport == "loop" and not include_loop:
        raise LoopNeedsFlag(entry.path)
    return entry


def _block_name_of_path(path: str, sysfs_root: str) -> str:
    """The kernel name of the block device at ``path`` (by its major:minor, through sysfs)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DriveNotFound(f"no such device: {path}") from None
    except NotADirectoryError:
        raise DriveNotFound(f"no such device: {path}") from None
    if not stat.S_ISBLK(st.st_mode):
        raise NotABlockDevice(f"{path} is not a block device")
    devnum = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    base = Path(sysfs_root) / "class" / "block"
    for name in sorted(os.listdir(base)) if base.is_dir() else []:
        if _read_attr(base / name / "dev") == devnum:
            return name
    raise DriveNotFound(f"{path} is a block device ({devnum}) the kernel does not list: it was removed")


def _explain_not_offered(given: str, name: str, sysfs_root: str) -> None:
    """Raise the error that says why the block device ``name`` is not a drive Tabula offers."""
    tree = block_tree(sysfs_root)
    block = tree.get(name)
    if block is not None and block.parent is not None:
        raise PartitionNotDisk(f"/dev/{name}", f"/dev/{block.parent}")
    rec = read_record(str(Path(sysfs_root) / "class" / "block" / name))
    why = skip_reason(rec)
    if why is not None:
        disks = _disks_under(name, tree)
        if disks:
            raise NotOfferable(
                f"{given} is {why}, not a disk: it sits on {', '.join(disks)}",
                hint=f"to erase the data under it, name the disk: {disks[0]}",
            )
        raise NotOfferable(f"{given} is {why}, not a disk Tabula erases")
    raise DriveNotFound(f"{given} has no medium (size 0) or vanished: nothing to erase")


def _disks_under(name: str, tree: Mapping[str, Block]) -> list[str]:
    """The whole disks a stacked device (dm, md) is built on, via ``slaves/``."""
    found: list[str] = []
    todo = [name]
    seen: set[str] = set()
    while todo:
        n = todo.pop()
        if n in seen or n not in tree:
            continue
        seen.add(n)
        block = tree[n]
        if n != name and not block.slaves and block.parent is None:
            found.append(f"/dev/{n}")
        if block.parent is not None:
            todo.append(block.parent)
        todo.extend(block.slaves)
    return sorted(set(found), key=_natural_key)


def _match_id(text: str, entries: list[DriveEntry]) -> list[DriveEntry]:
    wanted_wwn = normalize_wwn(text)
    low = text.lower()
    out: list[DriveEntry] = []
    for e in entries:
        i = e.info
        by_id_names = {os.path.basename(p).lower() for p in i.by_id}
        if (
            (i.serial is not None and i.serial.lower() == low)
            or (wanted_wwn is not None and i.wwn == wanted_wwn)
            or i.identity.lower() == low
            or low in by_id_names
            or i.kernel_name == text
        ):
            out.append(e)
    return out


# --------------------------------------------------------------------------------------------------
# Hot-plug

EventCallback = Callable[[str, "DriveInfo | str"], None]


class DriveMonitor:
    """Turns kernel/udev block events into drive events: ``("add"|"change", DriveInfo)``, ``("remove", name)``.

    A drive is present while it is a candidate disk with a medium: attaching a loop device is an
    "add" although the kernel only says "change", and detaching it is a "remove".  :meth:`handle` does
    the bookkeeping and can be fed events directly; :meth:`start` runs a pyudev observer thread.
    The callback runs in that thread and must not raise.
    """

    def __init__(
        self,
        callback: EventCallback,
        *,
        include_loop: bool,
        context: pyudev.Context | None = None,
        source: str | None = None,
    ) -> None:
        self.callback = callback
        self.include_loop = include_loop
        self.context = context if context is not None else pyudev.Context()
        self.source = source if source is not None else ("udev" if udev_running() else "kernel")
        self._lock = threading.Lock()
        self.present: set[str] = set()
        self._observer: pyudev.MonitorObserver | None = None

    def handle(self, action: str, name: str, info: DriveInfo | None) -> tuple[str, DriveInfo | str] | None:
        """Account for one event on block device ``name``; returns (and calls back with) the drive event."""
        if info is not None and info.transport == "loop" and not self.include_loop:
            info = None
        with self._lock:
            known = name in self.present
            event: tuple[str, DriveInfo | str] | None = None
            if action == "remove" or info is None:
                if known:
                    self.present.discard(name)
                    event = ("remove", name)
            elif known:
                event = ("change", info)
            else:
                self.present.add(name)
                event = ("add", info)
        if event is not None:
            self.callback(*event)
        return event

    def _on_device(self, device: pyudev.Device) -> None:
        action = str(device.action or "change")
        info = None if action == "remove" else drive_from_device(device)
        self.handle(action, str(device.sys_name), info)

    def start(self) -> DriveMonitor:
        mon = pyudev.Monitor.from_netlink(self.context, source=self.source)
        mon.filter_by("block", "disk")
        mon.start()  # listen before taking stock, so nothing slips between the two
        scanned = _scan(include_loop=self.include_loop, context=self.context, sysfs_root="/sys")
        with self._lock:
            self.present = {i.kernel_name for i in scanned}
        self._observer = pyudev.MonitorObserver(mon, callback=self._on_device, name="tabula-drive-monitor")
        self._observer.start()
        return self

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.send_stop()
            self._observer.join(timeout=5)
            self._observer = None

    def __enter__(self) -> DriveMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def monitor(
    callback: EventCallback, *, include_loop: bool, context: pyudev.Context | None = None
) -> DriveMonitor:
    """Start watching for drives coming and going; returns the running monitor (``stop()`` it)."""
    return DriveMonitor(callback, include_loop=include_loop, context=context).start()
