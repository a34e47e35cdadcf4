"""The job plan and the job record: what was asked, and what provably happened.

A :class:`JobRecord` is a pure function of a finished journal (see :mod:`erase.journal`).  It
validates on construction: a record whose outcome claims more than its passes and verifications
show cannot be built.  Certificates (``certs``) sign exactly this record's ``to_dict()``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from erase.errors import InvalidModel
from erase.model import Pattern, Range
from host.identity import DriveInfo

SCHEMA = "tabula.job/1"

VerifyPolicy = Literal["none", "last", "all"]
VerifyMode = Literal["full", "sample"]
ErrorPolicy = Literal["continue", "abort"]


class Outcome(StrEnum):
    VERIFIED = "verified"  # every pass fully written, every verification asked for passed
    UNVERIFIED = "unverified"  # every pass fully written, no verification was asked (--verify none)
    FAILED = "failed"  # unwritable ranges, verification mismatch, drive gone, or any other error
    INTERRUPTED = "interrupted"  # the worker stopped (killed, cancelled) before the end
    RUNNING = "running"  # live state only; never signed

    @property
    def success(self) -> bool:
        return self in (Outcome.VERIFIED, Outcome.UNVERIFIED)


@dataclass(frozen=True)
class JobPlan:
    """Everything decided before a single byte is written."""

    job_id: str
    created_at: str  # UTC ISO 8601
    drive: DriveInfo
    method: str
    passes: tuple[Pattern, ...]
    seed: str  # hex; every prng pass key derives from it
    verify: VerifyPolicy
    verify_mode: VerifyMode
    block_size: int
    rounds: int = 1
    final_blank: bool = False
    custom_hex: str | None = None
    on_error: ErrorPolicy = "continue"
    tool: dict[str, str] = field(default_factory=dict)  # {"name": "tabula", "version": ...}
    host: dict[str, str] = field(default_factory=dict)  # {"hostname":..., "kernel":...}
    operator: dict[str, str] = field(default_factory=dict)  # free-form, filled from settings
    # erase.purge.planner.PurgePlan.to_dict(): firmware/preparation steps run before the passes,
    # the NIST level requested and expected.  None: a plain overwrite job.
    purge: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.passes and not self.purge_steps:
            raise InvalidModel("a plan needs at least one pass or one firmware step")
        if self.purge is not None:
            if self.purge.get("level_requested") not in ("clear", "purge"):
                raise InvalidModel("a purge plan states the level requested (clear or purge)")
            if bool(self.purge.get("overwrite")) != bool(self.passes):
                raise InvalidModel("a purge plan has overwrite passes exactly when it says it overwrites")
        if self.verify not in ("none", "last", "all"):
            raise InvalidModel(f"unknown verify policy {self.verify!r}")
        if self.verify_mode not in ("full", "sample"):
            raise InvalidModel(f"unknown verify mode {self.verify_mode!r}")
        if self.on_error not in ("continue", "abort"):
            raise InvalidModel(f"unknown error policy {self.on_error!r}")
        bs = self.block_size
        if bs < 4096 or bs % 4096 or bs % self.drive.logical_sector_size:
            raise InvalidModel(f"block size {bs} must be a multiple of 4096 and of the sector size")
        if self.rounds < 1:
            raise InvalidModel("rounds must be at least 1")
        object.__setattr__(self, "passes", tuple(self.passes))

    @property
    def purge_steps(self) -> list[dict[str, Any]]:
        return list(self.purge.get("steps", [])) if self.purge else []

    def verified_passes(self) -> tuple[int, ...]:
        """Indexes of the passes that must be verified, by policy."""
        if self.verify == "none" or not self.passes:
            return ()
        if self.verify == "last":
            return (len(self.passes) - 1,)
        return tuple(range(len(self.passes)))

    def to_dict(self) -> dict[str, Any]:
        d = self._to_dict()
        if self.purge is not None:
            d["purge"] = self.purge
        return d

    def _to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "created_at": self.created_at,
            "drive": self.drive.to_dict(),
            "method": self.method,
            "rounds": self.rounds,
            "final_blank": self.final_blank,
            "custom_hex": self.custom_hex,
            "passes": [p.to_dict() for p in self.passes],
            "seed": self.seed,
            "verify": self.verify,
            "verify_mode": self.verify_mode,
            "block_size": self.block_size,
            "on_error": self.on_error,
            "tool": dict(self.tool),
            "host": dict(self.host),
            "operator": dict(self.operator),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobPlan:
        return cls(
            job_id=d["job_id"],
            created_at=d["created_at"],
            drive=DriveInfo.from_dict(d["drive"]),
            method=d["method"],
            rounds=int(d.get("rounds", 1)),
            final_blank=bool(d.get("final_blank", False)),
            custom_hex=d.get("custom_hex"),
            passes=tuple(Pattern.from_dict(p) for p in d["passes"]),
            seed=d["seed"],
            verify=d["verify"],
            verify_mode=d["verify_mode"],
            block_size=int(d["block_size"]),
            on_error=d.get("on_error", "continue"),
            tool=dict(d.get("tool", {})),
            host=dict(d.get("host", {})),
            operator=dict(d.get("operator", {})),
            purge=d.get("purge"),
        )


LEVEL_RANK = {"none": 0, "clear": 1, "purge": 2}


@dataclass(frozen=True)
class FirmwareStepRecord:
    """What one firmware or preparation step did, with its evidence (see erase.purge.steps).

    A level is reached only with evidence: the command completed, the drive's status confirms it
    (``status_ok``) and, for a sanitizing step, the data read back passed (``data_check``).
    """

    index: int
    action: str
    label: str
    level_planned: str  # none (preparation: HPA removal, unfreeze), clear, purge
    level_achieved: str
    started_at: str
    finished_at: str | None
    completed: bool
    status_ok: bool
    status: str  # what the drive reported (security state, SSTAT, sense, max address)
    data_check: dict[str, Any] | None
    commands: tuple[dict[str, Any], ...] = ()
    tool: str = ""
    note: str = ""  # why the step did not reach its level

    def __post_init__(self) -> None:
        object.__setattr__(self, "commands", tuple(self.commands))
        for name in ("level_planned", "level_achieved"):
            if getattr(self, name) not in LEVEL_RANK:
                raise InvalidModel(f"step {self.index + 1}: unknown level {getattr(self, name)!r}")
        if LEVEL_RANK[self.level_achieved] > LEVEL_RANK[self.level_planned]:
            raise InvalidModel(f"step {self.index + 1}: achieved level exceeds the planned level")
        if self.level_achieved != "none" and not self.ok:
            raise InvalidModel(
                f"step {self.index + 1} ({self.label}): a level without evidence "
                "(completed, confirmed by the drive, data read back) cannot be claimed"
            )
        if not self.ok and not self.note:
            raise InvalidModel(f"step {self.index + 1}: a failed step says why")

    @property
    def data_passed(self) -> bool:
        return bool(self.data_check is not None and self.data_check.get("passed") is True)

    @property
    def ok(self) -> bool:
        if not (self.completed and self.status_ok and self.finished_at is not None):
            return False
        if self.level_planned == "none":
            return True
        return self.data_passed

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "action": self.action,
            "label": self.label,
            "level_planned": self.level_planned,
            "level_achieved": self.level_achieved,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "completed": self.completed,
            "status_ok": self.status_ok,
            "status": self.status,
            "data_check": self.data_check,
            "commands": [dict(c) for c in self.commands],
            "tool": self.tool,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FirmwareStepRecord:
        return cls(
            index=int(d["index"]),
            action=d["action"],
            label=d["label"],
            level_planned=d["level_planned"],
            level_achieved=d["level_achieved"],
            started_at=d["started_at"],
            finished_at=d.get("finished_at"),
            completed=bool(d["completed"]),
            status_ok=bool(d["status_ok"]),
            status=d.get("status", ""),
            data_check=d.get("data_check"),
            commands=tuple(d.get("commands", [])),
            tool=d.get("tool", ""),
            note=d.get("note", ""),
        )


@dataclass(frozen=True)
class PassRecord:
    index: int
    pattern: Pattern
    bytes_total: int
    bytes_written: int  # bytes of [0, total) provably written (union of durable segments)
    started_at: str
    finished_at: str | None
    completed: bool
    bad_ranges: tuple[Range, ...] = ()
    resumed: int = 0  # how many times this pass was resumed after an interruption

    def __post_init__(self) -> None:
        if not 0 <= self.bytes_written <= self.bytes_total:
            raise InvalidModel(f"pass {self.index}: bytes_written out of range")
        if self.completed and self.bytes_written != self.bytes_total:
            raise InvalidModel(
                f"pass {self.index}: cannot be complete with {self.bytes_written}/{self.bytes_total} bytes"
            )
        if self.completed and self.finished_at is None:
            raise InvalidModel(f"pass {self.index}: a completed pass has an end time")

    @property
    def clean(self) -> bool:
        return self.completed and not self.bad_ranges

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "pattern": self.pattern.to_dict(),
            "bytes_total": self.bytes_total,
            "bytes_written": self.bytes_written,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "completed": self.completed,
            "bad_ranges": [r.to_dict() for r in self.bad_ranges],
            "resumed": self.resumed,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PassRecord:
        return cls(
            index=int(d["index"]),
            pattern=Pattern.from_dict(d["pattern"]),
            bytes_total=int(d["bytes_total"]),
            bytes_written=int(d["bytes_written"]),
            started_at=d["started_at"],
            finished_at=d.get("finished_at"),
            completed=bool(d["completed"]),
            bad_ranges=tuple(Range.from_dict(r) for r in d.get("bad_ranges", [])),
            resumed=int(d.get("resumed", 0)),
        )


@dataclass(frozen=True)
class VerificationRecord:
    pass_index: int
    mode: VerifyMode
    bytes_total: int  # device size
    bytes_checked: int
    passed: bool
    started_at: str
    finished_at: str
    seed: str | None = None  # sampling seed (sample mode): re-reading the same sample is possible
    subsections: int | None = None
    mismatch_count: int = 0  # sectors that did not match
    mismatches: tuple[Range, ...] = ()  # first ranges (capped), exact offsets
    read_errors: tuple[Range, ...] = ()

    def __post_init__(self) -> None:
        if self.mode not in ("full", "sample"):
            raise InvalidModel(f"unknown verification mode {self.mode!r}")
        if not 0 <= self.bytes_checked <= self.bytes_total:
            raise InvalidModel("bytes_checked out of range")
        if self.passed and (self.mismatch_count or self.mismatches or self.read_errors):
            raise InvalidModel("a verification with mismatches or read errors cannot pass")
        if self.passed and self.mode == "full" and self.bytes_checked != self.bytes_total:
            raise InvalidModel("a full verification that did not read every byte cannot pass")
        if self.mode == "sample" and self.seed is None:
            raise InvalidModel("a sampled verification records its seed")

    @property
    def coverage(self) -> float:
        return self.bytes_checked / self.bytes_total if self.bytes_total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "pass_index": self.pass_index,
            "mode": self.mode,
            "bytes_total": self.bytes_total,
            "bytes_checked": self.bytes_checked,
            "coverage": round(self.coverage, 6),
            "passed": self.passed,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "seed": self.seed,
            "subsections": self.subsections,
            "mismatch_count": self.mismatch_count,
            "mismatches": [r.to_dict() for r in self.mismatches],
            "read_errors": [r.to_dict() for r in self.read_errors],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VerificationRecord:
        return cls(
            pass_index=int(d["pass_index"]),
            mode=d["mode"],
            bytes_total=int(d["bytes_total"]),
            bytes_checked=int(d["bytes_checked"]),
            passed=bool(d["passed"]),
            started_at=d["started_at"],
            finished_at=d["finished_at"],
            seed=d.get("seed"),
            subsections=d.get("subsections"),
            mismatch_count=int(d.get("mismatch_count", 0)),
            mismatches=tuple(Range.from_dict(r) for r in d.get("mismatches", [])),
            read_errors=tuple(Range.from_dict(r) for r in d.get("read_errors", [])),
        )


@dataclass(frozen=True)
class JobRecord:
    """What provably happened to one drive.  Built from a journal; validated on construction."""

    plan: JobPlan
    passes: tuple[PassRecord, ...]
    verifications: tuple[VerificationRecord, ...]
    started_at: str
    finished_at: str | None
    outcome: Outcome
    reasons: tuple[str, ...] = ()  # why the outcome is what it is (failures, interruptions)
    schema: str = SCHEMA
    firmware_steps: tuple[FirmwareStepRecord, ...] = ()

    def __post_init__(self) -> None:
        if self.schema != SCHEMA:
            raise InvalidModel(f"unknown record schema {self.schema!r}")
        object.__setattr__(self, "firmware_steps", tuple(self.firmware_steps))
        if self.firmware_steps and self.plan.purge is None:
            raise InvalidModel("firmware steps were recorded for a plan without any")
        object.__setattr__(self, "passes", tuple(self.passes))
        object.__setattr__(self, "verifications", tuple(self.verifications))
        object.__setattr__(self, "reasons", tuple(self.reasons))
        if self.outcome is Outcome.RUNNING:
            raise InvalidModel("a running job has no record yet")
        if self.outcome.success:
            problems = self.success_problems()
            if problems:
                raise InvalidModel(
                    f"outcome '{self.outcome}' is not supported by the facts: " + "; ".join(problems)
                )
            if self.finished_at is None:
                raise InvalidModel("a successful job has an end time")
        elif not self.reasons:
            raise InvalidModel(f"a job that ended '{self.outcome}' must say why")

    def success_problems(self) -> list[str]:
        """Everything that stands between these facts and a successful erasure (empty = success)."""
        return success_problems(self.plan, self.passes, self.verifications, self.outcome, self.firmware_steps)

    @property
    def nist_level(self) -> str | None:
        """NIST SP 800-88 level achieved: Clear for a verified overwrite; a firmware step's level only
        with its evidence; never more than requested; None when the job did not succeed."""
        if self.plan.purge is None:
            return "clear" if self.outcome is Outcome.VERIFIED else None
        if not self.outcome.success:
            return None
        levels = [s.level_achieved for s in self.firmware_steps]
        if self.plan.passes and self.outcome is Outcome.VERIFIED:
            levels.append("clear")
        best = max(levels, key=lambda lv: LEVEL_RANK[lv], default="none")
        requested = str(self.plan.purge["level_requested"])
        if LEVEL_RANK[best] > LEVEL_RANK[requested]:
            best = requested
        return None if best == "none" else best

    @property
    def nist_level_requested(self) -> str:
        return str(self.plan.purge["level_requested"]) if self.plan.purge else "clear"

    @property
    def level_note(self) -> str:
        """Why the level achieved is lower than requested ('' when it is not)."""
        achieved = self.nist_level or "none"
        if LEVEL_RANK[achieved] >= LEVEL_RANK[self.nist_level_requested]:
            return ""
        if self.outcome.success and self.plan.purge and self.plan.purge.get("level_note"):
            return str(self.plan.purge["level_note"])
        if not self.outcome.success:
            return "not sanitized: " + "; ".join(self.reasons)
        return "the overwrite was not verified"

    @property
    def bad_ranges(self) -> tuple[Range, ...]:
        out: list[Range] = []
        for p in self.passes:
            out.extend(p.bad_ranges)
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        d = {
            "schema": self.schema,
            "job_id": self.plan.job_id,
            "outcome": str(self.outcome),
            "nist_level": self.nist_level,
            "reasons": list(self.reasons),
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "plan": self.plan.to_dict(),
            "passes": [p.to_dict() for p in self.passes],
            "verifications": [v.to_dict() for v in self.verifications],
        }
        if self.plan.purge is not None:
            d["nist_level_requested"] = self.nist_level_requested
            d["level_note"] = self.level_note
            d["firmware_steps"] = [s.to_dict() for s in self.firmware_steps]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobRecord:
        return cls(
            schema=d.get("schema", ""),
            plan=JobPlan.from_dict(d["plan"]),
            passes=tuple(PassRecord.from_dict(p) for p in d["passes"]),
            verifications=tuple(VerificationRecord.from_dict(v) for v in d["verifications"]),
            started_at=d["started_at"],
            finished_at=d.get("finished_at"),
            outcome=Outcome(d["outcome"]),
            reasons=tuple(d.get("reasons", [])),
            firmware_steps=tuple(FirmwareStepRecord.from_dict(s) for s in d.get("firmware_steps", [])),
        )


def success_problems(
    plan: JobPlan,
    passes: Sequence[PassRecord],
    verifications: Sequence[VerificationRecord],
    outcome: Outcome,
    firmware_steps: Sequence[FirmwareStepRecord] = (),
) -> list[str]:
    """Everything that stands between these facts and ``outcome`` as a success (empty = supported)."""
    return [
        *_step_problems(plan, firmware_steps),
        *_pass_problems(plan, passes),
        *_verification_problems(plan, verifications, outcome),
    ]


def _step_problems(plan: JobPlan, firmware_steps: Sequence[FirmwareStepRecord]) -> Iterator[str]:
    """Every planned firmware step ran, brought its evidence and reached its planned level."""
    by_step = {s.index: s for s in firmware_steps}
    for i, planned in enumerate(plan.purge_steps):
        rec = by_step.get(i)
        if rec is None:
            yield f"step {i + 1} ({planned.get('label', planned.get('action'))}) did not run"
        elif not rec.ok:
            yield f"step {i + 1} ({rec.label}) has no evidence of success: {rec.note}"
        elif rec.level_achieved != rec.level_planned:
            yield f"step {i + 1} ({rec.label}) reached {rec.level_achieved}, not {rec.level_planned}"


def _pass_problems(plan: JobPlan, passes: Sequence[PassRecord]) -> Iterator[str]:
    """Every planned pass covered every byte of the drive, with no unwritable range."""
    if len(passes) != len(plan.passes):
        yield f"{len(passes)} of {len(plan.passes)} passes recorded"
    for p in passes:
        if not p.completed:
            yield f"pass {p.index + 1} incomplete ({p.bytes_written}/{p.bytes_total} bytes)"
        if p.bad_ranges:
            yield f"pass {p.index + 1}: {len(p.bad_ranges)} unwritable range(s)"
        if p.bytes_total != plan.drive.size_bytes:
            yield f"pass {p.index + 1} covered {p.bytes_total} of {plan.drive.size_bytes} bytes"


def _verification_problems(
    plan: JobPlan, verifications: Sequence[VerificationRecord], outcome: Outcome
) -> Iterator[str]:
    """Every verification asked for passed, in the mode asked; the outcome says what was asked."""
    wanted = plan.verified_passes()
    if outcome is Outcome.UNVERIFIED and wanted:
        yield "verification was asked; an unverified outcome is not allowed"
    if outcome is Outcome.VERIFIED and not wanted and not plan.purge_steps:
        yield "no verification was asked; the outcome cannot be 'verified'"
    by_pass = {v.pass_index: v for v in verifications}
    for i in wanted:
        v = by_pass.get(i)
        if v is None:
            yield f"pass {i + 1} was not verified"
        elif not v.passed:
            yield f"verification of pass {i + 1} failed ({v.mismatch_count} sector(s) differ)"
        elif v.mode != plan.verify_mode:
            yield f"pass {i + 1} verified in {v.mode} mode, {plan.verify_mode} was asked"
