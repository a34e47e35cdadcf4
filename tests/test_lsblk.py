"""lsblk's JSON maps to drives through discovery's one mapping (host.drives.drive_info_from_record)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from diagnostics.inventory import parse_lsblk as inventory_lsblk
from host.drives import DeviceRecord, drive_info_from_record
from host.lsblk import parse_lsblk, record_from_lsblk
from host.runner import read_fixture

MACHINES = Path(__file__).parent / "fixtures" / "machines"


def entry(**fields: Any) -> dict[str, Any]:
    base = {
        "name": "sdb",
        "kname": "sdb",
        "path": "/dev/sdb",
        "type": "disk",
        "size": 1 << 30,
        "rota": True,
        "rm": False,
        "hotplug": False,
        "ro": False,
        "tran": "sata",
        "subsystems": "block:scsi:pci",
        "serial": "S1",
        "model": "Some Disk",
        "vendor": "ATA     ",
        "log-sec": 512,
        "phy-sec": 4096,
    }
    base.update(fields)
    return base


def drives(*entries: dict[str, Any]) -> list[Any]:
    return parse_lsblk(json.dumps({"blockdevices": list(entries)}))


@pytest.mark.parametrize(
    ("case", "transport", "media"),
    [
        ("qemu-sata-hdd", "sata", "hdd"),
        ("qemu-sata-ssd", "sata", "ssd"),
        ("qemu-nvme", "nvme", "nvme"),
        ("qemu-scsi", "scsi", "hdd"),
        ("qemu-scsi-lsi", "scsi", "hdd"),
        ("qemu-usb", "usb", "usb"),
    ],
)
def test_recorded_machines(case: str, transport: str, media: str) -> None:
    (d,) = parse_lsblk(read_fixture(MACHINES / case / "lsblk_-J_-b_-O").stdout)
    assert (d.transport, d.media_type) == (transport, media)
    assert d.size_bytes == 33554432 and d.serial
    assert d.path == ("/dev/nvme0n1" if transport == "nvme" else "/dev/sda")


@pytest.mark.parametrize(
    ("fields", "transport"),
    [
        ({"tran": "sata"}, "sata"),
        ({"tran": "ata"}, "ata"),
        ({"tran": "sas"}, "sas"),
        ({"tran": "spi"}, "scsi"),
        ({"tran": None, "subsystems": "block:scsi:virtio:pci"}, "scsi"),
        ({"tran": None, "subsystems": "block:virtio:pci", "name": "vda", "kname": "vda"}, "virtio"),
        ({"tran": "usb", "subsystems": "block:scsi:usb:pci"}, "usb"),
        ({"tran": None, "subsystems": "block:mmc:platform", "name": "mmcblk0", "kname": "mmcblk0"}, "mmc"),
    ],
)
def test_transport_is_discoverys(fields: dict[str, Any], transport: str) -> None:
    (d,) = drives(entry(**fields))
    assert d.transport == transport
    assert d.transport == drive_info_from_record(record_from_lsblk(entry(**fields))).transport  # type: ignore[union-attr]


def test_fields_are_cleaned_like_udev_ones() -> None:
    (d,) = drives(entry(wwn="0x5002538e40a1b2c3", model="  Some   Disk ", rev="1.0 "))
    assert d.identity == "wwn:naa.5002538e40a1b2c3"  # the same spelling as udev's and sysfs's
    assert d.model == "Some Disk" and d.firmware == "1.0"
    assert d.vendor is None  # libata's placeholder "ATA", not the maker
    assert (d.logical_sector_size, d.physical_sector_size) == (512, 4096)
    (nvme,) = drives(entry(name="nvme0n1", kname="nvme0n1", tran="nvme", wwn="nvme.1b36-5442", serial="N1"))
    assert nvme.wwn is None and nvme.identity == "serial:Some Disk:N1"  # vendor-made ids are not WWNs


def test_usb_hotplug_is_removable() -> None:
    (d,) = drives(entry(tran="usb", subsystems="block:scsi:usb:pci", hotplug=True))
    assert d.removable
    (d,) = drives(entry(hotplug=True))
    assert not d.removable


def test_what_is_never_a_drive() -> None:
    assert (
        drives(
            entry(name="sdb1", kname="sdb1", type="part"),
            entry(name="zram0", kname="zram0", type="disk", tran=None, subsystems="block"),
            entry(name="sr0", kname="sr0", type="rom"),
            entry(name="sdc", kname="sdc", size=0),
            entry(name="loop0", kname="loop0", type="loop", tran=None, subsystems="block"),
        )
        == []
    )
    assert parse_lsblk("not json") == [] and parse_lsblk("[]") == []


def test_inventory_uses_the_same_mapping() -> None:
    text = json.dumps(
        {
            "blockdevices": [
                entry(),
                entry(name="vda", kname="vda", path="/dev/vda", tran=None, subsystems="block:virtio:pci"),
            ]
        }
    )
    assert [(s.path, s.transport) for s in inventory_lsblk(text)] == [
        ("/dev/sdb", "sata"),
        ("/dev/vda", "virtio"),
    ]


def test_a_record_is_a_record() -> None:
    rec = record_from_lsblk(entry())
    assert isinstance(rec, DeviceRecord) and rec.subsystems == ("scsi", "pci")
