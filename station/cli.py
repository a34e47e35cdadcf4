"""The ``station`` command line.

``station`` with no arguments starts the TUI (``station --lang fr``); subcommands are the headless interface for benches,
scripts and the live image.  Exit codes (``station erase``): 0 erased and verified, 2 refused or bad input (nothing
written), 3 erasure or verification failed, 4 interrupted, 5 written but not verified
(``--verify none``: no NIST level is claimed), 1 internal error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from erase.errors import EraseError
from erase.journal import JobState, derive
from erase.methods import METHODS, method_names
from erase.record import Outcome
from host import paths
from host.errors import BadInput, TabulaError
from station import __version__
from station.errors import StationError
from station.jobs import EraseOptions, JobWatcher, create_job, find_job, find_jobs, plan_job, spawn
from station.options import (
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNVERIFIED,
    RECORD,
    WorkerOptions,
    exit_code_for,
)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.1f} TB"


def human_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h:d}:{m:02d}:{s:02d}"


# -- drives ------------------------------------------------------------------------------------


def cmd_drives(args: argparse.Namespace) -> int:
    from host.drives import discover

    entries = discover(include_loop=args.include_loop)
    if args.json:
        out = []
        for e in entries:
            d = e.info.to_dict()
            d["identity"] = e.info.identity
            d["protection"] = e.protection.to_dict()
            out.append(d)
        print(json.dumps(out, indent=2))
        return EXIT_OK
    if not entries:
        print("no drives found" + ("" if args.include_loop else " (loop devices are hidden: --include-loop)"))
        return EXIT_OK
    print(f"{'DEVICE':<14} {'SIZE':>10} {'TYPE':<7} {'TRANSPORT':<9} {'MODEL':<22} {'SERIAL':<20} STATUS")
    for e in entries:
        i = e.info
        status = (
            "ok"
            if e.protection.allowed
            else "PROTECTED: " + "; ".join(r.message for r in e.protection.reasons)
        )
        print(
            f"{i.path:<14} {human_bytes(i.size_bytes):>10} {i.media_type:<7} {i.transport:<9} "
            f"{(i.model or '-')[:22]:<22} {(i.serial or '-')[:20]:<20} {status}"
        )
    return EXIT_OK


def cmd_methods(args: argparse.Namespace) -> int:
    for name in method_names():
        m = METHODS[name]
        print(f"{name:<18} {m.description}")
    return EXIT_OK


# -- erase -------------------------------------------------------------------------------------


def _what(plan: Any) -> str:
    """What a plan will do, in one phrase (for the confirmation prompt)."""
    overwrite = f"{plan.method}: {len(plan.passes)} pass(es), verify {plan.verify}"
    if plan.purge is None:
        return overwrite
    steps = ", ".join(str(s.get("label")) for s in plan.purge_steps)
    parts = [p for p in (steps, overwrite if plan.passes else "") if p]
    return f"policy {plan.purge['policy']} ({' then '.join(parts)})"


def _confirm(entries: Sequence[Any], plans: Sequence[Any], stdin: TextIO, stdout: TextIO) -> bool:
    """Ask for each drive's serial (or its last 4 characters) before touching it."""
    for entry, plan in zip(entries, plans, strict=True):
        info = entry.info
        token = info.serial or info.kernel_name or Path(info.path).name
        stdout.write(
            f"\nAbout to ERASE {info.path} ({info.model or 'unknown model'}, serial {info.serial or '-'}, "
            f"{human_bytes(info.size_bytes)}) with {_what(plan)}.\n"
            f"All data on it will be destroyed.  Type its {'serial' if info.serial else 'name'} "
            f"({token!r}) or its last 4 characters to confirm: "
        )
        stdout.flush()
        answer = stdin.readline().strip()
        if not answer or not (answer == token or (len(answer) >= 4 and token.endswith(answer))):
            stdout.write(f"Not confirmed: {info.path} will not be touched.\n")
            return False
    return True


_LEVEL = {"none": "no NIST level", "clear": "NIST SP 800-88 Clear", "purge": "NIST SP 800-88 Purge"}


