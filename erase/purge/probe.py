"""What a drive can do: ATA (hdparm), NVMe (nvme-cli), SCSI (sg3-utils) and USB bridges.

Parsers are pure functions of a tool's output (tested on recorded outputs); :func:`probe` runs the
read-only commands through a :class:`host.runner.Runner` and keeps every raw output, so the
certificate can show what the drive said about itself.  Tools that are missing are found here,
at planning time (``runner.which``), never halfway through an erase.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from erase.purge.emmc import EmmcExtCsd, parse_mmc_extcsd
from erase.purge.errors import UnrecognisedOutput
from erase.purge.tcg import (
    TcgStatus,
    describe_features,
    merged,
    nvme_hexdump_bytes,
    parse_level0,
    parse_sedutil_query,
    parse_sedutil_scan,
    sg_raw_hexdump_bytes,
)
from host.errors import CommandError
from host.identity import DriveInfo
from host.runner import CommandResult, Runner, SubprocessRunner

#: The station's own command for a TCG PSID revert through the Linux kernel (erase/purge/sedopal.py).
STATION_OPAL_TOOL = "tabula-opal"
# Tools each protocol may need, with their Debian package.
TOOLS = {
    "hdparm": "hdparm",
    "nvme": "nvme-cli",
    "sg_opcodes": "sg3-utils",
    "sg_sanitize": "sg3-utils",
    "sg_requests": "sg3-utils",
    "sg_raw": "sg3-utils",  # TCG Level 0 discovery when sedutil-cli is missing (the live image)
    "rtcwake": "util-linux",
    "sedutil-cli": "sedutil",  # not packaged by Debian 12: the raw Level 0 discovery replaces it
    # The station's own PSID revert through the kernel's Opal ioctl (erase.purge.sedopal).
    STATION_OPAL_TOOL: "tabula-station",
    "mmc": "mmc-utils",
    "blkdiscard": "util-linux",
}

_T = TypeVar("_T")

# Sense key 0xB, ABORTED COMMAND: fixed format (response code 70, or f0 with the VALID bit that a
# real Crucial MX500 sets; key in byte 2's low nibble) or descriptor format (72; key in byte 1).
_ABORTED_SENSE = re.compile(r"sb\[\]:\s+(?:[7f]0 [0-9a-f]{2} [0-9a-f]b|72 [0-9a-f]b) ")


def aborted_command(stderr: str) -> bool:
    """True when hdparm printed sense data saying the drive aborted the command (exit code 0 anyway)."""
    return bool(_ABORTED_SENSE.search(stderr))


# -- ATA ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AtaSecurity:
    supported: bool = False
    enabled: bool = False
    locked: bool = False
    frozen: bool = False
    count_expired: bool = False
    enhanced_supported: bool = False
    erase_minutes: int | None = None
    enhanced_minutes: int | None = None
    reported: bool = False  # hdparm printed a Security section (False: nothing is known about it)
    level: str | None = None  # "high" or "maximum" while a password is set


@dataclass(frozen=True)
class AtaIdentify:
    valid: bool  # False for an all-zero identify (what unknown USB bridges return)
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    sectors: int | None = None  # LBA48 (else LBA) user addressable sectors
    logical_sector: int = 512
    solid_state: bool | None = None  # None when the rotation rate is not reported
    rotation_rate: int | None = None
    security: AtaSecurity = field(default_factory=AtaSecurity)
    sanitize: bool = False
    sanitize_crypto: bool = False
    sanitize_block: bool = False
    sanitize_overwrite: bool = False
    hpa_feature: bool = False
    dco_feature: bool = False
    ama_feature: bool = False
    trim: bool = False
    security_feature: bool = False  # "Security Mode feature set" listed under Commands/features
    encrypts_all: bool = False  # "Device encrypts all user data" (IDENTIFY word 69 bit 4)


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def parse_hdparm_identify(text: str) -> AtaIdentify:
    """``hdparm -I DEV``."""

    def field_(label: str) -> str | None:
        # [ \t], not \s: a blank value ("Serial Number:" a poster emptied) must stay blank, not
        # reach into the next line and read "Firmware Revision:" as the serial.
        m = re.search(rf"^[ \t]*{label}:[ \t]*(.*?)[ \t]*$", text, re.M)
        return m.group(1) if m and m.group(1) else None

    model, serial = field_("Model Number"), field_("Serial Number")
    lba48 = re.search(r"LBA48\s+user addressable sectors:\s+(\d+)", text)
    lba = re.search(r"LBA\s+user addressable sectors:\s+(\d+)", text)
    sectors = int(lba48.group(1)) if lba48 else (int(lba.group(1)) if lba else None)
    lss = re.search(r"Logical\s+Sector size:\s+(\d+)", text) or re.search(
        r"Logical/Physical Sector size:\s+(\d+)", text
    )
    rot = field_("Nominal Media Rotation Rate")
    solid = None if rot is None else rot.lower().startswith("solid")
    features = _features(text)
    sec = _security(text)
    return AtaIdentify(
        valid=bool(model or serial) and bool(sectors),
        model=model,
        serial=serial,
        firmware=field_("Firmware Revision"),
        sectors=sectors,
        logical_sector=int(lss.group(1)) if lss else 512,
        solid_state=solid,
        rotation_rate=_int(rot),
        security=sec,
        trim=bool(re.search(r"TRIM supported", text)),
        **_feature_flags(features),
    )


# AtaIdentify flag -> the words of its line under Commands/features (lowercased), as every hdparm
# version prints it: older hdparm versions name IDENTIFY word 69 bit 4 (ACS-3: the device encrypts all
# user data) "reserved 69[4]" (a real Intel 545s in the corpus), and lists only the bits set.
_FEATURE_WORDS: dict[str, tuple[str, ...]] = {
    "sanitize": ("sanitize feature set",),
    "sanitize_crypto": ("crypto_scramble_ext",),
    "sanitize_block": ("block_erase_ext",),
    "sanitize_overwrite": ("overwrite_ext",),
    "hpa_feature": ("host protected area",),
    "dco_feature": ("device configuration overlay",),
    "ama_feature": ("accessible max address",),
    "security_feature": ("security mode feature set",),
    "encrypts_all": ("device encrypts all user data", "reserved 69[4]"),
}


def _feature_flags(features: list[str]) -> dict[str, bool]:
    return {flag: any(w in f for w in words for f in features) for flag, words in _FEATURE_WORDS.items()}


def _features(text: str) -> list[str]:
    """Lowercased lines of the 'Commands/features' section (supported, enabled or not)."""
    m = re.search(r"^Commands/features:\n(.*?)(?=^\S|\Z)", text, re.M | re.S)
    if not m:
        return []
    return [line.strip().lstrip("*").strip().lower() for line in m.group(1).splitlines()]


def _security(text: str) -> AtaSecurity:
    m = re.search(r"^Security:\s*\n(.*?)(?=^\S|\Z)", text, re.M | re.S)
    if not m:
        return AtaSecurity()
    block = m.group(1)
    lines = [line.strip() for line in block.splitlines()]

    def flag(word: str) -> bool:
        # hdparm prints the bit set as "\t\tword", clear as "\tnot\tword", and, for the first bit
        # (supported) of a status word that makes no sense, "\t(?)\tsupported": only the first is a yes.
        return any(line.split() == [word] for line in lines)

    times = re.search(r"(\d+)min for SECURITY ERASE UNIT", block)
    etimes = re.search(r"(\d+)min for ENHANCED SECURITY ERASE UNIT", block)
    level = re.search(r"Security level (high|maximum)", block)
    return AtaSecurity(
        reported=True,
        level=level.group(1) if level else None,
        supported=flag("supported"),
        enabled=flag("enabled"),
        locked=flag("locked"),
        frozen=flag("frozen"),
        count_expired=any(line.startswith("expired") or line == "expired: security count" for line in lines),
        enhanced_supported=any(
            line.startswith("supported: enhanced erase") and not line.startswith("not") for line in lines
        ),
        erase_minutes=int(times.group(1)) if times else None,
        enhanced_minutes=int(etimes.group(1)) if etimes else None,
    )


@dataclass(frozen=True)
class HpaState:
    current: int
    native: int
    enabled: bool

    @property
    def hidden_sectors(self) -> int:
        return max(0, self.native - self.current)


def parse_hdparm_n(text: str) -> HpaState | None:
    """``hdparm -N DEV``: ``max sectors   = 65536/65536, HPA is disabled``."""
    m = re.search(r"max sectors\s*=\s*(\d+)/(\d+),\s*HPA is (enabled|disabled)", text)
    if not m:
        return None
    return HpaState(int(m.group(1)), int(m.group(2)), m.group(3) == "enabled")


def parse_dco_identify(text: str) -> int | None:
    """``hdparm --dco-identify DEV``: the DCO's real max sectors (None when not reported or bogus)."""
    m = re.search(r"Real max sectors:\s*(\d+)", text)
    if not m:
        return None
    real = int(m.group(1))
    return real if real > 1 else None  # QEMU (no DCO) answers 1: not a real value


