"""``station diagnose``: the diagnostics subcommand.  ``station/cli.py`` wires :func:`register`.

Exit codes: 0 every verdict is "reuse"; 3 something needs repair or recycling; 5 nothing bad was
found but something could not be checked ("unknown"); 4 cancelled; 2 bad input (rule file,
bounds, device); 1 internal error.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import signal
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from diagnostics.diagnose import Bounds, DiagnosticReport, diagnose
from diagnostics.errors import BadDevice, DiagnosticsError
from diagnostics.grading import load_rules
from diagnostics.health import DriveHealth
from diagnostics.inventory import Inventory
from host.errors import TabulaError
from host.refs import check_asset, check_lot, clean
from host.runner import Runner, SubprocessRunner
from host.units import human_size

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_NEEDS_WORK = 3
EXIT_CANCELLED = 4
EXIT_UNKNOWN = 5


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "diagnose",
        help="SMART, inventory and quick hardware tests, with a reuse / repair / recycle verdict",
        description=(
            "Read SMART health of every drive, inventory the machine, run bounded quick tests "
            "(CPU, RAM, drive read speed, battery) and grade the results with a rule file. "
            "Nothing is written to any drive. Exit codes: 0 reuse, 3 repair or recycle, "
            "5 unknown (something could not be checked), 4 cancelled, 2 bad input."
        ),
    )
    p.add_argument("--drives-only", action="store_true", help="only drives: SMART and read test")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick", dest="mode", action="store_const", const="quick", help="short bounded tests (default)"
    )
    mode.add_argument(
        "--full",
        dest="mode",
        action="store_const",
        const="full",
        help="longer tests and a SMART short self-test",
    )
    p.set_defaults(mode="quick")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--device", action="append", metavar="DEV", help="diagnose only this drive (repeatable)")
    p.add_argument("--rules", metavar="FILE", help="grading rule file (TOML); default: the shipped rules")
    p.add_argument("--no-read-test", action="store_true", help="skip the sequential read speed test")
    p.add_argument(
        "--self-test",
        choices=["none", "short", "long"],
        help="SMART self-test to run (default: short with --full)",
    )
    p.add_argument("--lot", metavar="REF", help="the donation lot of this machine (e.g. LOT-2026-03)")
    p.add_argument("--asset", metavar="NUMBER", help="the machine's property / asset number")
    p.set_defaults(func=run)


def _check_device(path: str) -> str | None:
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    if not stat.S_ISBLK(st.st_mode):
        return f"{path} is not a block device"
    return None


def _fmt_bytes(n: int | None) -> str:
    return human_size(n) if n is not None else "?"


def print_human(report: DiagnosticReport, out: TextIO) -> None:
    if report.lot or report.asset_number:
        out.write(f"Lot {report.lot or '-'}, asset number {report.asset_number or '-'}\n")
    if report.inventory is not None:
        out.write("Machine\n")
        out.writelines(_machine_lines(report.inventory))
        out.writelines(_device_lines(report.inventory))
    out.write("Drives\n")
    if not report.drives:
        out.write("  none found\n")
    for d in report.drives:
        out.writelines(_drive_lines(d))
    out.write("Tests\n")
    for t in report.tests:
        out.write(f"  {t.name:<20} {t.status:<8} {t.reason}\n")
    if report.machine is not None:
        out.write(f"Machine verdict: {report.machine.verdict}\n")
        out.writelines(f"  {r}\n" for r in report.machine.reasons)
        if report.machine.unknowns:
            out.write(f"  unknown: {', '.join(report.machine.unknowns)}\n")
    if report.cancelled:
        out.write("Cancelled: the report is incomplete.\n")


def _machine_lines(inv: Inventory) -> Iterator[str]:
    s, c, m = inv.system, inv.cpu, inv.memory
    yield f"  {s.manufacturer or '?'} {s.model or '?'}  serial {s.serial or '?'}  chassis {s.chassis_type or '?'}\n"
    yield f"  CPU  {c.model or '?'}  {c.cores or '?'} cores / {c.threads or '?'} threads"
    yield f"  {c.max_mhz or c.current_mhz or '?'} MHz\n"
    modules = ", ".join(
        f"{x.locator or '?'}: {_fmt_bytes(x.size_bytes)} {x.type or ''}".strip() for x in m.modules or []
    )
    yield f"  RAM  {_fmt_bytes(m.total_bytes)}" + (f" ({modules})" if m.modules else "") + "\n"


def _device_lines(inv: Inventory) -> Iterator[str]:
    for g in inv.gpus:
        yield f"  GPU  {g.name or g.vendor_id + ':' + g.device_id}\n"
    for n in inv.network:
        if n.physical:
            yield f"  NIC  {n.name} {n.mac or '?'}\n"
    for b in inv.batteries:
        wear = b.wear_percent if b.wear_percent is not None else "?"
        yield f"  Battery {b.name}: wear {wear} %, cycles {b.cycle_count}\n"
    for disp in inv.displays:
        yield f"  Display {disp.connector}: {disp.name or disp.manufacturer_id or '?'} {disp.preferred_mode or ''}\n"
    for k, why in inv.unavailable.items():
        yield f"  (not available: {k}: {why})\n"


def _drive_lines(d: DriveHealth) -> Iterator[str]:
    sm = d.smart
    yield f"  {d.device}  {sm.model or '?'}  serial {sm.serial or '?'}  SMART {sm.status.upper()}  -> {d.verdict.verdict}\n"
    for r in (*sm.reasons, *d.verdict.reasons):
        yield f"      {r}\n"
    if d.verdict.unknowns:
        yield f"      unknown: {', '.join(d.verdict.unknowns)}\n"


def _devices(args: argparse.Namespace, check: bool) -> list[str] | None:
    devices: list[str] | None = args.device
    for dev in (devices or []) if check else []:
        problem = _check_device(dev)
        if problem:
            raise BadDevice(problem)
    return devices


def _bounds(args: argparse.Namespace, bounds: Bounds | None) -> Bounds:
    b = bounds or Bounds.for_mode(args.mode)
    if args.self_test is None:
        return b
    return dataclasses.replace(b, self_test=None if args.self_test == "none" else args.self_test)


@contextlib.contextmanager
def _cancel_on_sigint(cancel: threading.Event) -> Iterator[None]:
    """Ctrl-C stops the diagnosis between (and inside) its steps: the report says it is incomplete."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        cancel.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _machine(args: argparse.Namespace) -> tuple[str | None, str]:
    """``--lot`` and ``--asset`` as the report holds them, checked before anything runs."""
    lot = clean(getattr(args, "lot", None)) or None
    asset = clean(getattr(args, "asset", None))
    if lot is not None:
        check_lot(lot)
    return lot, check_asset(asset)


