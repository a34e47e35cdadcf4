"""SMART health, attributes and self-tests, read from smartctl's JSON output through the runner.

Why smartctl JSON through :class:`host.runner.Runner` and not pySMART's ``Device``
-----------------------------------------------------------------------------------
pySMART (1.4) runs smartctl itself (``subprocess.Popen`` inside its ``Smartctl`` class), calls it
several times per drive (``--info``, ``--all``, ``--health``...) and parses the *human* text output
with regular expressions.  Tabula needs every command to go through one runner so that a whole
machine can be recorded and replayed in tests, and smartctl (>= 7.0) prints a documented JSON
document (``--json``) that carries the same facts with types and without locale or layout
guessing.  So this module runs ``smartctl --json=c ...`` through the runner and reads the JSON.
pySMART is therefore not a dependency: wrapping its ``Smartctl._exec`` would still leave us with its
text parser and its own argv choices, which would need a second set of recordings for the same facts.

Honesty rules implemented here
------------------------------
* A drive that cannot report SMART (virtio, most USB bridges, some SCSI) is ``unknown``, never
  ``passed``: ``passed`` needs smartctl to have read an overall health status from the drive.
* Exit codes are decoded (smartctl's exit status is a bit mask) and cross-checked, never trusted
  alone: a self-test start that exits 0 is only *confirmed* when the self-test log shows the test
  running or a new entry.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from diagnostics.errors import SelfTestError, SelfTestNotStarted
from host.runner import CommandResult, Runner

Status = Literal["passed", "failed", "unknown"]
SelfTestKind = Literal["short", "long"]

SMARTCTL = "smartctl"

# smartctl(8) "RETURN VALUES": the exit status is a bit mask.
EXIT_BITS: dict[int, str] = {
    0: "command line did not parse",
    1: "device open failed, or device did not return an IDENTIFY response",
    2: "some SMART or other command to the disk failed, or a checksum error in a SMART data structure",
    3: "SMART status check returned 'DISK FAILING'",
    4: "prefail attributes found at or below their threshold",
    5: "some usage or prefail attributes were at or below their threshold in the past",
    6: "the device error log contains records of errors",
    7: "the self-test log contains records of errors",
}

# ATA attribute IDs that matter for reuse (SMART attribute IDs are de-facto standard; smartctl's
# drive database names them, names vary by vendor so IDs are used).
ATA_REALLOCATED = 5
ATA_POWER_ON_HOURS = 9
ATA_POWER_CYCLES = 12
ATA_REPORTED_UNCORRECT = 187
ATA_TEMPERATURE = (194, 190)
ATA_REALLOCATION_EVENTS = 196
ATA_PENDING = 197
ATA_OFFLINE_UNCORRECTABLE = 198
ATA_CRC_ERRORS = 199
# SSD wear: normalized value counts down from 100 (percent of life left) on these IDs.
ATA_WEAR_LEFT_IDS = (177, 231, 233, 202, 169)

NVME_CRITICAL_WARNING_BITS: dict[int, str] = {
    0: "available spare below threshold",
    1: "temperature above or below threshold",
    2: "NVM subsystem reliability degraded (media or internal errors)",
    3: "media placed in read-only mode",
    4: "volatile memory backup device failed",
    5: "persistent memory region read-only or unreliable",
}


def decode_exit_status(code: int) -> list[str]:
    """The meaning of each bit set in smartctl's exit status."""
    if code < 0:
        return [f"smartctl was killed by signal {-code}"]
    return [text for bit, text in EXIT_BITS.items() if code & (1 << bit)]


@dataclass(frozen=True)
class SmartAttributes:
    """The attributes that decide reuse.  ``None`` means the drive did not report it (not zero)."""

    reallocated_sectors: int | None = None
    reallocation_events: int | None = None
    pending_sectors: int | None = None
    offline_uncorrectable: int | None = None
    reported_uncorrectable: int | None = None
    crc_errors: int | None = None
    power_on_hours: int | None = None
    power_cycles: int | None = None
    temperature_c: int | None = None
    percentage_used: int | None = None  # SSD wear: NVMe "Percentage Used", or 100 - ATA life left
    available_spare: int | None = None  # NVMe, percent
    available_spare_threshold: int | None = None
    media_errors: int | None = None  # NVMe "Media and Data Integrity Errors"
    error_log_entries: int | None = None  # NVMe error log entries / ATA error log count
    critical_warning: int | None = None  # NVMe bit field
    grown_defects: int | None = None  # SCSI grown defect list
    uncorrected_errors: int | None = None  # SCSI read+write+verify uncorrected errors
    data_written_bytes: int | None = None

    def to_dict(self) -> dict[str, int | None]:
        return asdict(self)