@dataclass(frozen=True)
class AtaSanitizeStatus:
    state: str  # SD0 idle, SD2 in progress, ...
    progress: float | None  # 0..1 while in progress
    succeeded: bool  # last sanitize completed without error
    failed: bool  # the drive reports the last sanitize failed


def parse_hdparm_sanitize_status(text: str) -> AtaSanitizeStatus | None:
    """``hdparm --sanitize-status DEV``."""
    state = re.search(r"State:\s*(.+)", text)
    if not state:
        return None
    prog = re.search(r"Progress:\s*0x([0-9a-fA-F]+)", text)
    low = text.lower()
    return AtaSanitizeStatus(
        state=state.group(1).strip(),
        progress=int(prog.group(1), 16) / 0xFFFF if prog else None,
        succeeded="completed without error" in low,
        failed="operation failed" in low or "sanitize failed" in low,
    )


# -- NVMe --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NvmeController:
    oacs: int
    sanicap: int
    fna: int
    serial: str | None = None
    model: str | None = None
    firmware: str | None = None

    @property
    def format_supported(self) -> bool:
        return bool(self.oacs & 0x2)

    @property
    def sanitize_crypto(self) -> bool:
        return bool(self.sanicap & 0x1)

    @property
    def sanitize_block(self) -> bool:
        return bool(self.sanicap & 0x2)

    @property
    def sanitize_overwrite(self) -> bool:
        return bool(self.sanicap & 0x4)

    @property
    def format_crypto(self) -> bool:
        return bool(self.fna & 0x4)

    @property
    def format_all_namespaces(self) -> bool:
        return bool(self.fna & 0x1 or self.fna & 0x2)


