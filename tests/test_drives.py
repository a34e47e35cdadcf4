"""Drive discovery, resolution and hot-plug events.

Real parts run on this machine (its disks, loop devices the tests attach); udev-described drives come
from recorded property sets (tests/fixtures/sysfs/records), and layouts this machine cannot produce
(partitions, device-mapper, SATA/NVMe/USB parents) from small fake sysfs trees.
"""

from __future__ import annotations

import errno
import json
import os
import queue
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from host.drives import (
    AmbiguousDrive,
    DeviceRecord,
    DriveMonitor,
    DriveNotFound,
    LoopNeedsFlag,
    NotABlockDevice,
    NotOfferable,
    PartitionNotDisk,
    discover,
    drive_info_from_record,
    monitor,
    normalize_wwn,
    parse_vpd_pg80,
    read_record,
    records,
    resolve,
    skip_reason,
    udev_running,
)
from host.errors import BadInput
from host.identity import DriveInfo
from host.protection import ReasonCode
from tests.conftest import LoopFactory
from tests.fixtures.sysfs.fakesys import FakeMachine
from tests.loopdev import loop_device
from tests.test_protection import root_disk

MiB = 1 << 20
RECORDS = Path(__file__).parent / "fixtures" / "sysfs" / "records"


# --------------------------------------------------------------------------------------------------
# This machine


def test_system_disk_is_discovered_and_refused() -> None:
    disk = root_disk()
    entries = discover()
    by_name = {e.info.kernel_name: e for e in entries}
    assert disk in by_name, [e.path for e in entries]
    e = by_name[disk]
    sectors = int(Path(f"/sys/class/block/{disk}/size").read_text())
    assert e.info.size_bytes == sectors * 512
    assert e.info.logical_sector_size == int(
        Path(f"/sys/class/block/{disk}/queue/logical_block_size").read_text()
    )
    assert ReasonCode.SYSTEM_DISK in e.protection.codes and not e.protection.forceable
    if e.info.wwn or e.info.serial:
        assert "/dev/" not in e.identity  # identity never comes from the /dev name
    # Never offered: RAM disks, loops (without the flag), partitions.
    assert all(not n.startswith(("zram", "ram", "loop", "dm-")) for n in by_name)
    assert all(skip_reason(read_record(f"/sys/class/block/{n}")) is None for n in by_name)


def test_kernel_properties_only_give_sane_drives() -> None:
    if udev_running():
        pytest.skip("udevd runs here: the kernel-only path is covered by the recorded fixtures")
    for rec in records():
        assert not any(k.startswith("ID_") for k in rec.properties), rec.properties
        info = drive_info_from_record(rec)
        if info is None:
            continue
        assert info.by_id == () and info.by_path == ()
        assert info.path == f"/dev/{rec.kernel_name}"
        assert info.transport != "unknown" and info.media_type != "unknown"


def test_zram_is_never_offered_and_resolve_says_why() -> None:
    if not Path("/sys/class/block/zram0").exists():
        pytest.skip("no zram device here")
    assert skip_reason(read_record("/sys/class/block/zram0")) == "a RAM disk"
    with pytest.raises(NotOfferable, match="/dev/zram0 is a RAM disk, not a disk Tabula erases"):
        resolve("/dev/zram0", include_loop=True)


@pytest.mark.root
@pytest.mark.parametrize("sector_size", [512, 4096])
def test_loop_devices_only_with_include_loop(make_loop: LoopFactory, sector_size: int) -> None:
    dev = make_loop(8 * MiB, sector_size=sector_size)
    name = os.path.basename(dev)
    assert name not in {e.info.kernel_name for e in discover()}
    (e,) = [e for e in discover(include_loop=True) if e.info.kernel_name == name]
    i = e.info
    assert (i.path, i.size_bytes, i.logical_sector_size, i.physical_sector_size) == (
        dev,
        8 * MiB,
        sector_size,
        sector_size,
    )
    assert (i.transport, i.media_type, i.serial, i.wwn) == ("loop", "virtual", None, None)
    assert i.backing_file is not None and i.backing_file.endswith(".img") and os.path.isfile(i.backing_file)
    assert e.identity == f"file:{i.backing_file}"
    assert e.protection.allowed, e.protection.explain(dev)