@dataclass(frozen=True)
class SelfTestEntry:
    """One line of the drive's self-test log (newest first, as smartctl prints it)."""

    kind: str  # "Short offline", "Extended offline", "Short", "Extended", ...
    status: str  # smartctl's text: "Completed without error", "Aborted by host", ...
    passed: bool | None  # None: not finished / aborted, neither pass nor fail
    lifetime_hours: int | None = None
    remaining_percent: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SelfTestState:
    """What the drive says about self-tests right now."""

    supported: bool | None  # None: could not tell
    running: bool
    kind: str | None = None
    remaining_percent: int | None = None  # ATA: percent left; NVMe: 100 - completion
    log: tuple[SelfTestEntry, ...] = ()
    short_minutes: int | None = None  # the drive's recommended polling times (ATA)
    long_minutes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["log"] = [e.to_dict() for e in self.log]
        return d


@dataclass(frozen=True)
class SmartReport:
    """Everything read from one ``smartctl --json=c -a`` call, judged honestly."""

    device: str
    status: Status
    reasons: tuple[str, ...]  # why the status is what it is, in plain words
    protocol: str | None = None  # "ATA", "NVMe", "SCSI"; None when smartctl could not tell
    device_type: str | None = None  # smartctl's -d type it used ("sat", "nvme", "scsi", ...)
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    capacity_bytes: int | None = None
    rotation_rate: int | None = None  # rpm; 0 = solid state
    smart_available: bool | None = None
    smart_enabled: bool | None = None
    attributes: SmartAttributes = field(default_factory=SmartAttributes)
    failing_attributes: tuple[str, ...] = ()  # ATA attributes at/below threshold now
    self_test: SelfTestState | None = None
    exit_status: int = 0
    exit_meaning: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()  # smartctl's own messages (errors, warnings)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["attributes"] = self.attributes.to_dict()
        d["self_test"] = self.self_test.to_dict() if self.self_test else None
        d["reasons"] = list(self.reasons)
        d["failing_attributes"] = list(self.failing_attributes)
        d["exit_meaning"] = list(self.exit_meaning)
        d["messages"] = list(self.messages)
        return d


# --------------------------------------------------------------------------- JSON helpers


def _dig(d: Any, *keys: str | int) -> Any:
    for k in keys:
        if isinstance(d, Mapping) and isinstance(k, str):
            d = d.get(k)
        elif isinstance(d, list) and isinstance(k, int) and -len(d) <= k < len(d):
            d = d[k]
        else:
            return None
    return d


def _int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return None


def _str(v: Any) -> str | None:
    if isinstance(v, str):
        s = v.strip()
        return s or None
    return None


def _bool(v: Any) -> bool | None:
    return v if isinstance(v, bool) else None


def parse_json(stdout: str) -> dict[str, Any] | None:
    """smartctl's JSON document, or None when stdout is not one (old smartctl, crash, empty)."""
    text = stdout.strip()
    if not text:
        return None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


#: The major version of smartctl's JSON format this module reads (smartctl 7.x prints [1, 0]; the
#: experimental JSON of smartctl 6.7 was [0, 1]).
JSON_FORMAT_MAJOR = 1


def json_format_problem(doc: Mapping[str, Any]) -> str | None:
    """Why ``doc`` is not a smartctl JSON document this module can read (None when it is).

    An unknown format version says "cannot tell": its members may not mean what they mean in 1.x.
    """
    version = doc.get("json_format_version")
    if isinstance(version, list) and version and _int(version[0]) == JSON_FORMAT_MAJOR:
        return None
    shown = ".".join(str(v) for v in version) if isinstance(version, list) else "not given"
    return (
        f"smartctl's JSON format version is {shown}, not {JSON_FORMAT_MAJOR}.x (smartctl 7): "
        "this station cannot tell what the drive reports"
    )