_NVME_TEXT_FIELD = re.compile(r"^([a-z][a-z0-9_]*)\s*:[ \t]?(.*)$")


def _json_document(text: str, tool: str) -> dict[str, Any]:
    """The JSON object ``tool`` printed; UnrecognisedOutput when stdout is not one."""
    if not text.strip():
        raise UnrecognisedOutput(
            f"{tool} printed nothing (an nvme-cli built without JSON support prints nothing)"
        )
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise UnrecognisedOutput(f"{tool} did not print a JSON document Tabula can read ({exc})") from exc
    if not isinstance(doc, dict):
        raise UnrecognisedOutput(f"{tool} printed JSON that is not an object")
    return doc


def _nvme_text_fields(text: str) -> dict[str, str]:
    """nvme-cli's normal output ("oacs      : 0x17"); the indented lines of -H are skipped."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        m = _NVME_TEXT_FIELD.match(line)
        if m:
            fields.setdefault(m.group(1), m.group(2).strip())
    return fields


def _register(fields: dict[str, Any], name: str, tool: str) -> int:
    """A register value (int, or a string nvme-cli printed in decimal or 0x hex); never a default."""
    value = fields.get(name)
    if isinstance(value, bool) or value is None:
        raise UnrecognisedOutput(f"{tool} gives no {name} field: cannot tell what the drive supports")
    if isinstance(value, int):
        return value
    token = str(value).split()[0] if str(value).split() else ""
    try:
        return int(token, 0)
    except ValueError as exc:
        raise UnrecognisedOutput(f"{tool} gives {name} = {value!r}, not a number Tabula can read") from exc


def parse_nvme_id_ctrl(text: str) -> NvmeController:
    """``nvme id-ctrl DEV -o json`` (nvme-cli 1.x and 2.x), or its normal text output (with or without -H).

    Raises :class:`UnrecognisedOutput` when OACS, SANICAP or FNA cannot be read: never a default.
    """
    tool = "nvme id-ctrl"
    fields: dict[str, Any]
    if text.lstrip()[:1] in ("{", "[", ""):
        fields = _json_document(text, tool)
    else:
        fields = _nvme_text_fields(text)
        if "sanicap" not in fields and "oacs" not in fields:
            raise UnrecognisedOutput(f"{tool} printed neither JSON nor nvme-cli's identify-controller layout")

    def string(name: str) -> str | None:
        return str(fields.get(name, "")).strip() or None

    return NvmeController(
        oacs=_register(fields, "oacs", tool),
        sanicap=_register(fields, "sanicap", tool),
        fna=_register(fields, "fna", tool),
        serial=string("sn"),
        model=string("mn"),
        firmware=string("fr"),
    )


@dataclass(frozen=True)
class NvmeNamespace:
    nsze: int
    flbas: int
    lba_sizes: tuple[int, ...]
    dlfeat: int

    @property
    def lba_size(self) -> int:
        return self.lba_sizes[self.flbas & 0xF] if self.lba_sizes else 512

    @property
    def deallocated_reads(self) -> str | None:
        """What reading a deallocated block returns: 'zeros', 'ones' or None (not reported)."""
        return {1: "zeros", 2: "ones"}.get(self.dlfeat & 0x7)


def parse_nvme_id_ns(text: str) -> NvmeNamespace:
    """``nvme id-ns DEV -o json``.  Raises :class:`UnrecognisedOutput` when the size or formats are missing."""
    tool = "nvme id-ns"
    d = _json_document(text, tool)
    lbafs = d.get("lbafs")
    if not isinstance(lbafs, list) or not lbafs:
        raise UnrecognisedOutput(f"{tool} gives no LBA formats (lbafs): cannot tell the block size")
    sizes = tuple(1 << _register(f if isinstance(f, dict) else {}, "ds", tool) for f in lbafs)
    return NvmeNamespace(
        nsze=_register(d, "nsze", tool),
        flbas=_register(d, "flbas", tool),
        lba_sizes=sizes,
        dlfeat=dlfeat if isinstance(dlfeat := d.get("dlfeat", 0), int) else 0,
    )


@dataclass(frozen=True)
class NvmeSanitizeLog:
    sprog: int
    sstat: int
    est_overwrite: int | None
    est_block: int | None
    est_crypto: int | None

    @property
    def status(self) -> int:
        return self.sstat & 0x7

    @property
    def in_progress(self) -> bool:
        return self.status == 2

    @property
    def succeeded(self) -> bool:
        return self.status in (1, 4)

    @property
    def failed(self) -> bool:
        return self.status == 3

    @property
    def global_data_erased(self) -> bool:
        """SSTAT bit 8: no user data written since the last successful sanitize (or manufacture)."""
        return bool(self.sstat & 0x100)

    def describe(self) -> str:
        names = {
            0: "never sanitized",
            1: "last sanitize completed successfully",
            2: "sanitize in progress",
            3: "last sanitize FAILED",
            4: "last sanitize completed (no-deallocate)",
        }
        return f"SSTAT=0x{self.sstat:04x} ({names.get(self.status, 'reserved')}), SPROG={self.sprog}"


def _find_key(d: Any, key: str) -> dict[str, Any] | None:
    if isinstance(d, dict):
        if key in d:
            return d
        for v in d.values():
            found = _find_key(v, key)
            if found is not None:
                return found
    return None


_SSTAT_CODE = re.compile(r"^\((\d+)\)")


def _sstat(value: Any) -> int | None:
    """SSTAT as the register: an int (flat logs), or nvme-cli's decoded object.

    nvme-cli (1.x from 2018 on, and 2.x) prints ``"sstat": {"global_erased": 1, "no_cmplted_passes": 0,
    "status": "(1) Most Recent Sanitize Command Completed Successfully."}`` (some versions use the
    status text itself as the key of that last member): the register is rebuilt from those parts.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, dict):
        return None
    codes = [_SSTAT_CODE.match(v) for v in value.values() if isinstance(v, str)]
    code = next((int(m.group(1)) for m in codes if m), None)
    erased, passes = value.get("global_erased"), value.get("no_cmplted_passes")
    if code is None or not isinstance(erased, int) or not isinstance(passes, int):
        return None
    return (code & 0x7) | ((passes & 0x1F) << 3) | ((erased & 0x1) << 8)


