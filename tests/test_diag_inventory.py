"""Inventory: dmidecode recorded in QEMU guests and on this machine (where it fails), lsblk recorded,
and constructed sysfs trees (tests/fixtures/diag/build_sysfs.py documents their real layout)."""

from __future__ import annotations

from pathlib import Path

from diagnostics.inventory import (
    collect_inventory,
    parse_edid,
    parse_lsblk,
    parse_memory_modules,
    read_batteries,
    read_displays,
    system_from_dmidecode,
)
from host.runner import ReplayRunner, read_fixture
from tests.fixtures.diag.build_sysfs import make_edid
from tests.test_diag_helpers import LAPTOP, LAPTOP_CHARGE, MACHINES, THIS_MACHINE


def test_qemu_dmidecode_gives_system_and_memory_modules() -> None:
    text = read_fixture(MACHINES / "qemu-sata-hdd" / "dmidecode").stdout
    s = system_from_dmidecode(text)
    assert (s.manufacturer, s.model, s.serial) == ("QEMU", "Tabula QEMU lab", "TABULA-LAB-0001")
    assert s.chassis_type == "Other" and s.portable is None  # "Other" says nothing about portability
    assert s.bios == "SeaBIOS 1.16.2-debian-1.16.2-1"
    modules, empty = parse_memory_modules(text)
    assert empty == 0
    assert len(modules) == 1
    m = modules[0]
    assert (m.locator, m.size_bytes, m.form_factor, m.speed_mts, m.serial) == (
        "DIMM 0",
        512 << 20,
        "DIMM",
        None,
        None,
    )


def test_inventory_of_a_replayed_qemu_machine_with_a_constructed_laptop_sysfs() -> None:
    inv = collect_inventory(
        ReplayRunner(MACHINES / "qemu-sata-hdd"), sys_root=LAPTOP / "sys", proc_root=LAPTOP / "proc"
    )
    assert inv.system.source == "dmidecode" and inv.system.serial == "TABULA-LAB-0001"
    assert [s.path for s in inv.storage] == ["/dev/sda"]
    assert inv.storage[0].serial == "TBL-HDD-0001" and inv.storage[0].transport == "sata"
    assert inv.cpu.model == "Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz" and inv.cpu.max_mhz == 4200.0
    assert [(n.name, n.mac, n.wireless) for n in inv.network] == [
        ("enp0s31f6", "54:e1:ad:12:34:56", False),
        ("wlp2s0", "a0:c5:89:65:43:21", True),
    ]
    assert [(g.vendor_id, g.device_id) for g in inv.gpus] == [("8086", "5917")]
    assert inv.batteries[0].wear_percent == 45.0 and inv.batteries[0].cycle_count == 412
    assert inv.displays[0].name == "NV140FHM-N49"
    assert "batteries" not in inv.unavailable and "displays" not in inv.unavailable


def test_sysfs_dmi_is_used_when_dmidecode_fails_and_placeholders_are_missing_not_data() -> None:
    inv = collect_inventory(
        ReplayRunner(THIS_MACHINE), sys_root=LAPTOP_CHARGE / "sys", proc_root=LAPTOP / "proc"
    )
    assert inv.system.source == "sysfs"
    assert (inv.system.manufacturer, inv.system.model) == ("HP", "HP EliteBook 840 G5")
    assert inv.system.serial is None  # "To Be Filled By O.E.M."
    assert inv.unavailable["system.serial"] == "not filled in by the firmware"
    assert inv.system.chassis_type == "Notebook" and inv.system.portable is True
    assert inv.memory.modules is None
    assert "/dev/mem: No such file or directory" in inv.unavailable["memory.modules"]


def test_this_machine_recorded_says_what_is_missing() -> None:
    empty = THIS_MACHINE / "no-sysfs"  # does not exist: nothing in sysfs either
    inv = collect_inventory(ReplayRunner(THIS_MACHINE), sys_root=empty, proc_root=LAPTOP / "proc")
    assert inv.system.manufacturer is None
    assert inv.unavailable["system"].startswith("no DMI tables")
    assert [s.path for s in inv.storage] == ["/dev/vda"] and inv.storage[0].transport == "virtio"
    for key in ("batteries", "displays", "gpus", "memory.modules"):
        assert key in inv.unavailable


def test_charge_based_battery_wear_and_missing_cycle_count() -> None:
    (bat,) = read_batteries(LAPTOP_CHARGE / "sys")
    assert bat.unit == "uAh" and bat.wear_percent == 5.0 and bat.cycle_count is None


def test_edid_decoding_and_checksum() -> None:
    blob = make_edid(
        vendor="DEL", product=0xA0C4, name="DELL P2419H", width_cm=53, height_cm=30, h=1920, v=1080
    )
    d = parse_edid(blob, "card0-DP-1", "connected")
    assert d.edid_valid and d.manufacturer_id == "DEL" and d.product_code == 0xA0C4
    assert d.name == "DELL P2419H" and d.preferred_mode == "1920x1080" and d.diagonal_inches == 24.0
    broken = bytearray(blob)
    broken[100] ^= 0xFF
    bad = parse_edid(bytes(broken), "card0-DP-1")
    assert not bad.edid_valid and bad.name is None
    assert not parse_edid(b"\x00" * 128).edid_valid


def test_disconnected_connector_with_empty_edid_is_skipped(tmp_path: Path) -> None:
    shown = read_displays(LAPTOP / "sys")
    assert [d.connector for d in shown] == ["card0-eDP-1"]


def test_lsblk_leaves_out_zram_and_loop() -> None:
    text = read_fixture(THIS_MACHINE / "lsblk_-J_-b_-O").stdout
    assert [d.path for d in parse_lsblk(text)] == ["/dev/vda"]
    assert parse_lsblk("not json") == []
