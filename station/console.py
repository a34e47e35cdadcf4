"""What the headless station prints: plans, live progress and results.

``station erase`` (:mod:`station.commands`), ``station autorun`` and ``station demo --cli`` show the
same things the same way, so they share this module.  Sizes and times use :mod:`host.units`.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from erase.journal import JobState
from erase.purge.planner import PurgePlan
from erase.record import Outcome
from host import units
from host.units import human_duration
from station.i18n import N_, _, current_language, tr
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
from station.words import media_words, method_help, method_title, outcome_word, short_id

_LEVEL = {
    "none": N_("no NIST level"),
    "clear": N_("NIST SP 800-88 Clear"),
    "purge": N_("NIST SP 800-88 Purge"),
}


def level(name: str) -> str:
    return _(_LEVEL.get(name, name))


def human_size(n: float) -> str:
    return units.human_size(n, current_language())


def opal_known_absent(pp: PurgePlan) -> bool:
    """Whether the probe positively knows this drive has no TCG Opal (so no PSID revert is worth listing).

    The one place that decides: a drive without firmware commands (a loop device, virtio), or a probe
    that says so (``capabilities["opal"] is False``, once the probe detects Opal).  Unknown: listed.
    """
    return pp.protocol == "none" or pp.capabilities.get("opal") is False


def shown_alternatives(pp: PurgePlan) -> list[Any]:
    """The planner's ruled-out methods worth showing (never a PSID revert on a drive known without Opal)."""
    return [a for a in pp.alternatives if not (a.action == "opal-psid-revert" and opal_known_absent(pp))]


def show_purge_plan(plan: Any, out: TextIO) -> None:
    """The firmware part of a plan: policy, steps with their level on this media, and what was ruled out."""
    pp = PurgePlan.from_dict(plan.purge)
    media = _("flash") if pp.flash else _("magnetic")
    out.write(
        "  "
        + _("policy {policy}: requested {level}  ({media} media, {protocol})").format(
            policy=pp.policy, level=level(pp.level_requested), media=media, protocol=pp.protocol
        )
        + "\n"
    )
    if pp.native_bytes != pp.accessible_bytes:
        out.write(
            "  "
            + _("hidden area: {size} (accessible {accessible} of {native} bytes)").format(
                size=human_size(pp.native_bytes - pp.accessible_bytes),
                accessible=pp.accessible_bytes,
                native=pp.native_bytes,
            )
            + "\n"
        )
    for n, st in enumerate(pp.steps, start=1):
        lv = _("preparation") if st.level == "none" else level(st.level)
        when = human_duration(st.estimate_seconds)
        out.write(
            "    "
            + _("step {n}: {label}  -> {level}, ~{t}").format(n=n, label=tr(st.label), level=lv, t=when)
        )
        out.write(
            "\n            "
            + _("{argv}   (evidence: {evidence})").format(argv=" ".join(st.argv), evidence=st.evidence)
            + "\n"
        )
    if pp.overwrite:
        out.write(
            "    "
            + _("then overwrite with {method}  -> {level}, ~{t}").format(
                method=plan.method, level=level("clear"), t=human_duration(pp.overwrite_estimate_seconds)
            )
            + "\n"
        )
    for alt in shown_alternatives(pp):
        out.write(
            "    "
            + _("not used: {label} ({level}): {why}").format(
                label=tr(alt.label), level=level(alt.level), why=tr(alt.reason)
            )
            + "\n"
        )
    for warning in pp.warnings:
        out.write("  " + _("WARNING: {warning}").format(warning=tr(warning)) + "\n")
    out.write("  " + _("estimated time: {t}").format(t=human_duration(pp.estimate_seconds)) + "\n")


def machine_line(operator: Mapping[str, str]) -> str:
    """'lot LOT-2026-03  asset number PC-7' from a plan's operator fields ('' when it has neither)."""
    parts = []
    if operator.get("lot"):
        parts.append(_("lot {lot}").format(lot=operator["lot"]))
    if operator.get("asset_number"):
        parts.append(_("asset number {asset}").format(asset=operator["asset_number"]))
    return "  ".join(parts)


def show_plan(entries: Sequence[Any], plans: Sequence[Any], out: TextIO) -> None:
    for entry, plan in zip(entries, plans, strict=True):
        i = entry.info
        out.write("\n" + _("Plan for {path}  [{identity}]").format(path=i.path, identity=i.identity) + "\n")
        out.write(
            "  "
            + _("model {model}  serial {serial}  {size}  {media}  sectors {logical}/{physical}").format(
                model=i.model or "-",
                serial=i.serial or "-",
                size=human_size(i.size_bytes),
                media=media_words(i.media_type, i.transport),
                logical=i.logical_sector_size,
                physical=i.physical_sector_size,
            )
            + "\n"
        )
        machine = machine_line(plan.operator)
        if machine:
            out.write("  " + machine + "\n")
        if plan.purge is not None:
            show_purge_plan(plan, out)
            expected = plan.purge["level_expected"]
            out.write("  " + _("achieves: {level}").format(level=level(expected)))
            if plan.passes and plan.verify == "none" and expected == "clear":
                out.write(" " + _("only if verified: with --verify none no NIST level will be claimed"))
            out.write("\n")
            if plan.purge.get("level_note"):
                out.write(
                    "  " + _("lower than requested: {why}").format(why=tr(plan.purge["level_note"])) + "\n"
                )
            continue
        _overwrite_plan(plan, i.media_type, out)


