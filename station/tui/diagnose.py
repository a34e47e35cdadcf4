"""A diagnostic report for the technician: its words, its rendering, and saving it.

Plain functions (no Textual): :mod:`station.tui.screens.diagnostics` shows them, and the tests
check them directly.  What was not checked is shown as *unknown*, never as passed.  A report is
saved as JSON to ``$TABULA_HOME/reports/<timestamp>.json`` and queued for the hub with the
certificates.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rich.text import Text

from diagnostics.diagnose import DiagnosticReport
from diagnostics.health import DriveHealth
from diagnostics.hwtests import TestResult
from diagnostics.inventory import Inventory
from host.fsio import atomic_write
from station.i18n import C_, N_, _
from station.sync.outbox import enqueue_report
from station.tui.model import human_rate, human_size
from station.tui.text import append_fields, heading

REPORTS = "reports"


# --------------------------------------------------------------------------------------------------
# Words (plain functions: the tests and the screen share them)


def verdict_label(verdict: str) -> str:
    """reuse / repair / recycle / unknown in the technician's language (réemploi, réparation, ...)."""
    labels: dict[str, Callable[[], str]] = {
        "reuse": lambda: C_("verdict", "reuse"),
        "repair": lambda: C_("verdict", "repair"),
        "recycle": lambda: C_("verdict", "recycle"),
        "unknown": lambda: C_("verdict", "unknown"),
    }
    return labels[verdict]() if verdict in labels else verdict


VERDICT_STYLES = {"reuse": "bold green", "repair": "bold yellow", "recycle": "bold red", "unknown": "bold"}


def status_label(status: str) -> str:
    """A test's or SMART's outcome: passed / FAILED / unknown (never "passed" for what was not checked)."""
    if status in ("pass", "passed"):
        return _("passed")
    if status in ("fail", "failed"):
        return _("FAILED")
    return C_("verdict", "unknown")


STATUS_STYLES = {"pass": "green", "passed": "green", "fail": "bold red", "failed": "bold red"}

STEP_LABELS = {
    "inventory": N_("Reading the machine's inventory"),
    "smart": N_("Reading SMART of {device}"),
    "self-test": N_("SMART self-test of {device}"),
    "read": N_("Read test of {device}"),
    "cpu": N_("CPU test"),
    "ram": N_("Memory (RAM) test"),
    "battery": N_("Battery test"),
}

TEST_LABELS = {"cpu": N_("CPU"), "ram": N_("Memory"), "battery": N_("Battery")}

#: The SMART facts worth a technician's glance, in this order.
FACT_LABELS = (
    ("reallocated_sectors", N_("reallocated")),
    ("pending_sectors", N_("pending")),
    ("offline_uncorrectable", N_("uncorrectable")),
    ("media_errors", N_("media errors")),
    ("critical_warning", N_("critical warning")),
    ("grown_defects", N_("grown defects")),
    ("uncorrected_errors", N_("uncorrected")),
    ("percentage_used", N_("wear %")),
    ("power_on_hours", N_("hours")),
    ("temperature_c", N_("°C")),
    ("read_mb_per_second", N_("read MB/s")),
)


def event_line(kind: str, data: Mapping[str, Any]) -> str | None:
    """One progress line for an ``on_event`` callback of :func:`diagnose` (None: not worth a line)."""
    if kind == "step":
        label = STEP_LABELS.get(str(data.get("name")))
        if label is None:
            return None
        return _(label).format(device=data.get("device", "")) + "…"
    if kind == "drive":
        return _("{device}: SMART {status}, {verdict}").format(
            device=data.get("device", "?"),
            status=status_label(str(data.get("status"))),
            verdict=verdict_label(str(data.get("verdict"))),
        )
    return None


def _num(value: Any, unit: str = "") -> str:
    if value is None:
        return "?"
    if isinstance(value, float):
        return f"{value:.1f}{unit}" if value != int(value) else f"{int(value)}{unit}"
    return f"{value}{unit}"