# --------------------------------------------------------------------------------------------------
# The mapping, on recorded property sets


@pytest.mark.parametrize("fixture", sorted(p.name for p in RECORDS.glob("*.json")))
def test_recorded_records_map_to_the_expected_drive(fixture: str) -> None:
    data = json.loads((RECORDS / fixture).read_text())
    rec = DeviceRecord.from_dict(data["record"])
    info = drive_info_from_record(rec)
    assert info is not None
    assert info.to_dict() == data["expected"]
    assert DeviceRecord.from_dict(rec.to_dict()) == rec


def test_identity_is_the_same_with_or_without_udev() -> None:
    def load(name: str) -> DriveInfo:
        info = drive_info_from_record(
            DeviceRecord.from_dict(json.loads((RECORDS / name).read_text())["record"])
        )
        assert info is not None
        return info

    with_udev, without = load("sata-ssd-udev.json"), load("sata-ssd-kernel-only.json")
    assert with_udev.identity == without.identity == "wwn:naa.5002538e40a1b2c3"


def test_a_disk_without_wwn_or_serial_has_a_path_identity_only_as_last_resort() -> None:
    rec = DeviceRecord(
        kernel_name="sdx",
        sys_path="/sys/devices/pci0000:00/0000:00:17.0/ata3/host2/target2:0:0/2:0:0:0/block/sdx",
        properties={"DEVTYPE": "disk", "DEVNAME": "/dev/sdx"},
        attrs={
            "size": "2048",
            "ro": "1",
            "rotational": "1",
            "logical_block_size": "512",
            "physical_block_size": "512",
        },
        subsystems=("scsi", "scsi", "scsi", "pci"),
    )
    info = drive_info_from_record(rec)
    assert info is not None
    assert (info.transport, info.media_type, info.read_only, info.identity) == (
        "sata",
        "hdd",
        True,
        "path:/dev/sdx",
    )


@pytest.mark.parametrize(
    ("props", "attrs", "subsystems", "name", "expected"),
    [
        ({"ID_BUS": "ata", "ID_ATA": "1"}, {}, ("scsi",), "sda", "ata"),  # PATA: no ID_ATA_SATA
        ({}, {"sata": "0"}, ("scsi",), "sda", "ata"),
        ({"ID_SCSI_TRANSPORT": "sas"}, {}, ("scsi",), "sda", "sas"),
        ({}, {}, ("scsi", "virtio", "pci"), "sda", "scsi"),  # virtio-scsi is SCSI
        ({}, {}, ("mmc", "mmc_host", "pci"), "mmcblk0", "mmc"),
        ({}, {}, ("pci",), "xyz0", "unknown"),
    ],
)
def test_transport_rules(
    props: dict[str, str], attrs: dict[str, str], subsystems: tuple[str, ...], name: str, expected: str
) -> None:
    base = {"size": "8", "logical_block_size": "512", "physical_block_size": "512", "rotational": "0"}
    path = "/sys/devices/pci0000:00/0000:00:01.0/host0/target0:0:0/0:0:0:0/block/" + name
    rec = DeviceRecord(name, path, {"DEVTYPE": "disk", **props}, {**base, **attrs}, subsystems)
    info = drive_info_from_record(rec)
    assert info is not None and info.transport == expected