def _messages(doc: Mapping[str, Any]) -> tuple[str, ...]:
    out = []
    for m in _dig(doc, "smartctl", "messages") or []:
        s = _str(_dig(m, "string"))
        if s:
            sev = _str(_dig(m, "severity"))
            out.append(f"{sev}: {s}" if sev else s)
    return tuple(out)


# --------------------------------------------------------------------------- attributes


def _ata_table(doc: Mapping[str, Any]) -> dict[int, Mapping[str, Any]]:
    table = _dig(doc, "ata_smart_attributes", "table") or []
    out: dict[int, Mapping[str, Any]] = {}
    for row in table:
        i = _int(_dig(row, "id"))
        if i is not None and isinstance(row, Mapping):
            out[i] = row
    return out


def _ata_raw(table: Mapping[int, Mapping[str, Any]], attr_id: int) -> int | None:
    row = table.get(attr_id)
    if row is None:
        return None
    raw = _int(_dig(row, "raw", "value"))
    if raw is None:
        return None
    # Several vendors pack extra counters in the upper raw bytes of counts; the low 32 bits hold
    # the count itself (smartctl shows the same with its default raw formats).
    if attr_id in (ATA_REALLOCATED, ATA_PENDING, ATA_OFFLINE_UNCORRECTABLE, ATA_REALLOCATION_EVENTS):
        return raw & 0xFFFFFFFF
    return raw


def _ata_temperature(table: Mapping[int, Mapping[str, Any]]) -> int | None:
    for attr_id in ATA_TEMPERATURE:
        raw = _ata_raw(table, attr_id)
        if raw is not None:
            return raw & 0xFF  # low byte is the current temperature; upper bytes hold min/max
    return None


def _ata_wear_used(table: Mapping[int, Mapping[str, Any]]) -> int | None:
    for attr_id in ATA_WEAR_LEFT_IDS:
        row = table.get(attr_id)
        if row is not None:
            value = _int(_dig(row, "value"))
            if value is not None and 0 <= value <= 100:
                return 100 - value
    return None


def parse_attributes(doc: Mapping[str, Any]) -> SmartAttributes:
    """The reuse-relevant attributes from any protocol's JSON; absent ones stay None."""
    table = _ata_table(doc)
    nvme = _dig(doc, "nvme_smart_health_information_log")
    nvme = nvme if isinstance(nvme, Mapping) else {}
    units = _int(nvme.get("data_units_written"))
    return SmartAttributes(
        reallocated_sectors=_ata_raw(table, ATA_REALLOCATED),
        reallocation_events=_ata_raw(table, ATA_REALLOCATION_EVENTS),
        pending_sectors=_ata_raw(table, ATA_PENDING),
        offline_uncorrectable=_ata_raw(table, ATA_OFFLINE_UNCORRECTABLE),
        reported_uncorrectable=_ata_raw(table, ATA_REPORTED_UNCORRECT),
        crc_errors=_ata_raw(table, ATA_CRC_ERRORS),
        power_on_hours=_power_on_hours(doc, table, nvme),
        power_cycles=_power_cycles(doc, table, nvme),
        temperature_c=_temperature(doc, table, nvme),
        percentage_used=_percentage_used(doc, table, nvme),
        available_spare=_int(nvme.get("available_spare")),
        available_spare_threshold=_int(nvme.get("available_spare_threshold")),
        media_errors=_int(nvme.get("media_errors")),
        error_log_entries=_first(
            _int(nvme.get("num_err_log_entries")),
            lambda: _int(_dig(doc, "ata_smart_error_log", "summary", "count")),
        ),
        critical_warning=_int(nvme.get("critical_warning")),
        grown_defects=_int(doc.get("scsi_grown_defect_list")),
        uncorrected_errors=_scsi_uncorrected(doc),
        data_written_bytes=units * 512_000 if units is not None else None,  # NVMe units: 1000 x 512 B
    )


def _first(value: int | None, *fallbacks: Callable[[], int | None]) -> int | None:
    """``value``, else the first fallback that knows (each is only asked when needed)."""
    for fallback in fallbacks:
        if value is not None:
            return value
        value = fallback()
    return value


