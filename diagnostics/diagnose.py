"""One diagnosis of a machine: inventory, SMART per drive, quick tests, verdicts.

:func:`diagnose` is what ``station diagnose`` runs; the TUI can call it too (``on_event`` reports
each step, ``cancel`` stops between and inside steps).  Every external command goes through the
runner; the quick tests read sysfs, memory and the drives directly (read-only).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from diagnostics.grading import Rules, Verdict, VerdictName, grade_machine, load_rules
from diagnostics.health import DriveHealth, assess_drive
from diagnostics.hwtests import TestResult, battery_test, cpu_test, drive_read_test, ram_test
from diagnostics.inventory import Inventory, collect_inventory, list_storage
from diagnostics.smart import SelfTestKind, SelfTestOutcome, read_smart, run_self_test
from host.refs import check_asset, check_lot
from host.runner import Runner

Mode = Literal["quick", "full"]
#: 2 added ``lot`` (the donation lot's reference, or null) and ``asset_number`` ('' when not given).
REPORT_SCHEMA = 2


@dataclass(frozen=True)
class Bounds:
    """How long / how much each quick test may take."""

    cpu_seconds: float
    ram_bytes: int
    ram_seconds: float
    read_bytes: int
    read_seconds: float
    battery_seconds: float
    self_test: SelfTestKind | None

    @classmethod
    def for_mode(cls, mode: Mode) -> Bounds:
        if mode == "full":
            return cls(60.0, 1 << 30, 120.0, 4 << 30, 60.0, 10.0, "short")
        return cls(5.0, 64 << 20, 10.0, 256 << 20, 5.0, 2.0, None)


@dataclass
class DiagnosticReport:
    mode: Mode
    started_at: str
    rules_source: str
    finished_at: str | None = None
    inventory: Inventory | None = None
    drives: list[DriveHealth] = field(default_factory=list)
    tests: list[TestResult] = field(default_factory=list)
    machine: Verdict | None = None
    cancelled: bool = False
    lot: str | None = None  # the donation lot of the machine diagnosed (host/refs.py)
    asset_number: str = ""  # the machine's property number, as certificates name it

    def __post_init__(self) -> None:
        if self.lot is not None:
            check_lot(self.lot)
        check_asset(self.asset_number)

    @property
    def overall(self) -> VerdictName:
        """The machine verdict, or the worst drive verdict in drives-only mode."""
        if self.machine is not None:
            return self.machine.verdict
        order = ("reuse", "unknown", "repair", "recycle")
        worst: VerdictName = "reuse"
        for d in self.drives:
            if order.index(d.verdict.verdict) > order.index(worst):
                worst = d.verdict.verdict
        return worst

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": REPORT_SCHEMA,
            "lot": self.lot,
            "asset_number": self.asset_number,
            "mode": self.mode,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "rules": self.rules_source,
            "cancelled": self.cancelled,
            "overall": self.overall,
            "machine": self.machine.to_dict() if self.machine else None,
            "inventory": self.inventory.to_dict() if self.inventory else None,
            "drives": [d.to_dict() for d in self.drives],
            "smart": {d.device: d.smart.to_dict() for d in self.drives},
            "tests": [t.to_dict() for t in self.tests],
        }


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def machine_facts(inv: Inventory, tests: list[TestResult]) -> dict[str, float | None]:
    facts: dict[str, float | None] = {}
    total = inv.memory.total_bytes
    facts["ram_total_gib"] = round(total / (1 << 30), 2) if total is not None else None
    if inv.batteries:
        facts["battery_wear_percent"] = _worst([b.wear_percent for b in inv.batteries])
        facts["battery_cycle_count"] = _worst([b.cycle_count for b in inv.batteries])
    elif inv.system.portable is None:
        # No battery and no chassis type: a battery may be missing, we cannot say.
        facts["battery_wear_percent"] = None
    for t in tests:
        if t.name == "cpu":
            facts["cpu_max_temperature_c"] = _number(t.numbers.get("max_temperature_c"))
            facts["cpu_throttle_events"] = _number(t.numbers.get("throttle_events"))
    return facts


def _worst(values: list[float | None] | list[int | None]) -> float | None:
    """The largest value; None as soon as one is unknown (a worn battery may hide behind it)."""
    known = [v for v in values if v is not None]
    return None if len(known) < len(values) else max(known)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


@dataclass
class _Run:
    """One diagnosis: what it may use, and how it reports each step."""

    runner: Runner
    rules: Rules
    bounds: Bounds
    cancel: threading.Event
    sys_root: Path
    on_event: Callable[[str, dict[str, Any]], None] | None

    def event(self, kind: str, **data: Any) -> None:
        if self.on_event is not None:
            self.on_event(kind, data)

    def drive(self, path: str, read_test: bool) -> tuple[DriveHealth, TestResult | None]:
        """SMART, the self-test when asked for (and possible), the read test, and the drive's verdict."""
        self.event("step", name="smart", device=path)
        smart = read_smart(self.runner, path)
        st: SelfTestOutcome | None = None
        if self.bounds.self_test is not None and smart.status != "unknown":
            self.event("step", name="self-test", device=path, test=self.bounds.self_test)

            def self_test_progress(remaining: int | None, device: str = path) -> None:
                self.event("progress", name="self-test", device=device, remaining=remaining)

            st = run_self_test(
                self.runner, path, self.bounds.self_test, cancel=self.cancel, on_progress=self_test_progress
            )
        rt: TestResult | None = None
        if read_test and not self.cancel.is_set():
            self.event("step", name="read", device=path)
            rt = drive_read_test(
                path, max_bytes=self.bounds.read_bytes, seconds=self.bounds.read_seconds, cancel=self.cancel
            )
        return assess_drive(smart, self.rules, self_test=st, read_test=rt), rt

    def machine_tests(self) -> Iterator[TestResult]:
        """CPU, RAM and battery, each skipped once the diagnosis is cancelled."""
        b = self.bounds
        tests: tuple[tuple[str, Callable[[], TestResult]], ...] = (
            ("cpu", lambda: cpu_test(seconds=b.cpu_seconds, cancel=self.cancel, sys_root=self.sys_root)),
            ("ram", lambda: ram_test(b.ram_bytes, seconds=b.ram_seconds, cancel=self.cancel)),
            (
                "battery",
                lambda: battery_test(seconds=b.battery_seconds, sys_root=self.sys_root, cancel=self.cancel),
            ),
        )
        for name, test in tests:
            if self.cancel.is_set():
                return
            self.event("step", name=name)
            yield test()

    def grade(self, report: DiagnosticReport, inv: Inventory) -> Verdict:
        statuses = {t.name: t.status for t in report.tests if t.name in ("cpu", "ram", "battery")}
        for name in ("cpu", "ram", "battery"):
            statuses.setdefault(name, "unknown")  # not run (cancelled): not a pass
        return grade_machine(
            self.rules,
            facts=machine_facts(inv, report.tests),
            drives={d.device: d.verdict.verdict for d in report.drives},
            tests=statuses,
            portable=inv.system.portable,
            battery_count=len(inv.batteries),
        )


