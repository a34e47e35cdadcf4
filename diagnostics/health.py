"""A drive's health summary for certificates and the TUI: :func:`drive_health` -> :class:`DriveHealth`.

``DriveHealth.to_dict()`` is the compact, stable dict that certificates embed (``schema`` 1):
SMART status (passed / failed / unknown) and why, the key attributes that apply to the drive's
protocol, the reuse / repair / recycle verdict with its reasons, and what could not be checked.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from diagnostics.grading import Rules, Verdict, grade_drive, load_rules
from diagnostics.hwtests import TestResult
from diagnostics.smart import SelfTestOutcome, SmartReport, read_smart
from host.runner import Runner

HEALTH_SCHEMA = 1

# Which attributes each protocol defines.  A fact outside its protocol is "not applicable".
_ATA_FACTS = (
    "reallocated_sectors",
    "reallocation_events",
    "pending_sectors",
    "offline_uncorrectable",
    "reported_uncorrectable",
    "crc_errors",
    "power_on_hours",
    "power_cycles",
    "temperature_c",
    "error_log_entries",
)
_NVME_FACTS = (
    "power_on_hours",
    "power_cycles",
    "temperature_c",
    "percentage_used",
    "available_spare",
    "media_errors",
    "error_log_entries",
    "critical_warning",
)
_SCSI_FACTS = ("grown_defects", "uncorrected_errors", "power_on_hours", "power_cycles", "temperature_c")
_ALL_FACTS = tuple(dict.fromkeys(_ATA_FACTS + _NVME_FACTS + _SCSI_FACTS + ("percentage_used",)))


def drive_facts(report: SmartReport, read_test: TestResult | None = None) -> dict[str, float | None]:
    """The facts that apply to this drive (None = applies but unreadable)."""
    attrs = report.attributes.to_dict()
    solid_state = report.rotation_rate == 0
    if report.protocol == "ATA":
        names: tuple[str, ...] = _ATA_FACTS + (("percentage_used",) if solid_state else ())
    elif report.protocol == "NVMe":
        names = _NVME_FACTS
    elif report.protocol == "SCSI":
        names = _SCSI_FACTS + (("percentage_used",) if solid_state else ())
    else:
        names = _ALL_FACTS
    facts: dict[str, float | None] = {n: attrs.get(n) for n in names}
    # A value the drive reports although its protocol usually does not (ATA SSD wear on a drive
    # whose rotation rate is unknown) still counts.
    for n, v in attrs.items():
        if v is not None and n in _ALL_FACTS:
            facts[n] = v
    if read_test is not None:
        rate = read_test.numbers.get("mb_per_second")
        facts["read_mb_per_second"] = float(rate) if isinstance(rate, int | float) else None
    return facts


@dataclass(frozen=True)
class DriveHealth:
    """SMART judgement + verdict for one drive."""

    smart: SmartReport
    verdict: Verdict
    facts: dict[str, float | None]
    self_test: SelfTestOutcome | None = None
    read_test: TestResult | None = None
    checked_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))

    @property
    def device(self) -> str:
        return self.smart.device

    @property
    def status(self) -> str:
        return self.smart.status

    def to_dict(self) -> dict[str, Any]:
        """The compact summary certificates embed."""
        s = self.smart
        return {
            "schema": HEALTH_SCHEMA,
            "device": s.device,
            "model": s.model,
            "serial": s.serial,
            "firmware": s.firmware,
            "protocol": s.protocol,
            "capacity_bytes": s.capacity_bytes,
            "status": s.status,
            "status_reasons": list(s.reasons),
            "attributes": dict(self.facts),
            "self_test": self.self_test.to_dict() if self.self_test else None,
            "read_test": self.read_test.to_dict() if self.read_test else None,
            "verdict": self.verdict.verdict,
            "verdict_reasons": list(self.verdict.reasons),
            "unknowns": list(self.verdict.unknowns),
            "checked_at": self.checked_at,
            "tool": "smartctl --json",
        }


def assess_drive(
    report: SmartReport,
    rules: Rules,
    *,
    self_test: SelfTestOutcome | None = None,
    read_test: TestResult | None = None,
) -> DriveHealth:
    facts = drive_facts(report, read_test)
    verdict = grade_drive(
        rules,
        smart_status=report.status,
        smart_reasons=report.reasons,
        facts=facts,
        self_test={"passed": "pass", "failed": "fail", "unknown": "unknown"}[self_test.status]
        if self_test
        else None,
        read_test=read_test.status if read_test else None,
    )
    return DriveHealth(smart=report, verdict=verdict, facts=facts, self_test=self_test, read_test=read_test)


def drive_health(
    device_path: str,
    runner: Runner,
    *,
    rules: Rules | None = None,
    self_test: SelfTestOutcome | None = None,
    read_test: TestResult | None = None,
) -> DriveHealth:
    """Read SMART for one drive through ``runner`` and grade it (default rules unless given)."""
    report = read_smart(runner, device_path)
    return assess_drive(report, rules or load_rules(), self_test=self_test, read_test=read_test)