def numbers_of(t: TestResult) -> str:
    """The numbers of a quick test that say the most, in a few words."""
    n = t.numbers
    parts: list[str] = []
    if t.name == "cpu":
        if n.get("mib_per_second") is not None:
            parts.append(
                _("{rate} MiB/s hashed on {n} threads").format(
                    rate=_num(n["mib_per_second"]), n=n.get("threads", "?")
                )
            )
        if n.get("max_temperature_c") is not None:
            parts.append(_("max {t} °C").format(t=_num(n["max_temperature_c"])))
        if n.get("errors"):
            parts.append(_("{n} wrong results").format(n=n["errors"]))
    elif t.name == "ram":
        if n.get("bytes") is not None:
            parts.append(human_size(int(n["bytes"])))
        parts.append(
            _("{done}/{total} patterns").format(
                done=n.get("patterns_done", "?"), total=n.get("patterns_total", "?")
            )
        )
        if n.get("bad_bytes"):
            parts.append(_("{n} bad bytes").format(n=n["bad_bytes"]))
    elif t.name == "battery":
        if n.get("batteries") == 0:
            parts.append(_("no battery found"))
        for name, per in (n.get("per_battery") or {}).items():
            parts.append(f"{name} {per.get('status') or '?'} {_num(per.get('capacity_percent'), ' %')}")
    else:  # read test of a drive
        if n.get("mb_per_second") is not None:
            parts.append(human_rate(float(n["mb_per_second"]) * 1e6))
        if n.get("bytes_read") is not None:
            parts.append(human_size(int(n["bytes_read"])))
    return ", ".join(parts)


def title_of(t: TestResult) -> str:
    if t.name in TEST_LABELS:
        return _(TEST_LABELS[t.name])
    device = t.numbers.get("device")
    return _("Read {device}").format(device=device) if device else t.name


def render_report(report: DiagnosticReport) -> Text:
    """The whole report for the screen: verdict first, then machine, drives and quick tests."""
    text = render_verdict(report)
    if report.inventory is not None:
        text.append_text(render_machine(report.inventory))
    heading(text, _("Drive health (SMART)"))
    if not report.drives:
        text.append("  " + _("No drive was diagnosed.") + "\n")
    for d in report.drives:
        text.append_text(render_drive(d))
    heading(text, _("Quick tests"))
    if not report.tests:
        text.append("  " + _("No test was run.") + "\n")
    for t in report.tests:
        text.append_text(render_test(t))
    return text


def render_verdict(report: DiagnosticReport) -> Text:
    text = Text()
    overall = report.overall
    head = _("Verdict for this machine") if report.machine is not None else _("Verdict for the drives")
    text.append(f"{head}: ", style="bold")
    text.append(verdict_label(overall).upper(), style=VERDICT_STYLES.get(overall, "bold"))
    text.append("\n")
    if report.cancelled:
        text.append(_("Stopped before the end: this report is incomplete.") + "\n", style="bold yellow")
    if report.machine is not None:
        for r in report.machine.reasons:
            text.append(f"  • {r}\n")
        if report.machine.unknowns:
            text.append(
                "  "
                + _("Unknown (not checked): {what}").format(what=", ".join(report.machine.unknowns))
                + "\n",
                style="yellow",
            )
    return text