def diagnose(
    runner: Runner,
    *,
    mode: Mode = "quick",
    drives_only: bool = False,
    devices: list[str] | None = None,
    rules: Rules | None = None,
    bounds: Bounds | None = None,
    read_test: bool = True,
    sys_root: Path = Path("/sys"),
    proc_root: Path = Path("/proc"),
    cancel: threading.Event | None = None,
    on_event: Callable[[str, dict[str, Any]], None] | None = None,
    lot: str | None = None,
    asset_number: str = "",
) -> DiagnosticReport:
    """Run the whole diagnosis of the machine ``asset_number`` of ``lot``.  Nothing here writes to a drive."""
    rules = rules or load_rules()
    run = _Run(
        runner, rules, bounds or Bounds.for_mode(mode), cancel or threading.Event(), sys_root, on_event
    )
    report = DiagnosticReport(
        mode=mode, started_at=_now(), rules_source=rules.source, lot=lot, asset_number=asset_number
    )
    if not drives_only:
        run.event("step", name="inventory")
        report.inventory = collect_inventory(runner, sys_root=sys_root, proc_root=proc_root)
        storage = report.inventory.storage
    else:
        storage, _ = list_storage(runner, sys_root)
    for path in list(devices) if devices else [s.path for s in storage]:
        if run.cancel.is_set():
            break
        health, rt = run.drive(path, read_test)
        if rt is not None:
            report.tests.append(rt)
        report.drives.append(health)
        run.event("drive", device=path, status=health.status, verdict=health.verdict.verdict)
    if not drives_only and report.inventory is not None:
        report.tests.extend(run.machine_tests())
        report.machine = run.grade(report, report.inventory)
    report.cancelled = run.cancel.is_set()
    report.finished_at = _now()
    return report
