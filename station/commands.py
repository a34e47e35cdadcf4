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

from certs.build import utc
from certs.destruction import METHODS as DESTRUCTION_METHODS
from erase.errors import EraseError
from erase.journal import derive
from erase.methods import method_names
from erase.purge.machine import Machine, MachineDrive, current_machine
from erase.purge.planner import PlanOptions
from erase.record import JobPlan, Outcome
from host import paths, refs
from host.drives import discover
from host.errors import BadInput, TabulaError
from host.units import human_size
from station import operator
from station.certify import certify_job, ensure_station_key, settings_for
from station.console import ProgressPrinter, follow, show_plan, summary
from station.destroy import destroy_job
from station.errors import Refused
from station.i18n import _, current_language, tr
from station.jobs import EraseOptions, create_job, find_job, find_jobs, plan_job, plan_purge_job, spawn
from station.options import EXIT_OK, EXIT_REFUSED, WorkerOptions, exit_code_for
from station.sync import lots
from station.words import local_time, lot_check_words, media_words, method_line, outcome_word

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
        print(
            _("no drives found")
            + ("" if args.include_loop else " " + _("(loop devices are hidden: --include-loop)"))
        )
        return EXIT_OK
    head = (_("DEVICE"), _("SIZE"), _("TYPE"), _("TRANSPORT"), _("MODEL"), _("SERIAL"), _("STATUS"))
    print(f"{head[0]:<14} {head[1]:>10} {head[2]:<9} {head[3]:<9} {head[4]:<22} {head[5]:<20} {head[6]}")
    for e in entries:
        i = e.info
        status = (
            _("may be erased")
            if e.protection.allowed
            else _("PROTECTED: {why}").format(why="; ".join(tr(r.message) for r in e.protection.reasons))
        )
        print(
            f"{i.path:<14} {human_size(i.size_bytes, current_language()):>10} {media_words(i.media_type)[:9]:<9} "
            f"{i.transport:<9} {(i.model or '-')[:22]:<22} {(i.serial or '-')[:20]:<20} {status}"
        )
    return EXIT_OK


def cmd_methods(args: argparse.Namespace) -> int:
    for name in method_names():
        print(f"{name:<18} {method_line(name)}")
    return EXIT_OK


# -- erase -------------------------------------------------------------------------------------


def _what(plan: Any) -> str:
    """What a plan will do, in one phrase (for the confirmation prompt)."""
    overwrite = _("{method}: {n} pass(es), verification {verify}").format(
        method=plan.method, n=len(plan.passes), verify=VERIFY_WORDS.get(plan.verify, plan.verify)()
    )
    if plan.purge is None:
        return overwrite
    steps = ", ".join(tr(str(s.get("label"))) for s in plan.purge_steps)
    parts = [p for p in (steps, overwrite if plan.passes else "") if p]
    return _("policy {policy} ({steps})").format(policy=plan.purge["policy"], steps=_(" then ").join(parts))


VERIFY_WORDS = {
    "none": lambda: _("none"),
    "last": lambda: _("of the last pass"),
    "all": lambda: _("of every pass"),
}


def _confirm(
    entries: Sequence[Any], plans: Sequence[Any], stdin: TextIO, stdout: TextIO, *, from_stdin: bool = False
) -> bool:
    """Ask for each drive's serial (or its last 4 characters) before touching it; never unasked."""
    if not stdin.isatty() and not from_stdin:
        raise BadInput(
            _("refusing to erase without confirmation"),
            hint=_("run it in a terminal, or add --yes in scripts"),
        )
    for entry, plan in zip(entries, plans, strict=True):
        info = entry.info
        token = info.serial or info.kernel_name or Path(info.path).name
        stdout.write(
            "\n"
            + _("About to ERASE {path} ({model}, serial {serial}, {size}) with {what}.").format(
                path=info.path,
                model=info.model or _("unknown model"),
                serial=info.serial or "-",
                size=human_size(info.size_bytes, current_language()),
                what=_what(plan),
            )
            + "\n"
            + (
                _(
                    "All data on it will be destroyed.  Type its serial ({token!r}) or its last 4 characters to confirm: "
                )
                if info.serial
                else _(
                    "All data on it will be destroyed.  Type its name ({token!r}) or its last 4 characters to confirm: "
                )
            ).format(token=token)
        )
        stdout.flush()
        answer = stdin.readline().strip()
        if not answer or not (answer == token or (len(answer) >= 4 and token.endswith(answer))):
            stdout.write(_("Not confirmed: {path} will not be touched.").format(path=info.path) + "\n")
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
        raise BadInput(
            _("no device given"), hint=_("station erase /dev/sdX --method zero (see 'station drives')")
        )
    options = _erase_options(args)
    people = _who(args)
    machine = current_machine()
    entries = _resolve_drives(args, machine)
    plans = _plan(args, machine, entries, options, people)
    if args.plan and args.json:  # the plans as data, nothing else on stdout
        stdout.write(json.dumps([p.to_dict() for p in plans], indent=2) + "\n")
        return EXIT_OK
    shown = sys.stderr if args.json else stdout  # --json keeps stdout for JSON lines
    show_plan(entries, plans, shown)
    warn_about_lot(plans[0].operator.get("lot", ""), shown)
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