def render_machine(inv: Inventory) -> Text:
    """What the machine is: maker, model, CPU, RAM (with its modules), battery wear, drives."""
    text = Text()
    heading(text, _("Machine"))
    s, c, m = inv.system, inv.cpu, inv.memory
    append_fields(
        text,
        ((_("Manufacturer"), s.manufacturer), (_("Model"), s.model), (_("Serial"), s.serial)),
        missing="?",
    )
    cpu = _("{cores} cores, {threads} threads").format(cores=c.cores or "?", threads=c.threads or "?")
    ram = human_size(m.total_bytes) if m.total_bytes is not None else "?"
    if m.modules:
        sizes = (f"{x.locator or '?'} {human_size(x.size_bytes) if x.size_bytes else '?'}" for x in m.modules)
        ram += " (" + ", ".join(sizes) + ")"
    append_fields(text, ((_("CPU"), f"{c.model or '?'} ({cpu})"), (_("RAM"), ram)))
    battery = _("Battery")
    text.append(f"  {battery}: ", style="bold")
    if not inv.batteries:
        text.append((_("none") if inv.system.portable is False else _("none found")) + "\n")
    for b in inv.batteries:
        wear = _("wear {w}").format(w=_num(b.wear_percent, " %"))
        cycles = _("{n} cycles").format(n=_num(b.cycle_count))
        text.append(f"{b.name}: {wear}, {cycles}\n")
    drives = ", ".join(f"{d.path} {human_size(d.size_bytes) if d.size_bytes else '?'}" for d in inv.storage)
    append_fields(text, ((_("Drives"), drives),))
    return text


def render_test(t: TestResult) -> Text:
    text = Text()
    text.append(f"  {title_of(t)[:22]:<22} ", style="bold")
    text.append(f"{status_label(t.status):<9}", style=STATUS_STYLES.get(t.status, "yellow"))
    numbers = numbers_of(t)
    text.append(f" {numbers}" if numbers else "")
    if t.status != "pass" and t.reason:
        text.append(f" ({t.reason})", style="dim")
    text.append("\n")
    return text


def render_drive(d: DriveHealth) -> Text:
    sm = d.smart
    text = Text()
    text.append(f"  {d.device}", style="bold")
    sn = _("S/N")
    text.append(f"  {sm.model or '?'}  {sn} {sm.serial or '?'}\n")
    text.append("    SMART: ")
    text.append(status_label(sm.status), style=STATUS_STYLES.get(sm.status, "yellow"))
    text.append("  → ")
    text.append(verdict_label(d.verdict.verdict), style=VERDICT_STYLES.get(d.verdict.verdict, "bold"))
    text.append("\n")
    shown = [(name, label) for name, label in FACT_LABELS if name in d.facts]
    if all(d.facts[name] is None for name, _label in shown if name != "read_mb_per_second"):
        # Nothing reported at all: the "unknown" line below says so once, not one "?" per attribute.
        shown = [(name, label) for name, label in shown if name == "read_mb_per_second"]
    facts = [f"{_(label)} {_num(d.facts[name])}" for name, label in shown]
    if facts:
        text.append("    " + ", ".join(facts) + "\n", style="dim")
    for r in d.verdict.reasons or sm.reasons:  # the verdict's reasons quote SMART's own
        text.append(f"    • {r}\n")
    if d.verdict.unknowns:
        text.append(
            "    " + _("Unknown (not checked): {what}").format(what=", ".join(d.verdict.unknowns)) + "\n",
            style="yellow",
        )
    return text


# --------------------------------------------------------------------------------------------------
# Saving


def report_name(report: DiagnosticReport) -> str:
    """``20261128T125604Z``: the report's start, sortable and safe as a file name."""
    return report.started_at.replace("-", "").replace(":", "")


def save_report(report: DiagnosticReport, home: Path) -> Path:
    """Write the report as JSON to ``home/reports/<timestamp>.json`` (atomically; never overwrites)."""
    directory = home / REPORTS
    directory.mkdir(parents=True, exist_ok=True)
    base = report_name(report)
    path = directory / f"{base}.json"
    n = 1
    while path.exists():
        path = directory / f"{base}-{n}.json"
        n += 1
    data = (json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    atomic_write(path, data, exclusive=True)
    return path


def queue_report(path: Path, home: Path) -> str:
    """Queue a saved report for the hub (the sync outbox); its id."""
    return enqueue_report(path, home=home)