def _temperature(doc: Mapping[str, Any], table: Mapping[int, Any], nvme: Mapping[str, Any]) -> int | None:
    temperature = _first(
        _int(_dig(doc, "temperature", "current")),
        lambda: _ata_temperature(table) if table else _int(nvme.get("temperature")),
    )
    if temperature is not None and temperature <= 0:
        return None  # 0 C is what devices without a sensor report (QEMU SCSI): not a reading
    return temperature


def _power_on_hours(doc: Mapping[str, Any], table: Mapping[int, Any], nvme: Mapping[str, Any]) -> int | None:
    return _first(
        _int(_dig(doc, "power_on_time", "hours")),
        lambda: _ata_raw(table, ATA_POWER_ON_HOURS) if table else _int(nvme.get("power_on_hours")),
    )


def _power_cycles(doc: Mapping[str, Any], table: Mapping[int, Any], nvme: Mapping[str, Any]) -> int | None:
    return _first(
        _int(doc.get("power_cycle_count")),
        lambda: _ata_raw(table, ATA_POWER_CYCLES) if table else _int(nvme.get("power_cycles")),
        lambda: _int(_dig(doc, "scsi_start_stop_cycle_counter", "accumulated_start_stop_cycles")),
    )


def _percentage_used(doc: Mapping[str, Any], table: Mapping[int, Any], nvme: Mapping[str, Any]) -> int | None:
    return _first(
        _int(nvme.get("percentage_used")),
        lambda: _ata_wear_used(table) if table else None,
        lambda: _int(doc.get("scsi_percentage_used_endurance_indicator")),
        lambda: _devstat_wear(doc),
    )


def _devstat_wear(doc: Mapping[str, Any]) -> int | None:
    """ATA Device Statistics (-x / -l devstat) "Percentage Used Endurance Indicator"."""
    wear = None
    for page in _dig(doc, "ata_device_statistics", "pages") or []:
        for row in _dig(page, "table") or []:
            if _str(_dig(row, "name")) == "Percentage Used Endurance Indicator":
                wear = _int(_dig(row, "value"))
    return wear


def _scsi_uncorrected(doc: Mapping[str, Any]) -> int | None:
    errlog = _dig(doc, "scsi_error_counter_log")
    if not isinstance(errlog, Mapping):
        return None
    totals = [_int(_dig(errlog, k, "total_uncorrected_errors")) for k in ("read", "write", "verify")]
    known = [t for t in totals if t is not None]
    return sum(known) if known else None


# --------------------------------------------------------------------------- self-test state

_ATA_SELFTEST_RUNNING = 0xF


def parse_self_test(doc: Mapping[str, Any]) -> SelfTestState | None:
    """The self-test state from ``-a`` / ``-c -l selftest`` JSON; None when nothing is said."""
    protocol = _str(_dig(doc, "device", "protocol"))
    if protocol == "NVMe" or "nvme_self_test_log" in doc:
        return _parse_nvme_self_test(doc)
    if "ata_smart_data" in doc or "ata_smart_self_test_log" in doc:
        return _parse_ata_self_test(doc)
    return None


def _parse_ata_self_test(doc: Mapping[str, Any]) -> SelfTestState:
    caps = _dig(doc, "ata_smart_data", "capabilities")
    supported = _bool(_dig(caps, "self_tests_supported"))
    status = _dig(doc, "ata_smart_data", "self_test", "status")
    value = _int(_dig(status, "value"))
    running = value is not None and (value >> 4) == _ATA_SELFTEST_RUNNING
    remaining = _int(_dig(status, "remaining_percent")) if running else None
    if running and remaining is None and value is not None:
        remaining = (value & 0x0F) * 10
    log: list[SelfTestEntry] = []
    for row in _dig(doc, "ata_smart_self_test_log", "standard", "table") or []:
        st = _dig(row, "status")
        log.append(
            SelfTestEntry(
                kind=_str(_dig(row, "type", "string")) or "?",
                status=_str(_dig(st, "string")) or "?",
                passed=_bool(_dig(st, "passed")),
                lifetime_hours=_int(_dig(row, "lifetime_hours")),
                remaining_percent=_int(_dig(st, "remaining_percent")),
            )
        )
    return SelfTestState(
        supported=supported,
        running=running,
        kind=None,
        remaining_percent=remaining,
        log=tuple(log),
        short_minutes=_int(_dig(doc, "ata_smart_data", "self_test", "polling_minutes", "short")),
        long_minutes=_int(_dig(doc, "ata_smart_data", "self_test", "polling_minutes", "extended")),
    )