def _who(args: argparse.Namespace) -> operator.Who:
    """Who erases (the certificate's person); refused when nobody is named, unless only planning."""
    settings = Path(args.settings) if args.settings else paths.settings_file()
    people = operator.who(args.technician, args.organisation, settings)
    if not people.technician and not args.plan and not args.no_cert:
        raise BadInput(
            _("no technician name: a certificate names the person who erased the drive"),
            hint=_(
                'add --technician "Your Name" (and --organisation), or save them once in the settings '
                "(the TUI asks at first start; [certificate] technician = ... in {path})"
            ).format(path=settings),
        )
    return people


def _erase_options(args: argparse.Namespace) -> EraseOptions:
    if args.verify == "none" and args.sample:
        raise BadInput(
            _("--sample needs verification"), hint=_("use --verify last or --verify all with --sample")
        )
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
            raise BadInput(_("{dev} is given twice").format(dev=dev), hint=_("name each drive once"))
        seen.add(entry.info.identity)
        if not entry.allowed:
            raise Refused(
                _("{path} is protected and will not be erased: {why}").format(
                    path=entry.info.path, why="; ".join(tr(r) for r in entry.reasons)
                )
            )
        entries.append(entry)
    return entries


def _plan(
    args: argparse.Namespace,
    machine: Machine,
    entries: list[MachineDrive],
    options: EraseOptions,
    people: operator.Who,
) -> list[JobPlan]:
    """Every drive's plan, in memory.  Anything refused happens before a byte is written: bad input."""
    op = people.operator() | machine_refs(args) | ({"donor": args.donor} if args.donor else {})
    try:
        if not args.no_cert:  # the certificate's settings must hold now, not after the erasure
            settings_for(_worker_options(args))
        if args.policy:
            popts = PlanOptions(
                allow_usb_ata=args.allow_usb_ata, unfreeze_suspend=args.unfreeze_suspend, psid=args.psid
            )
            plans = [
                plan_purge_job(e.info, options, args.policy, machine.runner, popts, operator=op)[0]
                for e in entries
            ]
        else:
            plans = [plan_job(e.info, options, operator=op) for e in entries]
        if not args.plan:
            for e in entries:
                machine.data_path(e.info)  # a recorded machine without a disk image cannot erase
    except TabulaError as exc:
        raise BadInput(tr(exc.message), hint=tr(exc.hint) or None) from exc
    return plans


def warn_about_lot(lot: str, out: TextIO) -> None:
    """Ask the hub about the lot (when one is configured; at most a few seconds) and say what is wrong.

    Never refuses: an unknown or closed lot, or a hub that cannot be asked, is a warning, and the check
    is recorded (a pending one is asked again by the next sync).
    """
    if not lot:
        return
    check = lots.check_lot(lot, paths.home())
    words = lot_check_words(check.reference, check.state, check.detail) if check is not None else None
    if words:
        out.write(_("Warning: {what}").format(what=words) + "\n")


def machine_refs(args: argparse.Namespace) -> dict[str, str]:
    """``--lot`` and ``--asset`` (when the command has them) as a plan's operator fields, refused with
    the reason when they are not a lot reference / an asset number (nothing written: exit 2)."""
    lot = refs.clean(getattr(args, "lot", None))
    asset = refs.clean(getattr(args, "asset", None))
    for option, value, problem in (
        ("--lot", lot, refs.lot_problem(lot) if lot else None),
        ("--asset", asset, refs.asset_problem(asset)),
    ):
        if problem is not None:
            raise BadInput(
                _("{option} {value!r}: {why}").format(option=option, value=value[:80], why=tr(problem)),
                # station autorun takes a lot but no asset number (one bench, many machines)
                hint=_("e.g. --lot LOT-2026-03 --asset PC-0173")
                if hasattr(args, "asset")
                else _("e.g. --lot LOT-2026-03"),
            )
    return {k: v for k, v in (("lot", lot), ("asset_number", asset)) if v}