def _show_purge_plan(plan: Any, out: TextIO) -> None:
    """The firmware part of a plan: policy, steps with their level on this media, and what was ruled out."""
    from erase.purge.planner import PurgePlan

    pp = PurgePlan.from_dict(plan.purge)
    media = "flash" if pp.flash else "magnetic"
    out.write(
        f"  policy {pp.policy}: requested {_LEVEL[pp.level_requested]}  ({media} media, {pp.protocol})\n"
    )
    if pp.native_bytes != pp.accessible_bytes:
        out.write(
            f"  hidden area: {human_bytes(pp.native_bytes - pp.accessible_bytes)} "
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
    out.write(f"  estimated time: {human_duration(pp.estimate_seconds)}\n")


def _show_plan(entries: Sequence[Any], plans: Sequence[Any], out: TextIO) -> None:
    for entry, plan in zip(entries, plans, strict=True):
        i = entry.info
        out.write(f"\nPlan for {i.path}  [{i.identity}]\n")
        out.write(f"  model {i.model or '-'}  serial {i.serial or '-'}  {human_bytes(i.size_bytes)}  ")
        out.write(f"{i.media_type}/{i.transport}  sectors {i.logical_sector_size}/{i.physical_sector_size}\n")
        if plan.purge is not None:
            _show_purge_plan(plan, out)
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
        return f"pass {ev['pass'] + 1} written ({human_bytes(ev['written'])})"
    if kind == "verify-started":
        return f"verifying pass {ev['pass'] + 1} ({ev['mode']})"
    if kind == "verify-finished":
        v = ev["verification"]
        if v["passed"]:
            return f"verification of pass {ev['pass'] + 1} PASSED ({human_bytes(v['bytes_checked'])} read)"
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
        f"{human_bytes(s.rate)}/s  ETA {human_duration(eta)}  (job {100 * s.overall_fraction:4.1f}%)"
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


def _summary(states: Sequence[JobState], procs: Sequence[Any], out: TextIO, json_mode: bool) -> int:
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


def _worker_options(args: argparse.Namespace) -> WorkerOptions:
    cert_dir = None if args.no_cert else str(Path(args.cert_dir) if args.cert_dir else paths.certs_dir())
    return WorkerOptions(
        cert_dir=cert_dir,
        key_dir=str(Path(args.key_dir) if args.key_dir else paths.keys_dir()),
        settings=args.settings,
        lang=args.lang or "",
        include_loop=args.include_loop,
    )


def cmd_erase(args: argparse.Namespace, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    from erase.purge.machine import current_machine
    from erase.purge.planner import PlanOptions
    from station.jobs import plan_purge_job

    machine = current_machine()
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    jobs_root = Path(args.job_dir) if args.job_dir else paths.jobs_dir()
    if args.resume:
        return _resume(args, jobs_root, stdout)
    if not args.devices:
        raise BadInput("no device given", hint="station erase /dev/sdX --method zero (see 'station drives')")
    if args.verify == "none" and args.sample:
        raise BadInput("--sample needs verification", hint="use --verify last or --verify all with --sample")
    options = EraseOptions(
        method=args.method,
        verify=args.verify,
        verify_mode="sample" if args.sample else "full",
        rounds=args.rounds,
        final_blank=args.final_blank,
        custom_hex=args.pattern,
        block_size=args.block_size,
        on_error=args.on_error,
    )
    entries = []
    seen: set[str] = set()
    for dev in args.devices:
        entry = machine.resolve(dev, include_loop=args.include_loop)
        if entry.info.identity in seen:
            raise BadInput(f"{dev} is given twice", hint="name each drive once")
        seen.add(entry.info.identity)
        if not entry.allowed:
            raise Refused(
                f"{entry.info.path} is protected and will not be erased: {'; '.join(entry.reasons)}"
            )
        entries.append(entry)
    operator = {k: v for k, v in (("asset_number", args.asset), ("donor", args.donor)) if v}
    try:
        if args.policy:
            popts = PlanOptions(
                allow_usb_ata=args.allow_usb_ata, unfreeze_suspend=args.unfreeze_suspend, psid=args.psid
            )
            plans = [
                plan_purge_job(e.info, options, args.policy, machine.runner, popts, operator=operator)[0]
                for e in entries
            ]
        else:
            plans = [plan_job(e.info, options, operator=operator) for e in entries]
        if not args.plan:
            for e in entries:
                machine.data_path(e.info)  # a recorded machine without a disk image cannot erase
    except TabulaError as exc:
        # Anything the planner refuses happens before a byte is written: it is bad input (exit 2).
        raise BadInput(exc.message, hint=exc.hint or None) from exc
    if not args.json or args.plan:
        _show_plan(entries, plans, stdout if not args.json else sys.stderr)
    if args.plan:
        return EXIT_OK
    if not args.yes:
        if not stdin.isatty() and not args.confirm_from_stdin:
            raise BadInput(
                "refusing to erase without confirmation", hint="run it in a terminal, or add --yes in scripts"
            )
        if not _confirm(entries, plans, stdin, stdout if not args.json else sys.stderr):
            return EXIT_REFUSED
    wopts = _worker_options(args)
    if wopts.cert_dir is not None and wopts.key_dir is not None:
        from station.certify import ensure_station_key

        ensure_station_key(Path(wopts.key_dir))
    job_dirs = [create_job(jobs_root, plan, wopts) for plan in plans]
    procs = [spawn(d) for d in job_dirs]
    printer = ProgressPrinter(stdout, json_mode=args.json, tty=stdout.isatty())
    states = follow(job_dirs, procs, printer)
    return _summary(states, procs, stdout, args.json)


def _resume(args: argparse.Namespace, jobs_root: Path, stdout: TextIO) -> int:
    job_dir = find_job(jobs_root, args.resume)
    state = derive(job_dir)
    if state.alive:
        raise BadInput(
            f"job {state.plan.job_id} is still running (pid {state.worker and state.worker['pid']})"
        )
    if state.end_event in ("finished", "failed"):
        raise BadInput(
            f"job {state.plan.job_id} is already over ({state.outcome.value})",
            hint="start a new erase of the drive instead",
        )
    if state.plan.drive.identity.startswith("path:"):
        # No serial, no WWN, no backing file: after a replug another drive of the same size could
        # sit at that path, and a resume would certify a drive it never wrote from the start.
        raise BadInput(
            f"{state.plan.drive.path} has no serial or WWN: Tabula cannot prove it is the same drive",
            hint="start a new erase of the drive instead of resuming",
        )
    procs = [spawn(job_dir)]
    printer = ProgressPrinter(stdout, json_mode=args.json, tty=stdout.isatty())
    states = follow([job_dir], procs, printer)
    return _summary(states, procs, stdout, args.json)


class Refused(StationError):
    """The drive is protected: nothing was written."""


# -- jobs --------------------------------------------------------------------------------------


def cmd_jobs(args: argparse.Namespace) -> int:
    jobs_root = Path(args.job_dir) if args.job_dir else paths.jobs_dir()
    rows: list[dict[str, Any]] = []
    for d in find_jobs(jobs_root):
        try:
            s = derive(d)
        except EraseError as exc:  # JournalError, or a plan that no longer validates (InvalidModel)
            # One damaged journal must not hide every other job: list it, with what is wrong.
            rows.append(
                {
                    "job": d.name,
                    "device": "?",
                    "identity": "?",
                    "method": "?",
                    "created_at": "?",
                    "outcome": "unreadable",
                    "progress": 0.0,
                    "reason": exc.diagnostics(),
                    "dir": str(d),
                }
            )
            continue
        rows.append(
            {
                "job": s.plan.job_id,
                "device": s.plan.drive.path,
                "identity": s.plan.drive.identity,
                "method": s.plan.method,
                "created_at": s.plan.created_at,
                "outcome": s.outcome.value,
                "progress": round(s.overall_fraction, 4),
                "reason": s.failure,
                "dir": str(d),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(
                f"{r['job'][:8]}  {r['created_at'][:19]}  {r['device']:<12} {r['method']:<16} {r['outcome']:<11}"
            )
    return EXIT_OK


def cmd_certify(args: argparse.Namespace) -> int:
    """Issue (or re-issue) the certificate of a finished or interrupted job from its journal."""
    from station.certify import certify_job

    jobs_root = Path(args.job_dir) if args.job_dir else paths.jobs_dir()
    job_dir = find_job(jobs_root, args.job)
    state = derive(job_dir)
    if state.outcome is Outcome.RUNNING:
        raise BadInput(f"job {state.plan.job_id} is still running")
    options = WorkerOptions.load(job_dir)
    cert_dir = args.cert_dir or options.cert_dir or str(paths.certs_dir())
    options = dataclasses.replace(options, cert_dir=cert_dir)
    from station.certify import ensure_station_key

    ensure_station_key(Path(options.key_dir) if options.key_dir else paths.keys_dir())
    issued = certify_job(job_dir, options)
    for p in issued:
        print(p)
    return exit_code_for(state.outcome.value)


# -- parser ------------------------------------------------------------------------------------


def _add_erase_parser(sub: Any) -> None:
    p = sub.add_parser("erase", help="erase drives (overwrite + verification), one process per drive")
    p.add_argument(
        "devices", nargs="*", metavar="DEVICE", help="/dev/sdX, /dev/disk/by-id/..., serial or WWN"
    )
    p.add_argument(
        "--method", "-m", default="zero", choices=method_names(), help="overwrite method (default zero)"
    )
    p.add_argument(
        "--verify", choices=("none", "last", "all"), default="last", help="which passes to read back"
    )
    p.add_argument("--sample", action="store_true", help="NIST 800-88 sampled verification instead of full")
    p.add_argument("--rounds", type=int, default=1, help="repeat the method's passes N times")
    p.add_argument("--final-blank", action="store_true", help="add a final zero pass")
    p.add_argument("--pattern", metavar="HEX", help="byte pattern for --method custom (e.g. 5aa5)")
    p.add_argument("--block-size", type=_size, default=4 << 20, help="I/O block size (default 4M)")
    p.add_argument(
        "--on-error", choices=("continue", "abort"), default="continue", help="on an unwritable range"
    )
    p.add_argument(
        "--policy",
        choices=("nist-clear", "nist-purge"),
        help="plan by NIST SP 800-88 level: firmware purge when the drive can, else overwrite (Clear)",
    )
    p.add_argument(
        "--unfreeze-suspend",
        action="store_true",
        help="allow a suspend-to-RAM cycle (rtcwake) to clear a BIOS security freeze",
    )
    p.add_argument(
        "--allow-usb-ata",
        action="store_true",
        help="allow ATA security/sanitize commands through a USB bridge",
    )
    p.add_argument("--psid", help="PSID printed on the drive label: allows a TCG Opal PSID revert")
    p.add_argument("--include-loop", action="store_true", help="allow loop devices (tests, demo)")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation (scripts, benches)")
    p.add_argument("--confirm-from-stdin", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help="one JSON event per line on stdout")
    p.add_argument("--plan", action="store_true", help="show the plan and exit without writing")
    p.add_argument("--resume", metavar="JOB", help="continue an interrupted job")
    p.add_argument("--job-dir", help="where job journals live (default $TABULA_HOME/jobs)")
    p.add_argument("--cert-dir", help="where certificates are written (default $TABULA_HOME/certs)")
    p.add_argument("--key-dir", help="station key directory (default $TABULA_HOME/keys)")
    p.add_argument("--no-cert", action="store_true", help="do not sign a certificate")
    p.add_argument("--settings", help="certificate settings file (technician, organisation, ...)")
    p.add_argument(
        "--lang",
        choices=("en", "fr"),
        default=os.environ.get("TABULA_LANG") or None,
        help="certificate language (default: the settings file's, else English)",
    )
    p.add_argument(
        "--asset", metavar="NUMBER", help="property / asset number of the donated machine (certificate)"
    )
    p.add_argument("--donor", metavar="NAME", help="who donated the machine (certificate 'source')")
    p.set_defaults(func=cmd_erase)


def _size(text: str) -> int:
    """'4M', '4MiB', '65536' -> bytes."""
    m = re.fullmatch(r"(\d+)\s*([kmg]?)(?:i?b)?", text.strip().lower())
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 4M)")
    return int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[m.group(2)]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="station", description="Tabula: verified drive erasure, diagnostics and signed certificates"
    )
    parser.add_argument("--version", action="version", version=f"tabula {__version__}")
    parser.add_argument(
        "--include-loop", action="store_true", help="TUI: offer loop devices too (tests, demo)"
    )
    parser.add_argument(
        "--lang", choices=("en", "fr"), default=None, help="TUI language (default: settings, locale)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("drives", help="list drives and whether they may be erased")
    p.add_argument("--json", action="store_true")
    p.add_argument("--include-loop", action="store_true", help="show loop devices too")
    p.set_defaults(func=cmd_drives)
    p = sub.add_parser("methods", help="list the overwrite methods")
    p.set_defaults(func=cmd_methods)
    _add_erase_parser(sub)
    p = sub.add_parser("jobs", help="list erase jobs and their outcome (from their journals)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--job-dir")
    p.set_defaults(func=cmd_jobs)
    p = sub.add_parser("certify", help="sign the certificate of a finished or interrupted job")
    p.add_argument("job", help="job id (or prefix) or job directory")
    p.add_argument("--job-dir")
    p.add_argument("--cert-dir")
    p.set_defaults(func=cmd_certify)
    from certs.cli import register as register_certs
    from diagnostics.cli import register as register_diagnostics
    from station.demo import register as register_demo

    register_certs(sub)
    register_diagnostics(sub)
    register_demo(sub)
    from station.sync.cli import register as register_sync

    register_sync(sub)
    from station.autorun import register as register_autorun

    register_autorun(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from station.tui import run as run_tui

        return run_tui(jobs_root=paths.jobs_dir(), include_loop=args.include_loop, lang=args.lang)
    try:
        code: int = args.func(args)
        return code
    except Refused as exc:
        print(f"station: refused: {exc.diagnostics()}", file=sys.stderr)
        return EXIT_REFUSED
    except BadInput as exc:
        print(f"station: {exc.diagnostics()}", file=sys.stderr)
        return EXIT_REFUSED
    except TabulaError as exc:
        print(f"station: {exc.diagnostics()}", file=sys.stderr)
        return EXIT_REFUSED if _is_input_error(exc) else EXIT_INTERNAL


def _is_input_error(exc: TabulaError) -> bool:
    return isinstance(exc, StationError)


if __name__ == "__main__":
    sys.exit(main())
