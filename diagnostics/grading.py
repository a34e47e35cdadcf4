"""Turn diagnostic facts into a verdict (reuse / unknown / repair / recycle) with its reasons.

The rules live in a TOML file; the defaults ship as ``diagnostics/rules.toml`` and document every
key.  Grading is pure: facts in, :class:`Verdict` out.  A fact whose value is ``None`` could not be
read and is listed among the verdict's ``unknowns``; a fact that does not apply (reallocated
sectors on an NVMe drive, battery wear on a desktop) is left out of the facts entirely.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from diagnostics.errors import RulesError

VerdictName = Literal["reuse", "unknown", "repair", "recycle"]
SEVERITY: dict[str, int] = {"reuse": 0, "unknown": 1, "repair": 2, "recycle": 3}

DRIVE_OUTCOMES = ("smart_failed", "smart_unknown", "self_test_failed", "read_test_failed")
MACHINE_OUTCOMES = (
    "drive_recycle",
    "drive_repair",
    "drive_unknown",
    "cpu_failed",
    "ram_failed",
    "battery_failed",
    "portable_without_battery",
)
DRIVE_FACTS = frozenset(
    {
        "reallocated_sectors",
        "reallocation_events",
        "pending_sectors",
        "offline_uncorrectable",
        "reported_uncorrectable",
        "crc_errors",
        "power_on_hours",
        "power_cycles",
        "temperature_c",
        "percentage_used",
        "available_spare",
        "media_errors",
        "error_log_entries",
        "critical_warning",
        "grown_defects",
        "uncorrected_errors",
        "read_mb_per_second",
    }
)
MACHINE_FACTS = frozenset(
    {
        "battery_wear_percent",
        "battery_cycle_count",
        "ram_total_gib",
        "cpu_max_temperature_c",
        "cpu_throttle_events",
    }
)


@dataclass(frozen=True)
class Limit:
    fact: str
    verdict: VerdictName
    reason: str
    max: float | None = None
    min: float | None = None

    def breached(self, value: float) -> bool:
        return (self.max is not None and value > self.max) or (self.min is not None and value < self.min)

    def describe(self, value: float) -> str:
        bound = f"> {_num(self.max)}" if self.max is not None and value > self.max else f"< {_num(self.min)}"
        return f"{self.fact} = {_num(value)} {bound}: {self.reason}"


def _num(v: float | None) -> str:
    if v is None:
        return "?"
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


@dataclass(frozen=True)
class Rules:
    drive: dict[str, VerdictName]
    machine: dict[str, VerdictName]
    drive_limits: tuple[Limit, ...]
    machine_limits: tuple[Limit, ...]
    source: str = "defaults"


@dataclass(frozen=True)
class Verdict:
    """A verdict with everything that led to it."""

    verdict: VerdictName
    reasons: tuple[str, ...] = ()
    unknowns: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reasons": list(self.reasons), "unknowns": list(self.unknowns)}


@dataclass
class _Acc:
    verdict: VerdictName = "reuse"
    reasons: list[str] = field(default_factory=list)
    unknowns: list[str] = field(default_factory=list)

    def add(self, verdict: VerdictName, reason: str) -> None:
        if SEVERITY[verdict] > SEVERITY[self.verdict]:
            self.verdict = verdict
        if verdict != "reuse":
            self.reasons.append(f"{verdict}: {reason}")

    def done(self) -> Verdict:
        return Verdict(self.verdict, tuple(dict.fromkeys(self.reasons)), tuple(dict.fromkeys(self.unknowns)))


# --------------------------------------------------------------------------- loading


def _verdict(value: Any, where: str) -> VerdictName:
    if value not in SEVERITY:
        raise RulesError(f"{where}: verdict must be one of reuse, unknown, repair, recycle; got {value!r}")
    name: VerdictName = value
    return name


def _limits(items: Any, allowed: frozenset[str], where: str) -> tuple[Limit, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        raise RulesError(f"{where} must be an array of tables ([[{where}]])")
    return tuple(_limit(item, allowed, f"{where}[{i}]") for i, item in enumerate(items))


def _limit(item: Any, allowed: frozenset[str], here: str) -> Limit:
    """One ``[[limits]]`` table, checked key by key: a rule file never half-applies."""
    if not isinstance(item, dict):
        raise RulesError(f"{here} must be a table")
    extra = set(item) - {"fact", "max", "min", "verdict", "reason"}
    if extra:
        raise RulesError(f"{here}: unknown keys {sorted(extra)}")
    fact = item.get("fact")
    if fact not in allowed:
        raise RulesError(f"{here}: unknown fact {fact!r}; known: {', '.join(sorted(allowed))}")
    lo, hi = item.get("min"), item.get("max")
    for name, v in (("min", lo), ("max", hi)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
            raise RulesError(f"{here}: {name} must be a number, got {v!r}")
    if lo is None and hi is None:
        raise RulesError(f"{here}: give 'max' or 'min'")
    reason = item.get("reason", "")
    if not isinstance(reason, str):
        raise RulesError(f"{here}: reason must be text")
    return Limit(
        fact=fact,
        verdict=_verdict(item.get("verdict"), here),
        reason=reason or "above the workshop threshold",
        max=None if hi is None else float(hi),
        min=None if lo is None else float(lo),
    )


def _section(doc: Mapping[str, Any], name: str, keys: tuple[str, ...]) -> tuple[dict[str, VerdictName], Any]:
    sec = doc.get(name, {})
    if not isinstance(sec, dict):
        raise RulesError(f"[{name}] must be a table")
    extra = set(sec) - set(keys) - {"limits"}
    if extra:
        raise RulesError(f"[{name}]: unknown keys {sorted(extra)}")
    missing = [k for k in keys if k not in sec]
    if missing:
        raise RulesError(f"[{name}]: missing keys {missing}")
    return {k: _verdict(sec[k], f"[{name}] {k}") for k in keys}, sec.get("limits")


def parse_rules(text: str, source: str = "<string>") -> Rules:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{source}: not valid TOML: {exc}") from exc
    if doc.get("version") != 1:
        raise RulesError(f"{source}: unsupported rules version {doc.get('version')!r} (expected 1)")
    extra = set(doc) - {"version", "drive", "machine"}
    if extra:
        raise RulesError(f"{source}: unknown top-level keys {sorted(extra)}")
    drive, drive_limits = _section(doc, "drive", DRIVE_OUTCOMES)
    machine, machine_limits = _section(doc, "machine", MACHINE_OUTCOMES)
    return Rules(
        drive=drive,
        machine=machine,
        drive_limits=_limits(drive_limits, DRIVE_FACTS, "drive.limits"),
        machine_limits=_limits(machine_limits, MACHINE_FACTS, "machine.limits"),
        source=source,
    )


def default_rules_text() -> str:
    return resources.files("diagnostics").joinpath("rules.toml").read_text(encoding="utf-8")


def load_rules(path: str | Path | None = None) -> Rules:
    """The rules in ``path``, or the shipped defaults."""
    if path is None:
        return parse_rules(default_rules_text(), "diagnostics/rules.toml (defaults)")
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"cannot read rule file {p}: {exc.strerror}") from exc
    return parse_rules(text, str(p))


# --------------------------------------------------------------------------- grading


def _apply_limits(acc: _Acc, limits: tuple[Limit, ...], facts: Mapping[str, float | None]) -> None:
    fired: set[str] = set()
    # Worst limits first, so "reallocated > 50 -> recycle" is reported instead of also "> 5 -> repair".
    for limit in sorted(limits, key=lambda lim: -SEVERITY[lim.verdict]):
        if limit.fact not in facts:
            continue  # not applicable
        value = facts[limit.fact]
        if value is None:
            acc.unknowns.append(limit.fact)
            continue
        if limit.fact in fired:
            continue
        if limit.breached(value):
            acc.add(limit.verdict, limit.describe(value))
            fired.add(limit.fact)


def _grade_smart(acc: _Acc, rules: Rules, status: str, reasons: tuple[str, ...] | list[str]) -> None:
    why = "; ".join(reasons)
    if status == "failed":
        acc.add(rules.drive["smart_failed"], f"SMART health failed ({why})" if why else "SMART health failed")
    elif status == "unknown":
        acc.add(
            rules.drive["smart_unknown"], f"SMART health unknown ({why})" if why else "SMART health unknown"
        )
        acc.unknowns.append("smart_health")
    elif status != "passed":
        raise ValueError(f"smart_status must be passed, failed or unknown, got {status!r}")


def grade_drive(
    rules: Rules,
    *,
    smart_status: str,
    smart_reasons: tuple[str, ...] | list[str] = (),
    facts: Mapping[str, float | None],
    self_test: str | None = None,
    read_test: str | None = None,
) -> Verdict:
    """Grade one drive.  ``smart_status``: passed / failed / unknown; tests: pass / fail / unknown / None."""
    acc = _Acc()
    _grade_smart(acc, rules, smart_status, smart_reasons)
    if self_test == "fail":
        acc.add(rules.drive["self_test_failed"], "SMART self-test failed")
    elif self_test == "unknown":
        acc.unknowns.append("self_test")
    if read_test == "fail":
        acc.add(rules.drive["read_test_failed"], "read errors during the sequential read test")
    elif read_test == "unknown":
        acc.unknowns.append("read_test")
    if smart_status == "unknown" and all(facts.get(k) is None for k in facts if k != "read_mb_per_second"):
        # Nothing was readable: one honest line instead of every attribute.
        acc.unknowns.append("smart_attributes")
        facts = {k: v for k, v in facts.items() if k == "read_mb_per_second"}
    _apply_limits(acc, rules.drive_limits, facts)
    return acc.done()


def grade_machine(
    rules: Rules,
    *,
    facts: Mapping[str, float | None],
    drives: Mapping[str, VerdictName],
    tests: Mapping[str, str],
    portable: bool | None,
    battery_count: int | None,
) -> Verdict:
    """Grade the machine from its facts, its drives' verdicts and its quick tests' statuses."""
    acc = _Acc()
    for dev, v in drives.items():
        if v == "recycle":
            acc.add(rules.machine["drive_recycle"], f"drive {dev} must be recycled: replace it")
        elif v == "repair":
            acc.add(rules.machine["drive_repair"], f"drive {dev} should be replaced")
        elif v == "unknown":
            acc.add(rules.machine["drive_unknown"], f"health of drive {dev} unknown")
            acc.unknowns.append(f"drive {dev}")
    for name in ("cpu", "ram", "battery"):
        status = tests.get(name)
        if status == "fail":
            acc.add(rules.machine[f"{name}_failed"], f"{name} test failed")
        elif status == "unknown" and not (name == "battery" and battery_count == 0):
            acc.unknowns.append(f"{name}_test")
    if battery_count == 0:
        if portable is True:
            acc.add(rules.machine["portable_without_battery"], "portable machine without a battery")
        elif portable is None:
            acc.unknowns.append("battery (none found, chassis type unknown)")
    if portable is None and battery_count is None:
        acc.unknowns.append("chassis_type")
    _apply_limits(acc, rules.machine_limits, facts)
    return acc.done()