def _resume(args: argparse.Namespace, jobs_root: Path, stdout: TextIO) -> int:
    job_dir = find_job(jobs_root, args.resume)
    state = derive(job_dir)
    if state.alive:
        raise BadInput(
            _("job {job} is still running (pid {pid})").format(
                job=state.plan.job_id, pid=state.worker and state.worker["pid"]
            )
        )
    if state.end_event in ("finished", "failed"):
        raise BadInput(
            _("job {job} is already over ({outcome})").format(
                job=state.plan.job_id, outcome=outcome_word(state.outcome.value)
            ),
            hint=_("start a new erase of the drive instead"),
        )
    if state.plan.drive.identity.startswith("path:"):
        # No serial, no WWN, no backing file: after a replug another drive of the same size could
        # sit at that path, and a resume would certify a drive it never wrote from the start.
        raise BadInput(
            _("{path} has no serial or WWN: Tabula cannot prove it is the same drive").format(
                path=state.plan.drive.path
            ),
            hint=_("start a new erase of the drive instead of resuming"),
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
            when = local_time(r["created_at"]) if r["created_at"] != "?" else "?"
            print(
                f"{r['job'][:8]}  {when:<16}  {r['device']:<12} {r['method']:<16} {outcome_word(r['outcome'])}"
            )
    return EXIT_OK


def cmd_certify(args: argparse.Namespace) -> int:
    """Issue (or re-issue) the certificate of a finished or interrupted job from its journal."""
    jobs_root = Path(args.job_dir) if args.job_dir else paths.jobs_dir()
    job_dir = find_job(jobs_root, args.job)
    state = derive(job_dir)
    if state.outcome is Outcome.RUNNING:
        raise BadInput(_("job {job} is still running").format(job=state.plan.job_id))
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
    _add_machine_args(p)
    p.add_argument("--donor", metavar="NAME", help="who donated the machine (certificate 'source')")
    _add_people_args(p)
    p.set_defaults(func=cmd_erase)


def _add_machine_args(p: Any) -> None:
    p.add_argument(
        "--lot",
        metavar="REF",
        help="the donation lot of the machine (e.g. LOT-2026-03; signed in the record)",
    )
    p.add_argument(
        "--asset", metavar="NUMBER", help="property / asset number of the donated machine (certificate)"
    )


def _add_people_args(p: Any) -> None:
    p.add_argument(
        "--technician", metavar="NAME", help="who erases (the certificate's person; default: the settings)"
    )
    p.add_argument(
        "--organisation", metavar="NAME", help="the technician's organisation (default: the settings)"
    )


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
    _add_destroy_parser(sub)


def _add_destroy_parser(sub: Any) -> None:
    p = sub.add_parser(
        "destroy",
        help="record the physical destruction of a drive whose erasure failed (signed destruction record)",
    )
    p.add_argument("job", help="the failed job: its id (or a prefix) or its directory")
    p.add_argument("--method", required=True, choices=DESTRUCTION_METHODS, help="how the drive was destroyed")
    p.add_argument("--by", required=True, metavar="NAME", help="who destroyed it")
    p.add_argument("--witness", default="", metavar="NAME", help="who saw it done (optional)")
    p.add_argument(
        "--photo", metavar="PATH", help="a photograph of the destroyed drive (its SHA-256 is signed)"
    )
    p.add_argument("--at", metavar="TIME", help="when (ISO 8601, e.g. 2026-11-29T14:05:00Z; default now)")
    p.add_argument("--notes", default="", help="anything worth keeping with the record")
    _add_machine_args(p)
    p.add_argument("--job-dir", help="where job journals live (default $TABULA_HOME/jobs)")
    p.add_argument("--lang", choices=("en", "fr"), default=os.environ.get("TABULA_LANG") or None)
    p.add_argument("--json", action="store_true", help="print the record's id and files as JSON")
    p.set_defaults(func=cmd_destroy)


def cmd_destroy(args: argparse.Namespace) -> int:
    """Sign the destruction record of a failed job's drive (NIST SP 800-88 Destroy)."""
    jobs_root = Path(args.job_dir) if args.job_dir else paths.jobs_dir()
    job_dir = find_job(jobs_root, args.job)
    machine = machine_refs(args)
    warn_about_lot(machine.get("lot", ""), sys.stderr if args.json else sys.stdout)
    done = destroy_job(
        job_dir,
        method=args.method,
        performed_by=args.by,
        witness=args.witness,
        photo=args.photo,
        destroyed_at=_utc_time(args.at) if args.at else None,
        notes=args.notes,
        lang=args.lang,
        lot=machine.get("lot"),
        asset_number=machine.get("asset_number"),
    )
    if args.json:
        print(
            json.dumps(
                {
                    "record_id": done.record_id,
                    "sequence": done.sequence,
                    "files": [str(p) for p in done.paths],
                }
            )
        )
        return EXIT_OK
    if done.already:
        print(_("This drive's destruction was already recorded:"))
    else:
        print(_("Destruction recorded and signed (number {n} of this station):").format(n=done.sequence))
    for p in done.paths:
        print(f"  {p}")
    return EXIT_OK


def _utc_time(text: str) -> str:
    """A time given on the command line, as the records write it (UTC, ``...Z``)."""
    try:
        out = utc(text)
    except TabulaError as exc:
        raise BadInput(
            _("--at: not a date and time: {text}").format(text=text), hint=_("e.g. 2026-11-29T14:05:00Z")
        ) from exc
    assert out is not None
    return out


def erase_args(argv: Sequence[str]) -> argparse.Namespace:
    """``station erase ARGV...`` parsed (``station demo --cli`` runs the erase code path with it)."""
    parser = argparse.ArgumentParser(prog="station")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["erase", *argv])