_NVME_RESULT_PASSED = 0x0
_NVME_RESULT_FAILED = {0x5, 0x6, 0x7}  # fatal error, unknown segment failed, segments failed


def _parse_nvme_self_test(doc: Mapping[str, Any]) -> SelfTestState:
    oacs = _int(_dig(doc, "nvme_controller_capabilities", "self_test"))
    supported: bool | None = _bool(_dig(doc, "nvme_controller_capabilities", "self_test"))
    if supported is None and oacs is not None:
        supported = bool(oacs)
    st = _dig(doc, "nvme_self_test_log")
    if supported is None and isinstance(st, Mapping):
        supported = True  # the drive answered the self-test log page
    op = _int(_dig(st, "current_self_test_operation", "value")) or 0
    completion = _int(_dig(st, "current_self_test_completion_percent"))
    log: list[SelfTestEntry] = []
    for row in _dig(st, "table") or []:
        result = _int(_dig(row, "self_test_result", "value"))
        passed: bool | None
        if result == _NVME_RESULT_PASSED:
            passed = True
        elif result in _NVME_RESULT_FAILED:
            passed = False
        else:
            passed = None
        log.append(
            SelfTestEntry(
                kind=_str(_dig(row, "self_test_code", "string")) or "?",
                status=_str(_dig(row, "self_test_result", "string")) or "?",
                passed=passed,
                lifetime_hours=_int(_dig(row, "power_on_hours")),
            )
        )
    return SelfTestState(
        supported=supported,
        running=op != 0,
        kind=_str(_dig(st, "current_self_test_operation", "string")) if op else None,
        remaining_percent=(100 - completion) if (op and completion is not None) else None,
        log=tuple(log),
    )


# --------------------------------------------------------------------------- health


def parse_report(device: str, result: CommandResult) -> SmartReport:
    """Judge one ``smartctl --json=c -a DEV`` result.  Never raises on odd output: it says unknown."""
    doc = parse_json(result.stdout)
    if doc is None:
        return _no_json(device, result)
    messages = _messages(doc)
    exit_status = _int(_dig(doc, "smartctl", "exit_status"))
    if exit_status is None:
        exit_status = result.returncode
    problem = json_format_problem(doc)
    if problem is not None:
        exit_meaning = tuple(decode_exit_status(exit_status))
        return SmartReport(
            device=device,
            status="unknown",
            reasons=(problem, *exit_meaning),
            exit_status=exit_status,
            exit_meaning=exit_meaning,
            messages=messages,
        )
    attributes = parse_attributes(doc)
    failing_now = tuple(
        f"{_str(_dig(row, 'name')) or 'attribute'} (id {i})"
        for i, row in sorted(_ata_table(doc).items())
        if _str(_dig(row, "when_failed")) == "now"
    )
    status, reasons = _health(doc, exit_status, failing_now, messages)
    status, reasons = _warnings(status, reasons, attributes, exit_status)
    return SmartReport(
        device=device,
        status=status,
        reasons=tuple(dict.fromkeys(reasons)),
        protocol=_str(_dig(doc, "device", "protocol")),
        device_type=_str(_dig(doc, "device", "type")),
        model=_model(doc),
        serial=_str(doc.get("serial_number")),
        firmware=_str(doc.get("firmware_version")) or _str(doc.get("scsi_revision")),
        capacity_bytes=_capacity(doc),
        rotation_rate=_int(doc.get("rotation_rate")),
        smart_available=_bool(_dig(doc, "smart_support", "available")),
        smart_enabled=_bool(_dig(doc, "smart_support", "enabled")),
        attributes=attributes,
        failing_attributes=failing_now,
        self_test=parse_self_test(doc),
        exit_status=exit_status,
        exit_meaning=tuple(decode_exit_status(exit_status)),
        messages=messages,
    )


def _no_json(device: str, result: CommandResult) -> SmartReport:
    exit_meaning = tuple(decode_exit_status(result.returncode))
    reason = "smartctl printed no JSON"
    if result.stderr.strip():
        reason += f" ({result.stderr.strip().splitlines()[-1]})"
    return SmartReport(
        device=device,
        status="unknown",
        reasons=(reason, *exit_meaning),
        exit_status=result.returncode,
        exit_meaning=exit_meaning,
    )