_LOG_TEXT = {
    "sprog": re.compile(r"^[ \t]*Sanitize Progress\s+\(SPROG\)\s*:\s*(\S+)", re.M),
    "sstat": re.compile(r"^[ \t]*Sanitize Status\s+\(SSTAT\)\s*:\s*(\S+)", re.M),
    "time_over_write": re.compile(r"^[ \t]*Estimated Time For Overwrite\s+:\s*(\d+)", re.M),
    "time_block_erase": re.compile(r"^[ \t]*Estimated Time For Block Erase\s+:\s*(\d+)", re.M),
    "time_crypto_erase": re.compile(r"^[ \t]*Estimated Time For Crypto Erase\s+:\s*(\d+)", re.M),
}


def _sanitize_log_fields(text: str) -> dict[str, Any] | None:
    if text.lstrip()[:1] in ("{", "[", ""):
        return _find_key(_json_document(text, "nvme sanitize-log"), "sstat")
    found = {k: m.group(1) for k, rx in _LOG_TEXT.items() if (m := rx.search(text))}
    if "sstat" not in found:
        raise UnrecognisedOutput("nvme sanitize-log printed neither JSON nor nvme-cli's sanitize log layout")
    return {k: int(v, 0) for k, v in found.items()}


def parse_nvme_sanitize_log(text: str) -> NvmeSanitizeLog | None:
    """``nvme sanitize-log DEV -o json`` (nested under the device name since nvme-cli 1.x), or its text.

    None when a JSON log has no SSTAT; :class:`UnrecognisedOutput` when the output cannot be read.
    The text output of some nvme-cli 2.x versions masks SSTAT to its status bits (Global Data Erased
    then reads 0): only ever an understatement.
    """
    d = _sanitize_log_fields(text)
    if d is None:
        return None
    sstat = _sstat(d.get("sstat"))
    if sstat is None:
        raise UnrecognisedOutput(
            f"nvme sanitize-log gives SSTAT as {d.get('sstat')!r}, a form Tabula cannot read"
        )

    def est(name: str) -> int | None:
        v = d.get(name)
        return None if not isinstance(v, int) or v == 0xFFFFFFFF else v

    sprog = d.get("sprog", 0)
    return NvmeSanitizeLog(
        sprog=sprog if isinstance(sprog, int) else 0,
        sstat=sstat,
        est_overwrite=est("time_over_write"),
        est_block=est("time_block_erase"),
        est_crypto=est("time_crypto_erase"),
    )


def nvme_controller_of(path: str) -> str:
    """``/dev/nvme0n1`` -> ``/dev/nvme0``: a GUESS from the name (wrong under native multipath).

    Only a fallback when sysfs says nothing; the controller's serial must still match the drive's.
    """
    m = re.fullmatch(r"(/dev/nvme\d+)n\d+", path)
    return m.group(1) if m else path


_CTRL_NAME = re.compile(r"nvme\d+")
_NS_NAME = re.compile(r"nvme\d+(?:c\d+)?n\d+")


def sysfs_root(runner: Runner) -> Path | None:
    """``/sys`` when ``runner`` runs commands on this machine; None for a replayed one (recordings only)."""
    return Path("/sys") if isinstance(runner, SubprocessRunner) else None


def nvme_sysfs_controller(path: str, sysfs: Path) -> str | None:
    """The controller device (``/dev/nvmeN``) of namespace ``path``, as sysfs links it; None if unknown.

    With native multipath, ``nvmeXnY`` is numbered after the *subsystem* and ``/dev/nvmeX`` after
    the *controller*: the name alone cannot tell which controller holds the namespace.
    """
    name = Path(path).name
    block = sysfs / "block" / name
    paths = block / "multipath"
    if paths.is_dir():  # a multipath head: each entry is a path nvmeXcYnZ under its controller nvmeY
        for entry in sorted(paths.iterdir()):
            parent = entry.resolve().parent.name
            if _CTRL_NAME.fullmatch(parent):
                return f"/dev/{parent}"
    device = block / "device"
    if device.exists():
        target = device.resolve().name
        if _CTRL_NAME.fullmatch(target):
            return f"/dev/{target}"
    return None


