"""The drive and job commands of ``station``: drives, methods, erase, jobs, certify.

Plan, show, confirm, then commit: ``station erase`` resolves and plans every drive first (anything
refused is bad input, exit 2, nothing written), shows the plans, asks for each drive's serial unless
``--yes``, then starts one worker per drive (:mod:`station.jobs`) and follows them
(:mod:`station.console`).  Exit codes are in :mod:`station.options`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from erase.errors import EraseError
from erase.journal import derive
from erase.methods import METHODS, method_names
from erase.purge.machine import Machine, MachineDrive, current_machine
from erase.purge.planner import PlanOptions
from erase.record import JobPlan, Outcome
from host import paths
from host.drives import discover
from host.errors import BadInput, TabulaError
from host.units import human_size
from station.certify import certify_job, ensure_station_key
from station.console import ProgressPrinter, follow, show_plan, summary
from station.errors import Refused
from station.jobs import EraseOptions, create_job, find_job, find_jobs, plan_job, plan_purge_job, spawn
from station.options import EXIT_OK, EXIT_REFUSED, WorkerOptions, exit_code_for

# -- drives ------------------------------------------------------------------------------------


def cmd_drives(args: argparse.Namespace) -> int:
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
            f"{i.path:<14} {human_size(i.size_bytes):>10} {i.media_type:<7} {i.transport:<9} "
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


def _confirm(
    entries: Sequence[Any], plans: Sequence[Any], stdin: TextIO, stdout: TextIO, *, from_stdin: bool = False
) -> bool:
    """Ask for each drive's serial (or its last 4 characters) before touching it; never unasked."""
    if not stdin.isatty() and not from_stdin:
        raise BadInput(
            "refusing to erase without confirmation", hint="run it in a terminal, or add --yes in scripts"
        )
    for entry, plan in zip(entries, plans, strict=True):
        info = entry.info
        token = info.serial or info.kernel_name or Path(info.path).name
        stdout.write(
            f"\nAbout to ERASE {info.path} ({info.model or 'unknown model'}, serial {info.serial or '-'}, "
            f"{human_size(info.size_bytes)}) with {_what(plan)}.\n"
            f"All data on it will be destroyed.  Type its {'serial' if info.serial else 'name'} "
            f"({token!r}) or its last 4 characters to confirm: "
        )
        stdout.flush()
        answer = stdin.readline().strip()
        if not answer or not (answer == token or (len(answer) >= 4 and token.endswith(answer))):
            stdout.write(f"Not confirmed: {info.path} will not be touched.\n")
            return False
    return True


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
    """Plan, show, confirm, then start one worker per drive and follow them to the end."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    jobs_root = Path(args.job_dir) if args.job_dir else paths.jobs_dir()
    if args.resume:
        return _resume(args, jobs_root, stdout)
    if not args.devices:
        raise BadInput("no device given", hint="station erase /dev/sdX --method zero (see 'station drives')")
    options = _erase_options(args)
    machine = current_machine()
    entries = _resolve_drives(args, machine)
    plans = _plan(args, machine, entries, options)
    shown = sys.stderr if args.json else stdout  # --json keeps stdout for JSON lines
    if not args.json or args.plan:
        show_plan(entries, plans, shown)
    if args.plan:
        return EXIT_OK
    if not args.yes and not _confirm(entries, plans, stdin, shown, from_stdin=args.confirm_from_stdin):
        return EXIT_REFUSED
    return _run_jobs(args, jobs_root, plans, stdout)


def _run_jobs(args: argparse.Namespace, jobs_root: Path, plans: list[JobPlan], stdout: TextIO) -> int:
    """Write each job, start its worker, follow them all, and say how each ended."""
    wopts = _worker_options(args)
    if wopts.cert_dir is not None and wopts.key_dir is not None:
        ensure_station_key(Path(wopts.key_dir))
    job_dirs = [create_job(jobs_root, plan, wopts) for plan in plans]
    procs = [spawn(d) for d in job_dirs]
    printer = ProgressPrinter(stdout, json_mode=args.json, tty=stdout.isatty())
    states = follow(job_dirs, procs, printer)
    return summary(states, procs, stdout, args.json)


def _erase_options(args: argparse.Namespace) -> EraseOptions:
    if args.verify == "none" and args.sample:
        raise BadInput("--sample needs verification", hint="use --verify last or --verify all with --sample")
    return EraseOptions(
        method=args.method,
        verify=args.verify,
        verify_mode="sample" if args.sample else "full",
        rounds=args.rounds,
        final_blank=args.final_blank,
        custom_hex=args.pattern,
        block_size=args.block_size,
        on_error=args.on_error,
    )


def _resolve_drives(args: argparse.Namespace, machine: Machine) -> list[MachineDrive]:
    """The drives named, each once, none protected (a protected one is refused: exit 2)."""
    entries: list[MachineDrive] = []
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
    return entries


def _plan(
    args: argparse.Namespace, machine: Machine, entries: list[MachineDrive], options: EraseOptions
) -> list[JobPlan]:
    """Every drive's plan, in memory.  Anything refused happens before a byte is written: bad input."""
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
        raise BadInput(exc.message, hint=exc.hint or None) from exc
    return plans


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
    return summary(states, procs, stdout, args.json)


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
    jobs_root = Path(args.job_dir) if args.job_dir else paths.jobs_dir()
    job_dir = find_job(jobs_root, args.job)
    state = derive(job_dir)
    if state.outcome is Outcome.RUNNING:
        raise BadInput(f"job {state.plan.job_id} is still running")
    options = WorkerOptions.load(job_dir)
    cert_dir = args.cert_dir or options.cert_dir or str(paths.certs_dir())
    options = dataclasses.replace(options, cert_dir=cert_dir)
    ensure_station_key(Path(options.key_dir) if options.key_dir else paths.keys_dir())
    issued = certify_job(job_dir, options)
    for p in issued:
        print(p)
    return exit_code_for(state.outcome.value)


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


def register(sub: Any) -> None:
    """Add drives, methods, erase, jobs and certify to the ``station`` sub-commands."""
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


def erase_args(argv: Sequence[str]) -> argparse.Namespace:
    """``station erase ARGV...`` parsed (``station demo --cli`` runs the erase code path with it)."""
    parser = argparse.ArgumentParser(prog="station")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["erase", *argv])
