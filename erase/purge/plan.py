"""What a purge plan is made of: planned steps, ruled-out alternatives, options, the plan itself.

Plain data, validated where it is read back (:meth:`PurgePlan.from_dict`: a plan is journalled).
:mod:`erase.purge.rules` proposes the steps, :mod:`erase.purge.planner` orders them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from erase.purge.errors import PurgeError

POLICIES = ("nist-clear", "nist-purge")
LEVEL_RANK = {"none": 0, "clear": 1, "purge": 2}
PASSWORD = "@PASSWORD@"  # placeholder in planned argv; the machine supplies the real one when the step runs
#: The temporary ATA user password of SECURITY ERASE UNIT.  Fixed and documented on purpose (as
#: openSeaChest's "SeaChest"): a drive whose erase was cut by a crash or a power loss stays locked
#: with it, and anyone can unlock it (``hdparm --user-master u --security-unlock tabula DEV`` then
#: ``--security-disable tabula``); Tabula's plan does that itself when it finds security enabled.
TEMP_PASSWORD = "tabula"
PSID = "@PSID@"


class PurgeRefused(PurgeError):
    """The plan cannot be carried out safely (e.g. a hidden area that cannot be removed)."""


@dataclass(frozen=True)
class PlannedStep:
    action: str
    label: str
    level: str  # what this step reaches on this media: none (preparation), clear, purge
    estimate_seconds: float
    argv: tuple[str, ...]
    tool: str
    evidence: str  # zeros, zeros-or-ones, ones, changed, native-size, unfrozen, overwrite
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["argv"] = list(self.argv)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PlannedStep:
        return cls(
            action=d["action"],
            label=d["label"],
            level=d["level"],
            estimate_seconds=float(d["estimate_seconds"]),
            argv=tuple(d["argv"]),
            tool=d["tool"],
            evidence=d["evidence"],
            params=dict(d.get("params", {})),
        )


@dataclass(frozen=True)
class Alternative:
    """A step that was considered and not used: impossible (reason) or simply not needed."""

    action: str
    label: str
    level: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PlanOptions:
    allow_usb_ata: bool = False
    unfreeze_suspend: bool = False
    suspend_seconds: int = 5
    psid: str | None = None
    overwrite_passes: int = 1  # passes of the overwrite method (for the estimate)


@dataclass(frozen=True)
class PurgePlan:
    policy: str
    level_requested: str
    level_expected: str
    level_note: str  # why expected < requested ('' when equal)
    steps: tuple[PlannedStep, ...]  # firmware and preparation steps, in order
    overwrite: bool  # the overwrite passes of the job plan follow the steps
    alternatives: tuple[Alternative, ...]
    accessible_bytes: int
    native_bytes: int
    flash: bool
    protocol: str
    overwrite_estimate_seconds: float = 0.0
    capabilities: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # what the technician must know or do (a password set, locking)

    @property
    def estimate_seconds(self) -> float:
        return sum(s.estimate_seconds for s in self.steps) + self.overwrite_estimate_seconds

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "level_requested": self.level_requested,
            "level_expected": self.level_expected,
            "level_note": self.level_note,
            "steps": [s.to_dict() for s in self.steps],
            "overwrite": self.overwrite,
            "alternatives": [a.to_dict() for a in self.alternatives],
            "accessible_bytes": self.accessible_bytes,
            "native_bytes": self.native_bytes,
            "flash": self.flash,
            "protocol": self.protocol,
            "overwrite_estimate_seconds": self.overwrite_estimate_seconds,
            "capabilities": self.capabilities,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PurgePlan:
        return cls(
            policy=d["policy"],
            level_requested=d["level_requested"],
            level_expected=d["level_expected"],
            level_note=d.get("level_note", ""),
            steps=tuple(PlannedStep.from_dict(s) for s in d["steps"]),
            overwrite=bool(d["overwrite"]),
            alternatives=tuple(Alternative(**a) for a in d.get("alternatives", [])),
            accessible_bytes=int(d["accessible_bytes"]),
            native_bytes=int(d["native_bytes"]),
            flash=bool(d["flash"]),
            protocol=d["protocol"],
            overwrite_estimate_seconds=float(d.get("overwrite_estimate_seconds", 0.0)),
            capabilities=dict(d.get("capabilities", {})),
            warnings=tuple(d.get("warnings", ())),
        )