def nvme_sysfs_namespaces(ctrl_dev: str, sysfs: Path) -> int | None:
    """How many namespaces sysfs shows under controller ``ctrl_dev``; None when sysfs says nothing."""
    d = sysfs / "class" / "nvme" / Path(ctrl_dev).name
    if not d.is_dir():
        return None
    return sum(1 for e in d.iterdir() if _NS_NAME.fullmatch(e.name))


def nvme_list_namespaces(text: str, serial: str) -> int | None:
    """``nvme list -o json``: how many namespaces belong to the controller with this serial."""
    d = json.loads(text)
    devices = d.get("Devices") if isinstance(d, dict) else None
    if not isinstance(devices, list):
        return None
    return sum(1 for dev in devices if str(dev.get("SerialNumber", "")).strip() == serial)


def nvme_serial_mismatch(drive_serial: str | None, ctrl: NvmeController | None) -> str | None:
    """Why the controller cannot be trusted to be this drive's (None when its serial matches)."""
    if not drive_serial or not drive_serial.strip():
        return None
    want = drive_serial.strip()
    got = ctrl.serial if ctrl is not None else None
    if got == want:
        return None
    return f"the controller's serial does not match this drive ({got or 'unreadable'} != {want})"


# -- SCSI --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScsiOpcodes:
    reported: bool  # False when the device does not support REPORT SUPPORTED OPERATION CODES
    sanitize_overwrite: bool = False
    sanitize_block: bool = False
    sanitize_crypto: bool = False


def parse_sg_opcodes(result: CommandResult) -> ScsiOpcodes:
    """``sg_opcodes DEV``: lines such as ``48    1    Sanitize, overwrite``."""
    if result.returncode != 0 or "no commands to display" in result.stdout:
        return ScsiOpcodes(reported=False)
    if not re.search(r"^\s*Opcode\b", result.stdout, re.M):
        return ScsiOpcodes(reported=False)  # no table of commands: an unknown layout says nothing
    low = result.stdout.lower()
    return ScsiOpcodes(
        reported=True,
        sanitize_overwrite="sanitize, overwrite" in low,
        sanitize_block="sanitize, block erase" in low,
        sanitize_crypto="sanitize, cryptographic erase" in low,
    )


# -- the whole probe ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Capabilities:
    """Everything the planner needs to know about one drive, and the raw outputs it came from."""

    protocol: str  # ata, nvme, scsi, usb, none
    flash: bool  # flash media (SSD, NVMe, USB stick): overwrite reaches Clear only
    tools: dict[str, bool]
    ata: AtaIdentify | None = None
    hpa: HpaState | None = None
    dco_real_max: int | None = None
    ata_sanitize: AtaSanitizeStatus | None = None
    nvme_ctrl: NvmeController | None = None
    nvme_ns: NvmeNamespace | None = None
    nvme_sanitize: NvmeSanitizeLog | None = None
    nvme_ctrl_dev: str | None = None  # the controller device, from sysfs (else guessed from the name)
    nvme_ctrl_source: str | None = None  # "sysfs" or "name"
    nvme_namespaces: int | None = None  # namespaces on that controller (None: unknown)
    scsi: ScsiOpcodes | None = None
    usb_bridge_sat: bool = False  # a USB bridge that passes ATA commands through (valid identify)
    emmc: EmmcExtCsd | None = None
    tcg: TcgStatus | None = None  # None: not checked (sedutil-cli missing, or it could not tell)
    media_known: bool = True  # False: the drive does not say whether it is flash (counted as flash)
    unknown: dict[str, str] = field(default_factory=dict)  # capability -> why it cannot be told
    raw: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def hidden_sectors(self) -> int:
        if self.hpa is None:
            return 0
        native = max(self.hpa.native, self.dco_real_max or 0)
        return max(0, native - self.hpa.current)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hidden_sectors"] = self.hidden_sectors
        return d


def _keep(raw: dict[str, dict[str, Any]], r: CommandResult) -> None:
    raw[" ".join(r.argv)] = {
        "returncode": r.returncode,
        "stdout": r.stdout[-8000:],
        "stderr": r.stderr[-2000:],
    }


def _run(runner: Runner, raw: dict[str, dict[str, Any]], argv: list[str]) -> CommandResult | None:
    try:
        r = runner.run(argv, timeout=60)
    except CommandError as exc:
        raw[" ".join(argv)] = {"error": exc.message}
        return None
    _keep(raw, r)
    return r


def is_flash(drive: DriveInfo, ata: AtaIdentify | None = None) -> bool:
    """Flash media, or media that cannot be told apart from it (counted as flash: see
    :func:`media_known`)."""
    if ata is not None and ata.valid:
        # No rotation rate reported: the kernel then calls the drive rotational by default, which
        # says nothing.  Counted as flash, so no method is credited with what it reaches on disks.
        return True if ata.solid_state is None else ata.solid_state
    if drive.media_type in ("ssd", "nvme", "mmc"):
        return True
    return not drive.rotational  # USB: a stick or an SSD unless the kernel says it rotates


def media_known(ata: AtaIdentify | None) -> bool:
    """False when an ATA drive does not report its rotation rate (IDENTIFY word 217)."""
    return ata is None or not ata.valid or ata.solid_state is not None


