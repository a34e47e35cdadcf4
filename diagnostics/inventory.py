"""Inventory of the machine: what it is, as read from the firmware tables, sysfs, /proc and psutil.

Sources, in order of preference:

* DMI (manufacturer, model, serial, chassis type): one plain ``dmidecode`` run through the runner,
  else ``/sys/class/dmi/id`` (the kernel's copy of the same SMBIOS tables).
* Memory modules: the same ``dmidecode`` output (SMBIOS "Memory Device"; sysfs has no such data).
  Total memory: psutil.
* CPU: ``/proc/cpuinfo`` (model name), psutil (cores, threads, frequency), cpufreq in sysfs.
* Storage: ``lsblk -J -b -O`` through the runner, else ``/sys/block``.
* GPU: PCI display-class devices in ``/sys/bus/pci/devices``, named from ``pci.ids`` when present.
* Network: ``/sys/class/net`` (MAC address, driver, whether it is a physical device).
* Battery: ``/sys/class/power_supply`` (design vs full capacity -> wear %, cycle count).
* Display: EDID blobs in ``/sys/class/drm/*/edid``.

Missing data is explicit: a field that could not be read is ``None`` and ``unavailable`` says why.
Nothing is guessed (a DMI placeholder such as "To Be Filled By O.E.M." is reported as missing).
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped,unused-ignore]  # no stubs in the base install

from host.drives import drive_info_from_record, records
from host.errors import CommandError
from host.identity import DriveInfo
from host.lsblk import parse_lsblk as host_parse_lsblk
from host.runner import Runner

# SMBIOS 3.x, 7.4.1 "System Enclosure or Chassis Types".
CHASSIS_TYPES: dict[int, str] = {
    1: "Other",
    2: "Unknown",
    3: "Desktop",
    4: "Low Profile Desktop",
    5: "Pizza Box",
    6: "Mini Tower",
    7: "Tower",
    8: "Portable",
    9: "Laptop",
    10: "Notebook",
    11: "Hand Held",
    12: "Docking Station",
    13: "All in One",
    14: "Sub Notebook",
    15: "Space-saving",
    16: "Lunch Box",
    17: "Main Server Chassis",
    18: "Expansion Chassis",
    19: "SubChassis",
    20: "Bus Expansion Chassis",
    21: "Peripheral Chassis",
    22: "RAID Chassis",
    23: "Rack Mount Chassis",
    24: "Sealed-case PC",
    25: "Multi-system chassis",
    26: "Compact PCI",
    27: "Advanced TCA",
    28: "Blade",
    29: "Blade Enclosure",
    30: "Tablet",
    31: "Convertible",
    32: "Detachable",
    33: "IoT Gateway",
    34: "Embedded PC",
    35: "Mini PC",
    36: "Stick PC",
}
PORTABLE_CHASSIS = frozenset({8, 9, 10, 11, 14, 30, 31, 32})

# Values vendors leave in DMI fields when they did not fill them: reported as missing, not as data.
_DMI_PLACEHOLDERS = re.compile(
    r"^(to be filled by o\.?e\.?m\.?|default string|system (product name|manufacturer|serial number|version)"
    r"|not specified|not applicable|none|n/?a|o\.?e\.?m\.?|0+|x+|123456789|chassis serial number|\s*)$",
    re.IGNORECASE,
)


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    v = value.strip()
    if _DMI_PLACEHOLDERS.match(v):
        return None
    return v


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return None


def _read_int(path: Path) -> int | None:
    v = _read(path)
    if v is None:
        return None
    try:
        return int(v)
    except ValueError:
        return None


# --------------------------------------------------------------------------- dataclasses


@dataclass
class SystemInfo:
    manufacturer: str | None = None
    model: str | None = None
    version: str | None = None
    serial: str | None = None
    sku: str | None = None
    chassis_type: str | None = None
    chassis_code: int | None = None
    board: str | None = None
    bios: str | None = None
    source: str | None = None  # "sysfs" / "dmidecode"

    @property
    def portable(self) -> bool | None:
        if self.chassis_code is None or self.chassis_code in (1, 2):  # "Other" / "Unknown" say nothing
            return None
        return self.chassis_code in PORTABLE_CHASSIS


@dataclass
class CpuInfo:
    model: str | None = None
    vendor: str | None = None
    cores: int | None = None
    threads: int | None = None
    max_mhz: float | None = None
    current_mhz: float | None = None


@dataclass
class MemoryModule:
    locator: str | None
    size_bytes: int | None
    type: str | None = None
    speed_mts: int | None = None
    manufacturer: str | None = None
    part_number: str | None = None
    serial: str | None = None
    form_factor: str | None = None


@dataclass
class MemoryInfo:
    total_bytes: int | None = None
    modules: list[MemoryModule] | None = None  # None: not readable; []: readable, no module listed
    empty_slots: int | None = None


@dataclass
class StorageDevice:
    path: str
    size_bytes: int | None
    model: str | None = None
    serial: str | None = None
    rotational: bool | None = None
    transport: str | None = None
    removable: bool | None = None


@dataclass
class GpuInfo:
    pci_address: str
    vendor_id: str
    device_id: str
    name: str | None = None
    driver: str | None = None


@dataclass
class NetworkInterface:
    name: str
    mac: str | None
    physical: bool
    driver: str | None = None
    wireless: bool = False


@dataclass
class BatteryInfo:
    name: str
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    technology: str | None = None
    status: str | None = None  # Charging / Discharging / Full / Not charging / Unknown
    capacity_percent: int | None = None  # charge level now
    design_capacity: int | None = None  # in ``unit``
    full_capacity: int | None = None
    now_capacity: int | None = None
    unit: str | None = None  # "uWh" (energy_*) or "uAh" (charge_*)
    cycle_count: int | None = None
    wear_percent: float | None = None  # 100 * (1 - full / design)


@dataclass
class DisplayInfo:
    connector: str
    status: str | None
    manufacturer_id: str | None = None
    product_code: int | None = None
    serial: str | None = None
    name: str | None = None
    width_cm: int | None = None
    height_cm: int | None = None
    diagonal_inches: float | None = None
    preferred_mode: str | None = None  # "1920x1080"
    year: int | None = None
    edid_valid: bool = False


@dataclass
class Inventory:
    system: SystemInfo = field(default_factory=SystemInfo)
    cpu: CpuInfo = field(default_factory=CpuInfo)
    memory: MemoryInfo = field(default_factory=MemoryInfo)
    storage: list[StorageDevice] = field(default_factory=list)
    gpus: list[GpuInfo] = field(default_factory=list)
    network: list[NetworkInterface] = field(default_factory=list)
    batteries: list[BatteryInfo] = field(default_factory=list)
    displays: list[DisplayInfo] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)  # what could not be read, and why

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["system"]["portable"] = self.system.portable
        return d


# --------------------------------------------------------------------------- DMI


def _dmi_from_sysfs(sys_root: Path) -> SystemInfo | None:
    base = sys_root / "class" / "dmi" / "id"
    if not base.is_dir():
        return None
    chassis = _read_int(base / "chassis_type")
    bios = " ".join(
        x for x in (_clean(_read(base / "bios_vendor")), _clean(_read(base / "bios_version"))) if x
    )
    board = " ".join(
        x for x in (_clean(_read(base / "board_vendor")), _clean(_read(base / "board_name"))) if x
    )
    return SystemInfo(
        manufacturer=_clean(_read(base / "sys_vendor")),
        model=_clean(_read(base / "product_name")),
        version=_clean(_read(base / "product_version")),
        serial=_clean(_read(base / "product_serial")),
        sku=_clean(_read(base / "product_sku")),
        chassis_type=CHASSIS_TYPES.get(chassis) if chassis is not None else None,
        chassis_code=chassis,
        board=board or None,
        bios=bios or None,
        source="sysfs",
    )


def parse_dmidecode(text: str) -> list[tuple[str, dict[str, str]]]:
    """dmidecode's text output as (section title, {key: value}) records, in order."""
    records: list[tuple[str, dict[str, str]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("Handle 0x") and i + 1 < len(lines):
            title = lines[i + 1].strip()
            fields: dict[str, str] = {}
            i += 2
            while i < len(lines) and lines[i].startswith("\t"):
                line = lines[i]
                if line.startswith("\t\t"):  # list continuation: ignored
                    i += 1
                    continue
                key, sep, value = line.strip().partition(":")
                if sep:
                    fields[key.strip()] = value.strip()
                i += 1
            records.append((title, fields))
        else:
            i += 1
    return records


_SIZE = re.compile(r"^(\d+)\s*(bytes|kB|KB|MB|GB|TB)$")
_SIZE_MULT = {"bytes": 1, "kB": 1 << 10, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}


def _dmi_size(value: str | None) -> int | None:
    if not value:
        return None
    m = _SIZE.match(value.strip())
    return int(m.group(1)) * _SIZE_MULT[m.group(2)] if m else None


def parse_memory_modules(text: str) -> tuple[list[MemoryModule], int]:
    """Populated memory modules and the number of empty slots from ``dmidecode`` output."""
    modules: list[MemoryModule] = []
    empty = 0
    for title, f in parse_dmidecode(text):
        if title != "Memory Device":
            continue
        size = f.get("Size", "")
        if size.startswith("No Module Installed") or size in ("0", "0 MB"):
            empty += 1
            continue
        speed = re.match(r"^(\d+)", f.get("Configured Memory Speed", "") or f.get("Speed", ""))
        modules.append(
            MemoryModule(
                locator=_clean(f.get("Locator")),
                size_bytes=_dmi_size(size),
                type=_clean(f.get("Type")),
                speed_mts=int(speed.group(1)) if speed else None,
                manufacturer=_clean(f.get("Manufacturer")),
                part_number=_clean(f.get("Part Number")),
                serial=_clean(f.get("Serial Number")),
                form_factor=_clean(f.get("Form Factor")),
            )
        )
    return modules, empty


def system_from_dmidecode(text: str) -> SystemInfo:
    """System, chassis, board and BIOS identity from ``dmidecode`` output."""
    info = SystemInfo(source="dmidecode")
    codes = {v.lower(): k for k, v in CHASSIS_TYPES.items()}
    for title, f in parse_dmidecode(text):
        if title == "System Information":
            info.manufacturer = _clean(f.get("Manufacturer"))
            info.model = _clean(f.get("Product Name"))
            info.version = _clean(f.get("Version"))
            info.serial = _clean(f.get("Serial Number"))
            info.sku = _clean(f.get("SKU Number"))
        elif title == "Chassis Information" and info.chassis_type is None:
            name = _clean(f.get("Type"))
            info.chassis_type = name
            info.chassis_code = codes.get(name.lower()) if name else None
        elif title == "Base Board Information":
            info.board = (
                " ".join(x for x in (_clean(f.get("Manufacturer")), _clean(f.get("Product Name"))) if x)
                or None
            )
        elif title == "BIOS Information":
            info.bios = " ".join(x for x in (_clean(f.get("Vendor")), _clean(f.get("Version"))) if x) or None
    return info


def run_dmidecode(runner: Runner) -> tuple[str | None, str | None]:
    """(dmidecode's output, None) or (None, why it could not be had)."""
    if not runner.which("dmidecode"):
        return None, "dmidecode is not installed"
    try:
        res = runner.run(["dmidecode"])
    except CommandError as exc:
        return None, exc.message
    if res.returncode != 0:
        lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
        return None, (lines[-1] if lines else f"dmidecode exited {res.returncode}")
    return res.stdout, None


# --------------------------------------------------------------------------- CPU / memory


def read_cpu(proc_root: Path = Path("/proc"), sys_root: Path = Path("/sys")) -> CpuInfo:
    info = CpuInfo()
    text = _read(proc_root / "cpuinfo") or ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and info.model is None:
            info.model = value.strip() or None
        elif key == "vendor_id" and info.vendor is None:
            info.vendor = value.strip() or None
        elif key == "cpu MHz" and info.current_mhz is None:
            try:
                info.current_mhz = float(value)
            except ValueError:
                info.current_mhz = None
    info.threads = psutil.cpu_count(logical=True)
    info.cores = psutil.cpu_count(logical=False)
    max_khz = _read_int(sys_root / "devices" / "system" / "cpu" / "cpu0" / "cpufreq" / "cpuinfo_max_freq")
    if max_khz:
        info.max_mhz = max_khz / 1000.0
    else:
        freq = psutil.cpu_freq()
        if freq is not None and freq.max:
            info.max_mhz = float(freq.max)
    return info


# --------------------------------------------------------------------------- storage / PCI / net


def _storage(info: DriveInfo) -> StorageDevice:
    return StorageDevice(
        path=info.path,
        size_bytes=info.size_bytes,
        model=info.model,
        serial=info.serial,
        rotational=info.rotational,
        transport=info.transport,
        removable=info.removable,
    )


def parse_lsblk(text: str) -> list[StorageDevice]:
    """Whole disks from ``lsblk -J -b -O``, mapped as discovery maps them (:mod:`host.lsblk`);
    loop devices, RAM disks, optical drives and empty slots left out."""
    return [_storage(i) for i in host_parse_lsblk(text) if i.transport != "loop"]


def list_block_devices(sys_root: Path = Path("/sys")) -> list[StorageDevice]:
    """Whole disks from sysfs, through discovery's records and mapping (:mod:`host.drives`)."""
    infos = (drive_info_from_record(r) for r in records(sysfs_root=str(sys_root)))
    return [_storage(i) for i in infos if i is not None and i.transport != "loop"]


def list_storage(runner: Runner, sys_root: Path = Path("/sys")) -> tuple[list[StorageDevice], str]:
    """Whole disks from lsblk through the runner (replayable), else from /sys/block; and the source."""
    if runner.which("lsblk"):
        try:
            res = runner.run(["lsblk", "-J", "-b", "-O"])
        except CommandError:
            res = None
        if res is not None and res.returncode == 0:
            return parse_lsblk(res.stdout), "lsblk"
    return list_block_devices(sys_root), "sysfs"


def _pci_names(pci_ids: Path, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    names: dict[tuple[str, str], str] = {}
    if not wanted:
        return names
    vendors = {v for v, _ in wanted}
    try:
        fh = pci_ids.open(errors="replace")
    except OSError:
        return names
    with fh:
        vendor: str | None = None
        vendor_name = ""
        for line in fh:
            if line.startswith("#") or not line.strip():
                continue
            if line.startswith("C "):
                break  # device classes follow; no more vendors
            if not line.startswith("\t"):
                vid, _, vname = line.strip().partition(" ")
                vendor = vid.lower() if vid.lower() in vendors else None
                vendor_name = vname.strip()
                if vendor is not None:
                    names.setdefault((vendor, ""), vendor_name)
            elif vendor is not None and not line.startswith("\t\t"):
                did, _, dname = line.strip().partition(" ")
                if (vendor, did.lower()) in wanted:
                    names[(vendor, did.lower())] = f"{vendor_name} {dname.strip()}"
    return names


def list_gpus(sys_root: Path = Path("/sys"), pci_ids: Path | None = None) -> list[GpuInfo]:
    """PCI devices of class 0x03 (display controllers)."""
    base = sys_root / "bus" / "pci" / "devices"
    found: list[GpuInfo] = []
    if not base.is_dir():
        return found
    for dev in sorted(base.iterdir()):
        cls = _read(dev / "class") or ""
        if not cls.lower().startswith("0x03"):
            continue
        vendor = (_read(dev / "vendor") or "").lower().removeprefix("0x")
        device = (_read(dev / "device") or "").lower().removeprefix("0x")
        driver = None
        drv = dev / "driver"
        if drv.is_symlink():
            driver = os.path.basename(os.readlink(drv))
        found.append(GpuInfo(pci_address=dev.name, vendor_id=vendor, device_id=device, driver=driver))
    if pci_ids is None:
        pci_ids = next(
            (p for p in (Path("/usr/share/misc/pci.ids"), Path("/usr/share/hwdata/pci.ids")) if p.exists()),
            None,
        )
    if pci_ids is not None:
        names = _pci_names(pci_ids, {(g.vendor_id, g.device_id) for g in found})
        for g in found:
            g.name = names.get((g.vendor_id, g.device_id)) or names.get((g.vendor_id, ""))
    return found


def list_network(sys_root: Path = Path("/sys")) -> list[NetworkInterface]:
    base = sys_root / "class" / "net"
    out: list[NetworkInterface] = []
    if not base.is_dir():
        return out
    for entry in sorted(base.iterdir()):
        if entry.name == "lo":
            continue
        physical = (entry / "device").exists()
        mac = _read(entry / "address")
        driver = None
        drv = entry / "device" / "driver"
        if drv.is_symlink():
            driver = os.path.basename(os.readlink(drv))
        out.append(
            NetworkInterface(
                name=entry.name,
                mac=mac if mac and mac != "00:00:00:00:00:00" else None,
                physical=physical,
                driver=driver,
                wireless=(entry / "wireless").exists() or (entry / "phy80211").exists(),
            )
        )
    return out


# --------------------------------------------------------------------------- battery


def read_batteries(sys_root: Path = Path("/sys")) -> list[BatteryInfo]:
    """Batteries from /sys/class/power_supply (energy_* in uWh, or charge_* in uAh)."""
    base = sys_root / "class" / "power_supply"
    out: list[BatteryInfo] = []
    if not base.is_dir():
        return out
    for entry in sorted(base.iterdir()):
        if (_read(entry / "type") or "") != "Battery":
            continue
        if _read_int(entry / "present") == 0:
            continue
        prefix, unit = ("energy", "uWh") if (entry / "energy_full").exists() else ("charge", "uAh")
        design = _read_int(entry / f"{prefix}_full_design")
        full = _read_int(entry / f"{prefix}_full")
        wear: float | None = None
        if design and full is not None and design > 0:
            wear = round(max(0.0, 100.0 * (1.0 - full / design)), 1)
        out.append(
            BatteryInfo(
                name=entry.name,
                manufacturer=_clean(_read(entry / "manufacturer")),
                model=_clean(_read(entry / "model_name")),
                serial=_clean(_read(entry / "serial_number")),
                technology=_clean(_read(entry / "technology")),
                status=_read(entry / "status"),
                capacity_percent=_read_int(entry / "capacity"),
                design_capacity=design,
                full_capacity=full,
                now_capacity=_read_int(entry / f"{prefix}_now"),
                unit=unit,
                cycle_count=_read_int(entry / "cycle_count"),
                wear_percent=wear,
            )
        )
    return out


# --------------------------------------------------------------------------- EDID


def _edid_descriptors(base: bytes, info: DisplayInfo) -> str | None:
    """The four 18-byte descriptors: the preferred mode (first detailed timing), the monitor name,
    and the serial text (returned)."""
    serial_text: str | None = None
    for off in (54, 72, 90, 108):
        d = base[off : off + 18]
        if d[0] or d[1]:
            if info.preferred_mode is None:  # the first detailed timing is the preferred mode
                h = d[2] | ((d[4] & 0xF0) << 4)
                v = d[5] | ((d[7] & 0xF0) << 4)
                info.preferred_mode = f"{h}x{v}"
            continue
        text = d[5:18].split(b"\x0a")[0].decode("ascii", "replace").strip()
        if d[3] == 0xFC:
            info.name = text or None
        elif d[3] == 0xFF:
            serial_text = text or None
    return serial_text


def parse_edid(blob: bytes, connector: str = "", status: str | None = None) -> DisplayInfo:
    """Decode the base EDID block (VESA E-EDID 1.3/1.4): vendor, product, name, size, preferred mode."""
    info = DisplayInfo(connector=connector, status=status)
    if len(blob) < 128 or blob[:8] != b"\x00\xff\xff\xff\xff\xff\xff\x00":
        return info
    base = blob[:128]
    info.edid_valid = sum(base) % 256 == 0
    if not info.edid_valid:
        return info
    m = int.from_bytes(base[8:10], "big")
    letters = [(m >> 10) & 0x1F, (m >> 5) & 0x1F, m & 0x1F]
    if all(1 <= c <= 26 for c in letters):
        info.manufacturer_id = "".join(chr(ord("A") + c - 1) for c in letters)
    info.product_code = int.from_bytes(base[10:12], "little")
    serial_num = int.from_bytes(base[12:16], "little")
    year = base[17]
    info.year = 1990 + year if year else None
    info.width_cm = base[21] or None
    info.height_cm = base[22] or None
    if info.width_cm and info.height_cm:
        info.diagonal_inches = round((info.width_cm**2 + info.height_cm**2) ** 0.5 / 2.54, 1)
    serial_text = _edid_descriptors(base, info)
    info.serial = serial_text or (str(serial_num) if serial_num else None)
    return info


def read_displays(sys_root: Path = Path("/sys")) -> list[DisplayInfo]:
    base = sys_root / "class" / "drm"
    out: list[DisplayInfo] = []
    if not base.is_dir():
        return out
    for entry in sorted(base.iterdir()):
        edid_path = entry / "edid"
        if not edid_path.exists():
            continue
        try:
            blob = edid_path.read_bytes()
        except OSError:
            continue
        status = _read(entry / "status")
        if not blob:
            if status == "connected":
                out.append(DisplayInfo(connector=entry.name, status=status))
            continue
        out.append(parse_edid(blob, entry.name, status))
    return out


# --------------------------------------------------------------------------- all together


def collect_inventory(
    runner: Runner,
    *,
    sys_root: Path = Path("/sys"),
    proc_root: Path = Path("/proc"),
    pci_ids: Path | None = None,
) -> Inventory:
    """Read everything that can be read; record what could not be, and why."""
    inv = Inventory()
    missing = inv.unavailable

    dmi_text, dmi_why = run_dmidecode(runner)
    system = system_from_dmidecode(dmi_text) if dmi_text is not None else _dmi_from_sysfs(sys_root)
    if system is None:
        missing["system"] = f"no DMI tables (dmidecode: {dmi_why}; /sys/class/dmi/id absent)"
        system = SystemInfo()
    inv.system = system
    for name in ("manufacturer", "model", "serial", "chassis_type"):
        if getattr(system, name) is None and "system" not in missing:
            missing[f"system.{name}"] = "not filled in by the firmware"

    inv.cpu = read_cpu(proc_root, sys_root)
    if inv.cpu.model is None:
        missing["cpu.model"] = "no 'model name' in /proc/cpuinfo"
    if inv.cpu.max_mhz is None:
        missing["cpu.max_mhz"] = "no cpufreq data (virtual machine or cpufreq driver not loaded)"

    inv.memory.total_bytes = psutil.virtual_memory().total
    if dmi_text is None:
        missing["memory.modules"] = f"dmidecode: {dmi_why}"
    else:
        modules, empty = parse_memory_modules(dmi_text)
        inv.memory.modules = modules
        inv.memory.empty_slots = empty
        if not modules:
            missing["memory.modules"] = "dmidecode listed no populated memory device"

    inv.storage, _ = list_storage(runner, sys_root)
    inv.gpus = list_gpus(sys_root, pci_ids)
    if not inv.gpus:
        missing["gpus"] = "no PCI display controller found"
    inv.network = list_network(sys_root)
    inv.batteries = read_batteries(sys_root)
    if not inv.batteries:
        missing["batteries"] = "no battery in /sys/class/power_supply"
    inv.displays = read_displays(sys_root)
    if not inv.displays:
        missing["displays"] = "no EDID readable in /sys/class/drm"
    return inv