def _health(
    doc: Mapping[str, Any], exit_status: int, failing_now: tuple[str, ...], messages: tuple[str, ...]
) -> tuple[Status, list[str]]:
    """The overall verdict: the drive's own SMART status, then the attributes failing now."""
    passed = _bool(_dig(doc, "smart_status", "passed"))
    if exit_status & 0b11 and passed is None:
        errors = [m for m in messages if m.startswith("error")]
        return "unknown", ["smartctl could not open or identify the device", *errors]
    if passed is False or exit_status & (1 << 3):
        return "failed", ["the drive reports its overall SMART health as FAILED"]
    if failing_now:
        return "failed", ["attributes at or below their failure threshold: " + ", ".join(failing_now)]
    if passed is True:
        return "passed", ["the drive reports its overall SMART health as PASSED"]
    if _bool(_dig(doc, "smart_support", "available")) is False:
        why = "the device does not support SMART (or its bridge does not pass it through)"
    elif _bool(_dig(doc, "smart_support", "enabled")) is False:
        why = "SMART is disabled on the device"
    else:
        why = "smartctl could not read an overall health status from the device"
    return "unknown", [why, *(m for m in messages if not m.startswith("information"))]


def _warnings(
    status: Status, reasons: list[str], attributes: SmartAttributes, exit_status: int
) -> tuple[Status, list[str]]:
    """What fails a drive whose overall status passed: NVMe critical warnings, prefail attributes."""
    warning = attributes.critical_warning
    if warning:
        bits = [text for bit, text in NVME_CRITICAL_WARNING_BITS.items() if warning & (1 << bit)]
        reasons.append("NVMe critical warning: " + (", ".join(bits) or f"0x{warning:02x}"))
        if status == "passed":
            status = "failed"
    if status == "passed" and exit_status & (1 << 4):
        status = "failed"
        reasons.append("smartctl reports prefail attributes at or below threshold")
    return status, reasons


def _model(doc: Mapping[str, Any]) -> str | None:
    scsi = " ".join(x for x in (_str(doc.get("scsi_vendor")), _str(doc.get("scsi_product"))) if x)
    return _str(doc.get("model_name")) or _str(doc.get("scsi_model_name")) or scsi or None


def _capacity(doc: Mapping[str, Any]) -> int | None:
    capacity = _int(_dig(doc, "user_capacity", "bytes"))
    if capacity is None:
        capacity = _int(_dig(doc, "nvme_total_capacity")) or _int(
            _dig(doc, "nvme_namespaces", 0, "size", "bytes")
        )
    return capacity


def smart_argv(device: str) -> list[str]:
    return [SMARTCTL, "--json=c", "-a", device]


def read_smart(runner: Runner, device: str, *, timeout: float = 60.0) -> SmartReport:
    """Run ``smartctl --json=c -a DEVICE`` and judge it.  A missing smartctl is an error (ToolMissing)."""
    result = runner.run(smart_argv(device), timeout=timeout)
    return parse_report(device, result)


# --------------------------------------------------------------------------- self-tests


@dataclass(frozen=True)
class SelfTestOutcome:
    """How a self-test ended: ``passed`` / ``failed`` / ``unknown`` (aborted, cancelled, timed out)."""

    device: str
    kind: SelfTestKind
    status: Status
    reason: str
    duration: float
    entry: SelfTestEntry | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["entry"] = self.entry.to_dict() if self.entry else None
        return d


def self_test_state(runner: Runner, device: str) -> SelfTestState:
    """Read the self-test state (``smartctl --json=c -a DEV``).  Raises if the drive says nothing."""
    result = runner.run(smart_argv(device))
    doc = parse_json(result.stdout)
    state = parse_self_test(doc) if doc is not None and json_format_problem(doc) is None else None
    if state is None:
        raise SelfTestError(
            f"{device}: smartctl reported no self-test information",
            hint="the drive (or its USB bridge) does not expose SMART self-tests",
        )
    return state


def _log_changed(before: SelfTestState, after: SelfTestState) -> bool:
    if len(after.log) != len(before.log):
        return True
    return bool(after.log) and after.log[0] != before.log[0]