def probe(drive: DriveInfo, runner: Runner, *, sysfs: Path | None | Literal["auto"] = "auto") -> Capabilities:
    """Ask the drive (read-only commands only) what it supports.

    ``sysfs``: the sysfs root to read ("auto": ``/sys`` when ``runner`` is this machine's, see
    :func:`sysfs_root`; None: no sysfs).
    """
    asked = _Asked(runner, {t: runner.which(t) for t in TOOLS})
    if drive.transport == "nvme" or re.fullmatch(r"/dev/nvme\d+n\d+", drive.path):
        caps = _probe_nvme(drive, asked, sysfs_root(runner) if sysfs == "auto" else sysfs)
    elif drive.transport in ("sata", "ata", "usb"):
        caps = _probe_ata(drive, asked)
    elif drive.transport in ("scsi", "sas"):
        caps = _probe_scsi(drive, asked)
    elif drive.transport == "mmc" or re.fullmatch(r"/dev/mmcblk\d+", drive.path):
        return _probe_mmc(drive, asked)
    else:
        return Capabilities(
            "none",
            is_flash(drive),
            asked.tools,
            raw=asked.raw,
            notes=(
                f"no firmware commands for {drive.transport}",
                f"TCG Level 0 discovery: not applicable ({drive.transport} device: no drive firmware)",
            ),
        )
    tcg = _probe_tcg(drive, asked, caps)
    return replace(caps, tcg=tcg, unknown=dict(asked.unknown), raw=asked.raw, notes=tuple(asked.notes))


def _probe_tcg(drive: DriveInfo, asked: _Asked, caps: Capabilities) -> TcgStatus | None:
    """TCG Level 0 discovery: through sedutil-cli when it is installed, else the raw discovery
    through nvme-cli or sg_raw (:func:`_probe_level0`).  None when it cannot be told (the reason in
    the notes and under ``unknown["tcg"]``)."""
    if asked.tools["sedutil-cli"]:
        return _probe_sedutil(drive, asked)
    return _probe_level0(drive, asked, caps)


def _probe_sedutil(drive: DriveInfo, asked: _Asked) -> TcgStatus | None:
    """The query (locking state), and the scan's SSC column when the query shows no SSC."""
    r = _run(asked.runner, asked.raw, ["sedutil-cli", "--query", drive.path])
    query = parse_sedutil_query(r.stdout) if r is not None else None
    scan = None
    if query is None or not query.families:
        r = asked.ok(["sedutil-cli", "--scan"])
        scan = parse_sedutil_scan(r.stdout, drive.path) if r is not None else None
    found = merged(query, scan)
    if found is None:
        asked.notes.append("TCG Opal/Pyrite: sedutil-cli could not tell (no Level 0 discovery, no scan line)")
    else:
        asked.notes.append(f"TCG (sedutil-cli --{found.source.split('+')[0]}): {found.describe}")
    return found


# Level 0 discovery (security protocol 1, ComID 0x0001) without sedutil-cli, as argv tails after the
# device.  SCSI SECURITY PROTOCOL IN (SPC-4 6.40): protocol 01h, protocol specific 0001h, allocation
# length 2048 (Linux's libata translates it into ATA TRUSTED RECEIVE for a SATA drive that reports
# the Trusted Computing feature set).  ATA PASS-THROUGH(16) (SAT-4 12.2.2) of TRUSTED RECEIVE 5Ch
# (ACS-4 7.53): PIO data-in (protocol 4: byte 1 = 08h), T_DIR=1 BYT_BLOK=1 T_LENGTH=10b (count
# field, in 512-byte blocks: byte 2 = 0Eh), FEATURE = protocol 01h, COUNT = 1 block, LBA(7:0) = 0
# (length bits 15:8), LBA mid/high = ComID 0001h; what USB bridges pass through.  libata refuses it
# unless the kernel runs with libata.allow_tpm=1 ("Invalid field in cdb", byte 14).
def cdb(hex_bytes: str) -> tuple[str, ...]:
    """A SCSI command block as sg_raw takes it: one hex byte per argument."""
    return tuple(hex_bytes.split())


SPIN_CDB = cdb("a2 01 00 01 00 00 00 00 08 00 00 00")
ATA16_TRUSTED_RECEIVE = cdb("85 08 0e 00 01 00 01 00 00 00 01 00 00 00 5c 00")


def level0_argvs(protocol: str, dev: str) -> list[list[str]]:
    """The raw Level 0 discovery commands for a drive of ``protocol``, in the order they are tried."""
    spin = ["sg_raw", "-R", "-r", "2048", dev, *SPIN_CDB]
    ata = ["sg_raw", "-R", "-r", "512", dev, *ATA16_TRUSTED_RECEIVE]
    if protocol == "nvme":
        return [["nvme", "security-recv", dev, "--secp=1", "--spsp=1", "--size=2048", "--al=2048"]]
    return {"ata": [spin, ata], "usb": [ata, spin], "scsi": [spin]}.get(protocol, [])


def _rejected_why(r: CommandResult) -> str:
    """What a tool said when the drive refused the command: the sense or status line."""
    lines = [line.strip() for line in (r.stderr + "\n" + r.stdout).splitlines() if line.strip()]
    for key in ("Additional sense:", "NVMe status:", "Sense key:"):
        for line in lines:
            if key in line:
                return line
    return lines[0][:200] if lines else f"exit {r.returncode}"