def _overwrite_plan(plan: Any, media_type: str, out: TextIO) -> None:
    out.write(
        "  "
        + _("method {method}: {title}").format(method=plan.method, title=method_title(plan.method))
        + "\n"
    )
    out.write("    " + method_help(plan.method) + "\n")
    if plan.rounds > 1 or plan.final_blank:
        out.write(
            "  "
            + _("{rounds} round(s), final blank pass: {blank}").format(
                rounds=plan.rounds, blank=_("yes") if plan.final_blank else _("no")
            )
            + "\n"
        )
    verified = set(plan.verified_passes())
    for n, p in enumerate(plan.passes):
        v = (
            "  + " + _("read back ({mode})").format(mode=verify_mode(plan.verify_mode))
            if n in verified
            else ""
        )
        out.write("    " + _("pass {n}: {pattern}").format(n=n + 1, pattern=tr(p.describe())) + v + "\n")
    achieved = level("clear") if plan.verify != "none" else _("not verified: no NIST level will be claimed")
    out.write("  " + _("achieves: {level}").format(level=achieved) + "\n")
    if media_type in ("ssd", "nvme", "usb", "mmc"):
        out.write(
            "  "
            + _("note: overwriting flash reaches Clear, not Purge (spare blocks are not addressable).")
            + "\n"
        )


def verify_mode(mode: str) -> str:
    return _("every sector") if mode == "full" else _("NIST sample")


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
                    what = _("FAILED") if kind == "failed" else _("stopped")
                    self.out.write(f"{state.plan.drive.path}: {what}: {tr(str(ev.get('reason', '')))}\n")
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
    n = ev.get("pass", 0) + 1
    if kind == "pass-started":
        return _("pass {n} started at byte {start}").format(n=n, start=ev["start"])
    if kind == "pass-finished":
        return _("pass {n} written ({size})").format(n=n, size=human_size(ev["written"]))
    if kind == "verify-started":
        return _("reading back pass {n} ({mode})").format(n=n, mode=verify_mode(ev["mode"]))
    if kind == "verify-finished":
        return _verify_finished(n, ev["verification"])
    if kind == "bad-range":
        r = ev["range"]
        return _("UNWRITABLE range at byte {offset} (+{length}): {error}").format(
            offset=r["offset"], length=r["length"], error=tr(r.get("error", ""))
        )
    return str(kind)


def _verify_finished(n: int, v: dict[str, Any]) -> str:
    if v["passed"]:
        return _("read-back of pass {n} PASSED ({size} read)").format(
            n=n, size=human_size(v["bytes_checked"])
        )
    text = _("read-back of pass {n} FAILED: {count} sector(s) differ").format(n=n, count=v["mismatch_count"])
    if v["mismatches"]:
        text += ", " + _("first at byte {offset}").format(offset=v["mismatches"][0]["offset"])
    if v["read_errors"]:
        text += ", " + _("{count} unreadable range(s)").format(count=len(v["read_errors"]))
    return text


def status_line(s: JobState) -> str:
    plan = s.plan
    name = f"{plan.drive.path:<12}"
    if s.end_event is None and s.worker is None:
        return f"{name} " + _("starting")
    outcome = s.outcome
    if outcome is not Outcome.RUNNING:
        return f"{name} {outcome_word(outcome.value):<11} {tr(s.failure or '')}"
    if s.current_pass is None:
        return f"{name} " + _("starting")
    pct = 100.0 * s.phase_done / s.phase_total if s.phase_total else 0.0
    eta = (s.phase_total - s.phase_done) / s.rate if s.rate > 0 else 0
    phase = _("writing") if s.phase == "write" else _("reading back")
    return f"{name} " + _("pass {i}/{n} {phase} {pct}%  {rate}  {eta} left  (job {job}%)").format(
        i=s.current_pass + 1,
        n=len(plan.passes),
        phase=phase,
        pct=f"{pct:5.1f}",
        rate=units.human_rate(s.rate, current_language()),
        eta=human_duration(eta),
        job=f"{100 * s.overall_fraction:4.1f}",
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
            _human_result(s, outcome, record, certs, worker_error, out)
    out.flush()
    return _worst(codes)


def _human_result(
    s: JobState, outcome: str, record: dict[str, Any], certs: list[str], worker_error: str | None, out: TextIO
) -> None:
    """One drive's result for a person: outcome, why, its job, its certificate or failure report."""
    success = outcome in ("verified", "unverified")
    out.write(f"\n{s.plan.drive.path} [{s.plan.drive.identity}]: {outcome_word(outcome).upper()}")
    if record.get("nist_level"):
        out.write(f"  ({level(record['nist_level'])})")
    out.write("\n")
    for reason in record.get("reasons", []):
        out.write(f"  - {tr(reason)}\n")
    out.write(
        "  " + _("job {short} ({folder})").format(short=short_id(s.plan.job_id), folder=s.job_dir) + "\n"
    )
    for c in certs:
        what = _("certificate") if success and outcome == "verified" else _("signed failure report")
        out.write(f"  {what}: {c}\n")
    if not success and certs:
        out.write(
            "  "
            + _(
                "next: erase it again, try NIST Purge, or destroy it and record it: station destroy {job} --method shred --by NAME"
            ).format(job=short_id(s.plan.job_id))
            + "\n"
        )
    if worker_error:
        out.write(
            "  "
            + _("ERROR: {error}").format(error=worker_error)
            + "\n  "
            + _("(no certificate was issued; see {log})").format(log=s.job_dir / "worker.log")
            + "\n"
        )


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