@pytest.mark.parametrize(
    ("raw", "wwn"),
    [
        ("0x5002538E40A1B2C3", "naa.5002538e40a1b2c3"),
        ("naa.5002538e40a1b2c3", "naa.5002538e40a1b2c3"),
        ("5002538e40a1b2c3", "naa.5002538e40a1b2c3"),
        ("0x600a0b800012345600000000deadbeef", "naa.600a0b800012345600000000deadbeef"),
        ("eui.0025385b91b0c5a1", "eui.0025385b91b0c5a1"),
        ("uuid.3e1a2b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b", "uuid.3e1a2b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b"),
        ("t10.ATA     Samsung SSD 860 EVO 500GB  S3Z9NB0K123456A", None),
        ("nvme.144d-5334-5361-00000001", None),
        ("eui.0000000000000000", None),
        ("0x0000000000000000", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_wwn(raw: str | None, wwn: str | None) -> None:
    assert normalize_wwn(raw) == wwn


def test_vpd_page_80() -> None:
    assert parse_vpd_pg80(b"\x00\x80\x00\x14     S3Z9NB0K123456A") == "S3Z9NB0K123456A"
    assert parse_vpd_pg80(b"\x00\x83\x00\x04abcd") is None
    assert parse_vpd_pg80(b"\x00\x80\x00\x04\x00\x00\x00\x00") is None
    assert parse_vpd_pg80(b"") is None


# --------------------------------------------------------------------------------------------------
# Fake machines


@pytest.fixture
def fake(tmp_path: Path) -> FakeMachine:
    m = FakeMachine(tmp_path / "machine")
    m.ata_disk("sda", "8:0")
    m.partition("sda", "sda1", "8:1")
    m.partition("sda", "sda2", "8:2")
    m.nvme_disk("nvme0n1", "259:0")
    m.usb_disk("sdb", "8:16")
    m.virtual("dm-0", "253:0", on=("sda2",), dm_name="vg0-root", dm_uuid="LVM-xyz")
    m.virtual("loop0", "7:0", size_sectors=0)
    m.virtual("loop1", "7:1", size_sectors=4096, backing_file="/srv/images/disk.img")
    m.virtual("zram0", "251:0", size_sectors=8192)
    m.mount("253:0", "/", "/dev/mapper/vg0-root")
    return m


def test_discover_on_a_fake_machine(fake: FakeMachine) -> None:
    entries = discover(**fake.roots)
    assert [e.info.kernel_name for e in entries] == ["nvme0n1", "sda", "sdb"]
    nvme, sda, sdb = (e.info for e in entries)
    assert (sda.transport, sda.media_type, sda.serial, sda.wwn, sda.model, sda.vendor, sda.firmware) == (
        "sata",
        "ssd",
        "S3Z9NB0K123456A",
        "naa.5002538e40a1b2c3",
        "Samsung SSD 860",
        None,
        "4B6Q",
    )
    assert (nvme.transport, nvme.media_type, nvme.serial, nvme.wwn, nvme.model, nvme.firmware) == (
        "nvme",
        "nvme",
        "S4EWNX0R123456",
        "eui.0025385b91b0c5a1",
        "Samsung SSD 970 EVO Plus 500GB",
        "2B2QEXM7",
    )
    assert (sdb.transport, sdb.media_type, sdb.removable, sdb.vendor, sdb.model) == (
        "usb",
        "usb",
        True,
        "SanDisk",
        "Ultra",
    )
    verdicts = {e.info.kernel_name: e.protection for e in entries}
    assert verdicts["sda"].codes == {ReasonCode.SYSTEM_DISK, ReasonCode.HOLDERS}
    assert verdicts["nvme0n1"].allowed and verdicts["sdb"].allowed

    with_loops = [e.info for e in discover(include_loop=True, **fake.roots)]
    (loop1,) = [i for i in with_loops if i.transport == "loop"]  # loop0 is detached (size 0)
    assert (loop1.kernel_name, loop1.backing_file, loop1.size_bytes) == (
        "loop1",
        "/srv/images/disk.img",
        4096 * 512,
    )


def test_usb_bridge_attributes_that_fail_with_enxio_are_unknown(
    fake: FakeMachine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many USB bridges answer ENXIO for device/wwid and vpd_pg80 (no such VPD page): not a crash."""
    real_text, real_bytes = Path.read_text, Path.read_bytes

    def refuse(path: Path) -> None:
        if path.parent.name == "device" and path.name in ("wwid", "vpd_pg80") and "sdb" in str(path):
            raise OSError(errno.ENXIO, os.strerror(errno.ENXIO), str(path))

    def read_text(path: Path, *a: Any, **kw: Any) -> str:
        refuse(path)
        return real_text(path, *a, **kw)

    def read_bytes(path: Path) -> bytes:
        refuse(path)
        return real_bytes(path)

    monkeypatch.setattr(Path, "read_text", read_text)
    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    sdb = next(e.info for e in discover(**fake.roots) if e.info.kernel_name == "sdb")
    assert (sdb.transport, sdb.model, sdb.wwn) == ("usb", "Ultra", None)


def _node(tmp_path: Path, name: str, devnum: str) -> str:
    """A block device node that is never opened: resolve() only stats it for its number."""
    major, minor = (int(x) for x in devnum.split(":"))
    path = tmp_path / name
    os.mknod(path, stat.S_IFBLK | 0o600, os.makedev(major, minor))
    return str(path)


@pytest.mark.root
def test_resolve_refuses_a_partition_naming_the_whole_disk(fake: FakeMachine, tmp_path: Path) -> None:
    node = _node(tmp_path, "sda1", "8:1")
    with pytest.raises(PartitionNotDisk) as err:
        resolve(node, include_loop=False, **fake.roots)
    assert err.value.message == "/dev/sda1 is a partition of /dev/sda: erase the whole disk /dev/sda"
    assert err.value.disk == "/dev/sda"
    assert isinstance(err.value, BadInput)
    assert "\n  -> name /dev/sda instead" in err.value.diagnostics()
    assert resolve(_node(tmp_path, "sda", "8:0"), include_loop=False, **fake.roots).info.kernel_name == "sda"


@pytest.mark.root
def test_resolve_a_device_mapper_volume_points_at_the_disk(fake: FakeMachine, tmp_path: Path) -> None:
    with pytest.raises(NotOfferable) as err:
        resolve(_node(tmp_path, "dm-0", "253:0"), include_loop=False, **fake.roots)
    assert "is a device-mapper volume, not a disk: it sits on /dev/sda" in err.value.message
    assert err.value.hint == "to erase the data under it, name the disk: /dev/sda"


def test_resolve_by_serial_wwn_identity_and_name(fake: FakeMachine) -> None:
    for name in (
        "S3Z9NB0K123456A",
        "s3z9nb0k123456a",
        "0x5002538E40A1B2C3",
        "naa.5002538e40a1b2c3",
        "wwn:naa.5002538e40a1b2c3",
        "sda",
    ):
        assert resolve(name, include_loop=False, **fake.roots).info.kernel_name == "sda", name
    assert resolve("eui.0025385b91b0c5a1", include_loop=False, **fake.roots).path == "/dev/nvme0n1"
    with pytest.raises(DriveNotFound, match="no drive matches 'NOPE'"):
        resolve("NOPE", include_loop=False, **fake.roots)
    with pytest.raises(LoopNeedsFlag):
        resolve("loop1", include_loop=False, **fake.roots)
    assert resolve("loop1", include_loop=True, **fake.roots).info.backing_file == "/srv/images/disk.img"


def test_resolve_two_drives_with_the_same_serial_is_ambiguous(tmp_path: Path) -> None:
    m = FakeMachine(tmp_path)
    m.ata_disk("sda", "8:0", wwid=None, serial="CLONED01")
    m.ata_disk("sdb", "8:16", host=1, wwid=None, serial="CLONED01")
    with pytest.raises(AmbiguousDrive, match="matches several drives: /dev/sda, /dev/sdb"):
        resolve("CLONED01", include_loop=False, **m.roots)


def test_resolve_unknown_path_and_not_a_block_device() -> None:
    with pytest.raises(DriveNotFound, match="no such device: /dev/does-not-exist"):
        resolve("/dev/does-not-exist", include_loop=False)
    with pytest.raises(DriveNotFound, match="no such device"):
        resolve("/dev/disk/by-id/ata-NOPE_123", include_loop=False)
    with pytest.raises(NotABlockDevice) as err:
        resolve("/dev/null", include_loop=False)
    assert err.value.message == "/dev/null is not a block device"
    assert err.value.hint


@pytest.mark.root
def test_resolve_a_real_loop_needs_the_flag(make_loop: LoopFactory, tmp_path: Path) -> None:
    dev = make_loop(2 * MiB)
    with pytest.raises(LoopNeedsFlag) as err:
        resolve(dev, include_loop=False)
    assert err.value.message == f"{dev} is a loop device, which is only offered with --include-loop"
    e = resolve(dev, include_loop=True)
    assert e.path == dev and e.info.transport == "loop" and e.protection.allowed
    # A link to it (as /dev/disk/by-id and by-path are) names the same drive.
    link = tmp_path / "by-path-link"
    link.symlink_to(dev)
    assert resolve(str(link), include_loop=True).info == e.info


def test_resolve_the_system_disk_returns_its_refusal() -> None:
    disk = root_disk()
    e = resolve(f"/dev/{disk}", include_loop=False)
    assert e.info.kernel_name == disk and not e.protection.allowed


# --------------------------------------------------------------------------------------------------
# Hot-plug


def _info(name: str, transport: str = "sata") -> DriveInfo:
    return DriveInfo(
        path=f"/dev/{name}",
        size_bytes=1 << 20,
        logical_sector_size=512,
        physical_sector_size=512,
        transport=transport,
        media_type="virtual" if transport == "loop" else "ssd",
        rotational=False,
        removable=False,
        read_only=False,
        kernel_name=name,
    )


def test_monitor_bookkeeping_turns_kernel_events_into_drive_events() -> None:
    seen: list[tuple[str, object]] = []
    m = DriveMonitor(lambda action, what: seen.append((action, what)), include_loop=False, source="kernel")
    sdb = _info("sdb")
    assert m.handle("add", "sdb", sdb) == ("add", sdb)
    assert m.handle("change", "sdb", sdb) == ("change", sdb)
    assert m.handle("change", "sdb", None) == ("remove", "sdb")  # medium gone: card pulled
    assert m.handle("remove", "sdb", None) is None  # already gone
    assert m.handle("change", "loop3", _info("loop3", "loop")) is None  # loops not wanted
    assert seen == [("add", sdb), ("change", sdb), ("remove", "sdb")]


@pytest.mark.root
def test_monitor_sees_a_loop_attached_and_detached(tmp_path: Path) -> None:
    events: queue.Queue[tuple[str, object]] = queue.Queue()
    with monitor(lambda action, what: events.put((action, what)), include_loop=True) as mon:
        assert mon.source == ("udev" if udev_running() else "kernel")
        with loop_device(tmp_path, 2 * MiB) as dev:
            name = os.path.basename(dev)
            added = _wait_for(
                events, lambda a, w: a == "add" and isinstance(w, DriveInfo) and w.kernel_name == name
            )
            assert isinstance(added, DriveInfo) and added.path == dev and added.size_bytes == 2 * MiB
        removed = _wait_for(events, lambda a, w: a == "remove" and w == name)
        assert removed == name


def _wait_for(events: queue.Queue[tuple[str, object]], want: object, timeout: float = 5.0) -> object:
    assert callable(want)
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            action, what = events.get(timeout=left)
        except queue.Empty:
            break
        if want(action, what):
            return what
    raise AssertionError("the expected drive event did not come within the timeout")