def _cannot_tell_tcg(asked: _Asked, why: str) -> None:
    asked.unknown["tcg"] = why
    asked.notes.append(f"TCG Opal/Pyrite: cannot tell: {why}")


def _probe_level0(drive: DriveInfo, asked: _Asked, caps: Capabilities) -> TcgStatus | None:
    """The raw Level 0 discovery (no sedutil-cli): each command of :func:`level0_argvs` in turn
    until the drive answers one; a drive that refuses them all is not known to be a TCG drive."""
    tool = "nvme" if caps.protocol == "nvme" else "sg_raw"
    if caps.protocol == "nvme" and caps.nvme_ctrl is not None and not caps.nvme_ctrl.oacs & 0x1:
        asked.notes.append("TCG: not a TCG drive (the controller has no Security Send/Receive: OACS bit 0)")
        return TcgStatus(families=(), source="nvme-oacs")
    dev = caps.nvme_ctrl_dev or drive.path if caps.protocol == "nvme" else drive.path
    argvs = level0_argvs(caps.protocol, dev)
    if not argvs:
        asked.notes.append(f"TCG Level 0 discovery: not applicable to {caps.protocol} drives")
        return None
    if not asked.tools[tool]:
        _cannot_tell_tcg(asked, f"not checked: sedutil-cli is not installed, nor {tool} ({TOOLS[tool]})")
        return None
    refused: list[str] = []
    for argv in argvs:
        r = _run(asked.runner, asked.raw, argv)
        if r is None:
            _cannot_tell_tcg(asked, f"{' '.join(argv[:2])} failed: {asked.raw[' '.join(argv)]['error']}")
            return None
        if not r.ok:
            refused.append(f"{_level0_name(argv)}: {_rejected_why(r)}")
            continue
        try:
            found = parse_level0(
                nvme_hexdump_bytes(r.stdout) if tool == "nvme" else sg_raw_hexdump_bytes(r.stderr)
            )
        except UnrecognisedOutput as exc:
            _cannot_tell_tcg(asked, f"{_level0_name(argv)}: {exc.message}")
            return None
        cut = f"; the last {found.missing_bytes} byte(s) not received" if found.missing_bytes else ""
        asked.notes.append(
            f"TCG ({_level0_name(argv)}): {found.describe} (features {describe_features(found)}{cut})"
        )
        return found
    _cannot_tell_tcg(
        asked,
        "the drive refused Level 0 discovery (" + "; ".join(refused) + "): not a TCG "
        "drive, or one this path cannot reach",
    )
    return None


def _level0_name(argv: Sequence[str]) -> str:
    if argv[0] == "nvme":
        return "nvme security-recv"
    return "sg_raw ATA TRUSTED RECEIVE" if "5c" in argv else "sg_raw SECURITY PROTOCOL IN"


def _probe_mmc(drive: DriveInfo, asked: _Asked) -> Capabilities:
    """eMMC: the Extended CSD through mmc-utils."""
    emmc = None
    if not asked.tools["mmc"]:
        asked.unknown["emmc"] = "mmc-utils is not installed (apt-get install mmc-utils)"
    else:
        r = _run(asked.runner, asked.raw, ["mmc", "extcsd", "read", drive.path])
        if r is None or not r.ok:
            asked.unknown["emmc"] = "mmc extcsd read failed" + (f": {r.stderr.strip()[:200]}" if r else "")
        else:
            emmc = asked.parsed(parse_mmc_extcsd, r, "emmc")
    if "emmc" in asked.unknown:
        asked.notes.append(f"cannot tell: {asked.unknown['emmc']}")
    return Capabilities(
        "mmc",
        True,
        asked.tools,
        emmc=emmc,
        unknown=dict(asked.unknown),
        raw=asked.raw,
        notes=tuple(asked.notes),
    )


@dataclass
class _Asked:
    """One probe's commands: the runner, the tools found, every raw answer and the notes."""

    runner: Runner
    tools: dict[str, bool]
    raw: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    unknown: dict[str, str] = field(default_factory=dict)

    def ok(self, argv: list[str]) -> CommandResult | None:
        """The command's result when it succeeded (it is kept in ``raw`` either way)."""
        r = _run(self.runner, self.raw, argv)
        return r if r is not None and r.ok else None

    def parsed(self, parse: Callable[[str], _T], result: CommandResult | None, key: str) -> _T | None:
        """``parse`` of a result's output, or None; when it cannot be read, why is kept in the notes
        and under ``key`` in ``unknown`` (what the drive supports is then unknown, not absent)."""
        if result is None:
            return None
        try:
            return parse(result.stdout)
        except UnrecognisedOutput as exc:
            self.notes.append(f"cannot tell: {exc.message}")
            self.unknown[key] = exc.message
            return None

    def failed(self, argv: list[str], key: str) -> None:
        """Keep why ``argv`` gave nothing (it failed, or could not run) as the reason ``key`` is unknown."""
        entry = self.raw.get(" ".join(argv), {})
        why = (
            entry.get("error")
            or (entry.get("stderr") or "").strip()[:200]
            or f"exit {entry.get('returncode')}"
        )
        self.unknown.setdefault(key, f"{' '.join(argv[:2])} failed: {why}")