def exit_code(report: DiagnosticReport) -> int:
    if report.cancelled:
        return EXIT_CANCELLED
    return {"reuse": EXIT_OK, "unknown": EXIT_UNKNOWN}.get(report.overall, EXIT_NEEDS_WORK)


def run(
    args: argparse.Namespace,
    *,
    runner: Runner | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    sys_root: Path = Path("/sys"),
    proc_root: Path = Path("/proc"),
    bounds: Bounds | None = None,
    check_devices: bool = True,
) -> int:
    """Run ``station diagnose`` with parsed ``args``; returns the exit code.

    The keyword arguments let tests replay a recorded machine (``runner``, ``sys_root``) and
    shrink the bounds; the command line never sets them.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        rules = load_rules(args.rules)
        devices = _devices(args, check_devices)
        lot, asset = _machine(args)
    except TabulaError as exc:
        err.write(f"error: {exc.diagnostics()}\n")
        return EXIT_BAD_INPUT

    def progress(kind: str, data: dict[str, Any]) -> None:
        if not args.json and kind == "step":
            err.write(f"... {data.get('name')} {data.get('device', '')}\n")

    cancel = threading.Event()
    try:
        with _cancel_on_sigint(cancel):
            report = diagnose(
                runner or SubprocessRunner(),
                mode=args.mode,
                drives_only=args.drives_only,
                devices=devices,
                rules=rules,
                bounds=_bounds(args, bounds),
                read_test=not args.no_read_test,
                sys_root=sys_root,
                proc_root=proc_root,
                cancel=cancel,
                on_event=progress,
                lot=lot,
                asset_number=asset,
            )
    except DiagnosticsError as exc:
        err.write(f"error: {exc.diagnostics()}\n")
        return EXIT_BAD_INPUT
    if args.json:
        json.dump(report.to_dict(), out, indent=2)
        out.write("\n")
    else:
        print_human(report, out)
    return exit_code(report)