def start_self_test(runner: Runner, device: str, kind: SelfTestKind) -> SelfTestState:
    """Start a self-test and *confirm* it from the self-test log; return the state before it.

    The state before is what :func:`wait_self_test` compares with to find the test's own entry.
    Raises :class:`SelfTestNotStarted` when the log shows neither a running test nor a new entry,
    whatever smartctl's exit code said.
    """
    if kind not in ("short", "long"):
        raise SelfTestError(f"unknown self-test kind {kind!r}", hint="use 'short' or 'long'")
    try:
        before = self_test_state(runner, device)
    except SelfTestError as exc:
        raise SelfTestNotStarted(exc.message) from exc
    if before.supported is False:
        raise SelfTestNotStarted(f"{device}: the drive does not support SMART self-tests")
    if before.running:
        raise SelfTestError(
            f"{device}: a self-test is already running ({before.remaining_percent}% remaining)",
            hint="wait for it, or abort it first",
        )
    # Plain text here: the answer is judged from the self-test log, not from this output.
    result = runner.run([SMARTCTL, "-t", kind, device], mutating=True)
    after = self_test_state(runner, device)
    if after.running or _log_changed(before, after):
        return before
    lines = [ln.strip() for ln in (result.stdout + "\n" + result.stderr).splitlines() if ln.strip()]
    said = lines[-1] if lines else ""
    raise SelfTestNotStarted(
        f"{device}: smartctl exited {result.returncode} but the self-test log shows no {kind} test"
        + (f" ({said})" if said else "")
    )


def abort_self_test(runner: Runner, device: str) -> None:
    """Abort a running self-test (``smartctl -X``) and confirm it is no longer running."""
    runner.run([SMARTCTL, "-X", device], mutating=True)
    state = self_test_state(runner, device)
    if state.running:
        raise SelfTestError(f"{device}: the self-test is still running after abort")


def wait_self_test(
    runner: Runner,
    device: str,
    kind: SelfTestKind,
    before: SelfTestState,
    *,
    cancel: threading.Event | None = None,
    timeout: float | None = None,
    poll_interval: float = 10.0,
    on_progress: Callable[[int | None], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SelfTestOutcome:
    """Poll until the self-test started after ``before`` finishes, is cancelled, or times out.

    On cancel or timeout the test is aborted on the drive and the outcome is ``unknown``.
    ``timeout`` defaults to twice the drive's own estimate (ATA polling minutes), or 2 h.
    """
    cancel = cancel or threading.Event()
    start = clock()
    if timeout is None:
        minutes = before.short_minutes if kind == "short" else before.long_minutes
        timeout = 2 * 60.0 * minutes + 60.0 if minutes else 2 * 3600.0
    while True:
        state = self_test_state(runner, device)
        if not state.running:
            if not _log_changed(before, state):
                return SelfTestOutcome(
                    device,
                    kind,
                    "unknown",
                    "the test ended without leaving an entry in the log",
                    clock() - start,
                )
            entry = state.log[0]
            status: Status = "passed" if entry.passed else ("failed" if entry.passed is False else "unknown")
            return SelfTestOutcome(device, kind, status, entry.status, clock() - start, entry)
        if on_progress is not None:
            on_progress(state.remaining_percent)
        if cancel.is_set() or clock() - start > timeout:
            why = "cancelled" if cancel.is_set() else f"timed out after {timeout:.0f} s"
            abort_self_test(runner, device)
            return SelfTestOutcome(
                device, kind, "unknown", f"{why}; the self-test was aborted", clock() - start
            )
        cancel.wait(poll_interval)


def run_self_test(
    runner: Runner,
    device: str,
    kind: SelfTestKind,
    *,
    cancel: threading.Event | None = None,
    timeout: float | None = None,
    poll_interval: float = 10.0,
    on_progress: Callable[[int | None], None] | None = None,
) -> SelfTestOutcome:
    """Start (confirmed), follow and judge a self-test.  A drive that cannot start one -> unknown."""
    start = time.monotonic()
    try:
        before = start_self_test(runner, device, kind)
    except SelfTestNotStarted as exc:
        return SelfTestOutcome(device, kind, "unknown", exc.message, time.monotonic() - start)
    return wait_self_test(
        runner,
        device,
        kind,
        before,
        cancel=cancel,
        timeout=timeout,
        poll_interval=poll_interval,
        on_progress=on_progress,
    )