def _probe_nvme(drive: DriveInfo, asked: _Asked, root: Path | None) -> Capabilities:
    dev = drive.path
    if not asked.tools["nvme"]:
        asked.notes.append("nvme-cli is not installed")
        asked.unknown["nvme_ctrl"] = "nvme-cli is not installed (apt-get install nvme-cli)"
        return Capabilities("nvme", True, asked.tools)
    ctrl_dev = nvme_sysfs_controller(dev, root) if root is not None else None
    source = "sysfs"
    if ctrl_dev is None:
        ctrl_dev, source = nvme_controller_of(dev), "name"
        asked.notes.append(f"controller {ctrl_dev} guessed from the namespace name (sysfs gave nothing)")
    argv = ["nvme", "id-ctrl", ctrl_dev, "-o", "json"]
    r = asked.ok(argv)
    if r is None:
        asked.failed(argv, "nvme_ctrl")
    ctrl = asked.parsed(parse_nvme_id_ctrl, r, "nvme_ctrl")
    argv = ["nvme", "id-ns", dev, "-o", "json"]
    r = asked.ok(argv)
    if r is None:
        asked.failed(argv, "nvme_ns")
    ns = asked.parsed(parse_nvme_id_ns, r, "nvme_ns")
    slog = None
    r = _run(asked.runner, asked.raw, ["nvme", "sanitize-log", ctrl_dev, "-o", "json"])
    if r is not None and r.ok:
        slog = asked.parsed(parse_nvme_sanitize_log, r, "nvme_sanitize")
    elif r is not None:
        asked.notes.append(f"sanitize log not readable: {r.stderr.strip()[:200]}")
    count = nvme_sysfs_namespaces(ctrl_dev, root) if root is not None else None
    if count is None and ctrl is not None and ctrl.serial:
        r = asked.ok(["nvme", "list", "-o", "json"])
        count = nvme_list_namespaces(r.stdout, ctrl.serial) if r is not None else None
    return Capabilities(
        "nvme",
        True,
        asked.tools,
        nvme_ctrl=ctrl,
        nvme_ns=ns,
        nvme_sanitize=slog,
        nvme_ctrl_dev=ctrl_dev,
        nvme_ctrl_source=source,
        nvme_namespaces=count,
    )


def _probe_ata(drive: DriveInfo, asked: _Asked) -> Capabilities:
    """SATA/PATA drives and USB bridges: identify, hidden areas, sanitize status (through hdparm)."""
    ata = _ata_identify(drive.path, asked)
    hpa = sstat = dco = None
    if ata is not None and ata.valid:
        hpa, dco, sstat = _ata_details(drive.path, ata, asked)
    usb = drive.transport == "usb"
    sat = usb and ata is not None and ata.valid
    if usb and not sat:
        asked.notes.append("USB bridge does not pass ATA IDENTIFY through (all-zero identify)")
    if ata is not None and ata.valid and not media_known(ata):
        asked.notes.append("the drive does not report its rotation rate: counted as flash (levels of flash)")
    if ata is not None and ata.valid and ata.security_feature and not ata.security.reported:
        asked.unknown["ata_security"] = (
            "hdparm -I lists the Security feature set but prints no Security section"
        )
    return Capabilities(
        "usb" if usb else "ata",
        is_flash(drive, ata),
        asked.tools,
        ata=ata,
        hpa=hpa,
        dco_real_max=dco,
        ata_sanitize=sstat,
        usb_bridge_sat=sat,
        media_known=media_known(ata),
    )


def _ata_identify(dev: str, asked: _Asked) -> AtaIdentify | None:
    if not asked.tools["hdparm"]:
        asked.notes.append("hdparm is not installed: ATA capabilities unknown")
        asked.unknown["ata"] = "hdparm is not installed (apt-get install hdparm)"
        return None
    r = asked.ok(["hdparm", "-I", dev])
    if r is None:
        asked.failed(["hdparm", "-I", dev], "ata")
        return None
    return parse_hdparm_identify(r.stdout)


def _ata_details(
    dev: str, ata: AtaIdentify, asked: _Asked
) -> tuple[HpaState | None, int | None, AtaSanitizeStatus | None]:
    """Hidden areas (HPA, DCO) and the sanitize state of a drive whose IDENTIFY was read."""
    r = asked.ok(["hdparm", "-N", dev])
    hpa = parse_hdparm_n(r.stdout) if r is not None else None
    r = asked.ok(["hdparm", "--dco-identify", dev])
    dco = parse_dco_identify(r.stdout) if r is not None else None
    sstat = None
    if ata.sanitize:
        r = asked.ok(["hdparm", "--sanitize-status", dev])
        sstat = parse_hdparm_sanitize_status(r.stdout) if r is not None else None
    return hpa, dco, sstat


def _probe_scsi(drive: DriveInfo, asked: _Asked) -> Capabilities:
    scsi = None
    if asked.tools["sg_opcodes"]:
        r = _run(asked.runner, asked.raw, ["sg_opcodes", drive.path])
        scsi = parse_sg_opcodes(r) if r is not None else None
        if scsi is not None and not scsi.reported:
            asked.notes.append("the device does not report its supported commands: SANITIZE support unknown")
    return Capabilities("scsi", is_flash(drive), asked.tools, scsi=scsi)
