"""``lsblk -J -b -O`` read as discovery records, so it maps to drives exactly as udev and sysfs do.

A recorded machine (``TABULA_REPLAY_MACHINE``) and the diagnostics' inventory know the disks from
lsblk's JSON.  Rather than interpreting its fields a second way, each entry becomes a
:class:`host.drives.DeviceRecord` (udev-like properties, sysfs-like attributes, the parents'
subsystems) and goes through the one mapping, :func:`host.drives.drive_info_from_record`: the same
transport, media type, identity and skip rules as on a live machine.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from host.drives import DeviceRecord, drive_info_from_record
from host.identity import DriveInfo

#: lsblk's ``tran`` -> udev's ``ID_BUS`` (parallel SCSI, Fibre Channel and iSCSI are SCSI disks).
_BUS = {
    "sata": "ata",
    "ata": "ata",
    "nvme": "nvme",
    "usb": "usb",
    "sas": "scsi",
    "spi": "scsi",
    "fc": "scsi",
    "iscsi": "scsi",
}


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _flag(value: Any) -> str:
    return "1" if value is True or value in ("1", 1) else "0"


def record_from_lsblk(entry: Mapping[str, Any]) -> DeviceRecord:
    """One ``blockdevices`` entry as a discovery record."""
    name = str(entry.get("kname") or entry["name"])
    # "block:scsi:usb:pci": the device's own subsystem first, then its parents', nearest first.
    subsystems = tuple(s for s in str(entry.get("subsystems") or "").split(":") if s and s != "block")
    # A block device with no bus above it (loop, zram, nbd) lives under /sys/devices/virtual.
    where = "/sys/devices/virtual/block" if not subsystems else "/sys/class/block"
    return DeviceRecord(
        kernel_name=name,
        sys_path=f"{where}/{name}",
        properties=_properties(entry, name),
        attrs=_attributes(entry),
        subsystems=subsystems,
    )


def _properties(entry: Mapping[str, Any], name: str) -> dict[str, str]:
    """What udev would say: bus, identity, and the ATA/SAS flags discovery reads."""
    tran = str(entry.get("tran") or "")
    props = {
        "DEVNAME": str(entry.get("path") or f"/dev/{name}"),
        "DEVTYPE": "disk" if entry.get("type") == "disk" else str(entry.get("type") or ""),
        "ID_BUS": _BUS.get(tran, ""),
        "ID_SERIAL_SHORT": _text(entry.get("serial")),
        "ID_WWN": _text(entry.get("wwn")),
        # lsblk's model and vendor are plain text: given as udev's encoded form, nothing to decode.
        "ID_MODEL_ENC": _text(entry.get("model")),
        "ID_VENDOR_ENC": _text(entry.get("vendor")),
        "ID_REVISION": _text(entry.get("rev")),
        "ID_ATA": "1" if tran in ("sata", "ata") else None,
        "ID_ATA_SATA": "1" if tran == "sata" else None,
        "ID_SCSI_TRANSPORT": "sas" if tran == "sas" else None,
    }
    return {k: v for k, v in props.items() if v}


def _attributes(entry: Mapping[str, Any]) -> dict[str, str]:
    """What sysfs would say: size in 512-byte units, flags, sector sizes."""
    size = str(entry.get("size"))
    usb_hotplug = entry.get("hotplug") is True and entry.get("tran") == "usb"
    return {
        "size": str(int(size) // 512) if size.isdigit() else "",
        "ro": _flag(entry.get("ro")),
        "removable": _flag(entry.get("rm") is True or usb_hotplug),
        "rotational": _flag(entry.get("rota")),
        "logical_block_size": str(entry.get("log-sec") or 512),
        "physical_block_size": str(entry.get("phy-sec") or 512),
    }


def parse_lsblk(text: str) -> list[DriveInfo]:
    """The candidate disks of an ``lsblk -J -b -O`` output (loop devices included, transport
    ``loop``; partitions, RAM disks, optical drives and empty slots left out).  Unreadable JSON
    gives no disk."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return []
    entries = doc.get("blockdevices", []) if isinstance(doc, dict) else []
    infos = (drive_info_from_record(record_from_lsblk(e)) for e in entries if isinstance(e, dict))
    return [i for i in infos if i is not None]
