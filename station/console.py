"""What the headless station prints: plans, live progress and results.

``station erase`` (:mod:`station.commands`), ``station autorun`` and ``station demo --cli`` show the
same things the same way, so they share this module.  Sizes and times use :mod:`host.units`.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from erase.journal import JobState
from erase.purge.planner import PurgePlan
from erase.record import Outcome
from host.units import human_duration, human_size
from station.jobs import JobWatcher
from station.options import (
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNVERIFIED,
    RECORD,
    exit_code_for,
)

_LEVEL = {"none": "no NIST level", "clear": "NIST SP 800-88 Clear", "purge": "NIST SP 800-88 Purge"}


def show_purge_plan(plan: Any, out: TextIO) -> None:
    """The firmware part of a plan: policy, steps with their level on this media, and what was ruled out."""
    pp = PurgePlan.from_dict(plan.purge)
    media = "flash" if pp.flash else "magnetic"
    out.write(
        f"  policy {pp.policy}: requested {_LEVEL[pp.level_requested]}  ({media} media, {pp.protocol})\n"
    )
    if pp.native_bytes != pp.accessible_bytes:
        out.write(
            f"  hidden area: {human_size(pp.native_bytes - pp.accessible_bytes)} "
            f"(accessible {pp.accessible_bytes} of {pp.native_bytes} bytes)\n"
        )
    for n, st in enumerate(pp.steps, start=1):
        level = "preparation" if st.level == "none" else _LEVEL[st.level]
        out.write(f"    step {n}: {st.label}  -> {level}, ~{human_duration(st.estimate_seconds)}\n")
        out.write(f"            {' '.join(st.argv)}   (evidence: {st.evidence})\n")
    if pp.overwrite:
        out.write(
            f"    then overwrite with {plan.method}  -> {_LEVEL['clear']}, ~{human_duration(pp.overwrite_estimate_seconds)}\n"
        )
    for alt in pp.alternatives:
        out.write(f"    not used: {alt.label} ({alt.level}): {alt.reason}\n")
    for warning in pp.warnings:
        out.write(f"  WARNING: {warning}\n")
    out.write(f"  estimated time: {human_duration(pp.estimate_seconds)}\n")


def show_plan(entries: Sequence[Any], plans: Sequence[Any], out: TextIO) -> None:
    for entry, plan in zip(entries, plans, strict=True):
        i = entry.info
        out.write(f"\nPlan for {i.path}  [{i.identity}]\n")
        out.write(f"  model {i.model or '-'}  serial {i.serial or '-'}  {human_size(i.size_bytes)}  ")
        out.write(f"{i.media_type}/{i.transport}  sectors {i.logical_sector_size}/{i.physical_sector_size}\n")
        if plan.purge is not None:
            show_purge_plan(plan, out)
            expected = plan.purge["level_expected"]
            out.write(f"  achieves: {_LEVEL[expected]}")
            if plan.passes and plan.verify == "none" and expected == "clear":
                out.write(" only if verified: with --verify none no NIST level will be claimed")
            out.write("\n")
            if plan.purge.get("level_note"):
                out.write(f"  lower than requested: {plan.purge['level_note']}\n")
            continue
        out.write(
            f"  method {plan.method} (rounds {plan.rounds}, final blank {'yes' if plan.final_blank else 'no'})\n"
        )
        verified = set(plan.verified_passes())
        for n, p in enumerate(plan.passes):
            v = f"  + verify ({plan.verify_mode})" if n in verified else ""
            out.write(f"    pass {n + 1}: {p.describe()}{v}\n")
        level = (
            "NIST SP 800-88 Clear" if plan.verify != "none" else "not verified: no NIST level will be claimed"
        )
        out.write(f"  achieves: {level}\n")
        if i.media_type in ("ssd", "nvme", "usb", "mmc"):
            out.write(
                "  note: overwriting flash reaches Clear, not Purge (spare blocks are not addressable).\n"
            )


class ProgressPrinter:
    """Live progress: one line per drive on a TTY, plain event lines otherwise, JSON lines with --json."""

    def __init__(self, out: TextIO, *, json_mode: bool, tty: bool) -> None:
        self.out = out
        self.json_mode = json_mode
        self.tty = tty
        self._lines = 0
        self._last_plain = 0.0

    def events(self, state: JobState) -> None:
        if self.json_mode:
            for ev in state.new_events:
                self.out.write(
                    json.dumps({"job": state.plan.job_id, "device": state.plan.drive.path, **ev}) + "\n"
                )
            self.out.flush()
        elif not self.tty:
            for ev in state.new_events:
                kind = ev["event"]
                if kind in (
                    "pass-started",
                    "pass-finished",
                    "verify-started",
                    "verify-finished",
                    "bad-range",
                ):
                    self.out.write(f"{state.plan.drive.path}: {describe_event(ev)}\n")
                elif kind in ("failed", "cancelled"):
                    self.out.write(f"{state.plan.drive.path}: {kind}: {ev.get('reason', '')}\n")
            self.out.flush()

    def status(self, states: Sequence[JobState]) -> None:
        if self.json_mode:
            return
        if not self.tty:
            now = time.monotonic()
            if now - self._last_plain >= 10:
                self._last_plain = now
                for s in states:
                    if s.end_event is None:
                        self.out.write(status_line(s) + "\n")
                self.out.flush()
            return
        if self._lines:
            self.out.write(f"\x1b[{self._lines}F")
        for s in states:
            self.out.write("\x1b[2K" + status_line(s) + "\n")
        self._lines = len(states)
        self.out.flush()


def describe_event(ev: dict[str, Any]) -> str:
    kind = ev["event"]
    if kind == "pass-started":
        return f"pass {ev['pass'] + 1} started at byte {ev['start']}"
    if kind == "pass-finished":
        return f"pass {ev['pass'] + 1} written ({human_size(ev['written'])})"
    if kind == "verify-started":
        return f"verifying pass {ev['pass'] + 1} ({ev['mode']})"
    if kind == "verify-finished":
        v = ev["verification"]
        if v["passed"]:
            return f"verification of pass {ev['pass'] + 1} PASSED ({human_size(v['bytes_checked'])} read)"
        first = v["mismatches"][0]["offset"] if v["mismatches"] else None
        return (
            f"verification of pass {ev['pass'] + 1} FAILED: {v['mismatch_count']} sector(s) differ"
            + (f", first at byte {first}" if first is not None else "")
            + (f", {len(v['read_errors'])} unreadable range(s)" if v["read_errors"] else "")
        )
    if kind == "bad-range":
        r = ev["range"]
        return f"UNWRITABLE range at byte {r['offset']} (+{r['length']}): {r.get('error', '')}"
    return str(kind)


def status_line(s: JobState) -> str:
    plan = s.plan
    name = f"{plan.drive.path:<12}"
    if s.end_event is None and s.worker is None:
        return f"{name} starting"
    outcome = s.outcome
    if outcome is not Outcome.RUNNING:
        return f"{name} {outcome.value.upper():<11} {s.failure or ''}"
    if s.current_pass is None:
        return f"{name} starting"
    pct = 100.0 * s.phase_done / s.phase_total if s.phase_total else 0.0
    eta = (s.phase_total - s.phase_done) / s.rate if s.rate > 0 else 0
    phase = "writing" if s.phase == "write" else "verifying"
    return (
        f"{name} pass {s.current_pass + 1}/{len(plan.passes)} {phase:<9} {pct:5.1f}%  "
        f"{human_size(s.rate)}/s  ETA {human_duration(eta)}  (job {100 * s.overall_fraction:4.1f}%)"
    )


def follow(job_dirs: Sequence[Path], procs: Sequence[Any], printer: ProgressPrinter) -> list[JobState]:
    """Follow the jobs until every worker has exited; Ctrl-C stops the workers cleanly."""
    watcher = JobWatcher(job_dirs)
    try:
        while True:
            states = watcher.poll()
            for s in states:
                printer.events(s)
            printer.status(states)
            if all(p.poll() is not None for p in procs):
                states = watcher.poll()
                for s in states:
                    printer.events(s)
                printer.status(states)
                return states
            time.sleep(0.25)
    except KeyboardInterrupt:
        # Stop the workers (each journals 'cancelled'), then wait for them: a second Ctrl-C must not
        # leave this process without its summary and exit code.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for p in procs:
                if p.poll() is None:
                    p.terminate()
            for p in procs:
                p.wait()
        finally:
            signal.signal(signal.SIGINT, previous)
        states = watcher.poll()
        for s in states:
            printer.events(s)
        printer.status(states)
        return states


def summary(states: Sequence[JobState], procs: Sequence[Any], out: TextIO, json_mode: bool) -> int:
    codes = []
    for s, p in zip(states, procs, strict=True):
        record_path = s.job_dir / RECORD
        record: dict[str, Any] = json.loads(record_path.read_text()) if record_path.exists() else {}
        outcome = record.get("outcome") or s.outcome.value
        code = exit_code_for(outcome)
        worker_error = None
        if p.returncode not in (0, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_UNVERIFIED):
            # The worker itself failed (e.g. it could not sign the certificate): never report success.
            code = EXIT_INTERNAL
            worker_error = _last_line(s.job_dir / "worker.log") or f"worker exit code {p.returncode}"
        codes.append(code)
        certs = _certificate_paths(s.job_dir)
        if json_mode:
            out.write(
                json.dumps(
                    {
                        "event": "result",
                        "job": s.plan.job_id,
                        "device": s.plan.drive.path,
                        "outcome": outcome,
                        "nist_level": record.get("nist_level"),
                        "reasons": record.get("reasons", []),
                        "record": str(record_path) if record else None,
                        "certificate": certs,
                        "worker_exit": p.returncode,
                        "worker_error": worker_error,
                    }
                )
                + "\n"
            )
        else:
            out.write(f"\n{s.plan.drive.path} [{s.plan.drive.identity}]: {outcome.upper()}")
            if record.get("nist_level"):
                out.write(f"  (NIST SP 800-88 {record['nist_level'].capitalize()})")
            out.write("\n")
            for reason in record.get("reasons", []):
                out.write(f"  - {reason}\n")
            out.write(f"  job {s.plan.job_id}: {s.job_dir}\n")
            for c in certs:
                out.write(f"  certificate: {c}\n")
            if worker_error:
                out.write(
                    f"  ERROR: {worker_error}\n  (no certificate was issued; see {s.job_dir / 'worker.log'})\n"
                )
    out.flush()
    return _worst(codes)


def _last_line(path: Path) -> str | None:
    if not path.exists():
        return None
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return (
        lines[-2] + " " + lines[-1]
        if len(lines) >= 2 and lines[-1].startswith("->")
        else (lines[-1] if lines else None)
    )


def _worst(codes: Sequence[int]) -> int:
    for c in (EXIT_INTERNAL, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_UNVERIFIED):
        if c in codes:
            return c
    return EXIT_OK


def _certificate_paths(job_dir: Path) -> list[str]:
    index = job_dir / "certificate.json"
    if not index.exists():
        return []
    data = json.loads(index.read_text())
    return [str(p) for p in data.get("paths", [])]
