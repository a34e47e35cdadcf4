"""``station demo``: the whole job on file-backed virtual drives, without risking a real disk.

It creates a few files filled with fake "donor data" (a secret sentence repeated, including in the
very last sector) and attaches them as loop devices (root is needed for that): a mix of sizes, a
drive with 4096-byte sectors, and one *failing* drive whose backing file lives on a tmpfs too small
to hold it, so part of it cannot be written (the kernel answers EIO, as a drive with bad sectors
would).  Then:

* ``station demo`` opens the TUI on those drives: select, choose a method, read the plan, confirm,
  watch the progress, read the result and the certificate.
* ``station demo --cli`` runs the same job headless (the code path of ``station erase``), then
  verifies the certificates offline as an auditor would.

Afterwards every backing file is scanned for the secret.  The failing drive must end FAILED with
its unwritable ranges listed, and its certificate must say it was NOT erased: the demo checks that
too.  Loop devices are detached and the tmpfs unmounted at the end; files, journals and
certificates stay in the demo directory.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from certs import cli as certs_cli
from erase.journal import derive
from host import paths
from host.errors import BadInput
from station.commands import cmd_erase, erase_args
from station.jobs import find_jobs

SECRET = b"DONOR-SECRET: bank account FR76 3000 6000 0112 3456 7890 189, password hunter2. "
MiB = 1 << 20


@dataclass(frozen=True)
class DemoDrive:
    name: str
    size: int
    sector: int
    failing: bool = False  # backed by a tmpfs smaller than the drive: the end cannot be written


DEMO_DRIVES = (
    DemoDrive("donor-laptop.img", 64 * MiB, 512),
    DemoDrive("donor-desktop.img", 96 * MiB + 7 * 512, 512),
    DemoDrive("donor-4kn.img", 48 * MiB, 4096),
    DemoDrive("donor-failing.img", 32 * MiB, 512, failing=True),
)
FAILING_ROOM = 20 * MiB  # what the failing drive's tmpfs can hold
FAILING_PLANTED = 16 * MiB  # secrets planted in its first 16 MiB


def plant(path: Path, size: int, sector: int, planted: int | None = None) -> None:
    """A drive full of recognisable secrets (first ``planted`` bytes), including its last sector."""
    block = (SECRET * (MiB // len(SECRET) + 1))[:MiB]
    limit = size if planted is None else planted
    with open(path, "wb") as f:
        f.truncate(size)
        left = limit
        while left:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n
        if planted is None:
            f.seek(size - sector)
            f.write((SECRET * (sector // len(SECRET) + 1))[:sector])


def count_secrets(path: Path) -> int:
    found = 0
    with open(path, "rb") as f:
        tail = b""
        while chunk := f.read(8 * MiB):
            data = tail + chunk
            found += data.count(SECRET[:32])
            tail = data[-31:]
    return found


def _run(argv: list[str]) -> None:
    subprocess.run(argv, check=True, capture_output=True)


@contextmanager
def loop_attached(path: Path, sector: int) -> Iterator[str]:
    out = subprocess.run(
        ["losetup", "--find", "--show", "--sector-size", str(sector), str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    dev = out.stdout.strip()
    try:
        yield dev
    finally:
        _run(["losetup", "--detach", dev])


@contextmanager
def small_tmpfs(mountpoint: Path, size: int) -> Iterator[Path]:
    mountpoint.mkdir(parents=True, exist_ok=True)
    _run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tabula-demo", str(mountpoint)])
    try:
        yield mountpoint
    finally:
        _run(["umount", "--lazy", str(mountpoint)])


def _prepare(
    base: Path, stack: ExitStack, drives: tuple[DemoDrive, ...]
) -> list[tuple[DemoDrive, Path, str]]:
    out = []
    for d in drives:
        if d.failing:
            media = stack.enter_context(small_tmpfs(base / "failing-media", FAILING_ROOM))
            path = media / d.name
            plant(path, d.size, d.sector, planted=FAILING_PLANTED)
            note = f"only {FAILING_ROOM // MiB} MiB of it can be written: it will FAIL"
        else:
            path = base / d.name
            plant(path, d.size, d.sector)
            note = "healthy"
        dev = stack.enter_context(loop_attached(path, d.sector))
        print(
            f"  {dev:<12} {d.name:<18} {d.size / MiB:7.1f} MiB  {d.sector}-byte sectors  "
            f"{count_secrets(path):5d} secrets planted  ({note})"
        )
        out.append((d, path, dev))
    return out


def run_demo(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        raise BadInput(
            "the demo attaches loop devices, which needs root", hint="run it as root: sudo station demo"
        )
    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="tabula-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    os.environ["TABULA_HOME"] = str(base / "state")
    print(f"Demo directory: {base}\nVirtual drives (loop devices over files):")
    drives = DEMO_DRIVES[: args.drives] if args.drives else DEMO_DRIVES
    with ExitStack() as stack:
        prepared = _prepare(base, stack, drives)
        if args.cli:
            code = _headless(args, [dev for _, _, dev in prepared])
        else:
            # Start-up time: `station demo --cli` runs without loading Textual.
            from station.tui.run import run as run_tui

            code = run_tui(jobs_root=paths.jobs_dir(), include_loop=True, lang=args.lang, demo=True)
        return max(code, _report(prepared, headless=args.cli))


def _headless(args: argparse.Namespace, devices: list[str]) -> int:
    argv = [*devices, "--method", args.method, "--verify", args.verify, "--include-loop", "--yes"]
    argv += ["--lang", args.lang or "en"]
    code = cmd_erase(erase_args(argv))
    audit = _audit()
    return 0 if code in (0, 3) and audit in (0, 1) else max(code, audit)


def _report(prepared: list[tuple[DemoDrive, Path, str]], *, headless: bool) -> int:
    """Scan the backing files; check that the station told the truth about each drive."""
    outcomes: dict[str, str] = {}
    for job in find_jobs(paths.jobs_dir()):
        state = derive(job)
        if state.plan.drive.backing_file:
            outcomes[state.plan.drive.backing_file] = state.outcome.value
    print("\nAfter the erase, every virtual drive is scanned for the planted secret:")
    lies = 0
    for d, path, _dev in prepared:
        n = count_secrets(path)
        outcome = outcomes.get(str(path), "not erased")
        print(f"  {d.name:<18} {outcome.upper():<12} {n:5d} secret(s) left")
        if outcome in ("verified", "unverified") and (n or d.failing):
            lies += 1
            print(
                f"  ^ station claimed success on {d.name} but it is not erased: this is a bug",
                file=sys.stderr,
            )
    if any(d.failing for d, _, _ in prepared) and headless:
        print(
            "\nThe failing drive could not be fully written: its job is FAILED, its unwritable ranges are in\n"
            "its record, and its signed certificate is a failure report that never verifies as an erasure."
        )
    return 1 if lies else 0


def _audit() -> int:
    """Verify the certificates offline, as an auditor would: trusting only the station's public key."""
    trust = paths.home() / "trust"
    trust.mkdir(parents=True, exist_ok=True)
    (trust / "station.pem").write_bytes((paths.keys_dir() / "station.pub.pem").read_bytes())
    print(f"\nAn auditor checks the signed certificates offline (trusting only {trust / 'station.pem'}):")
    print(f"  station verify --chain --trust {trust} {paths.certs_dir()}")
    return certs_cli.main(["verify", "--chain", "--trust", str(trust), str(paths.certs_dir())])


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo", help="erase file-backed virtual drives end to end, in the TUI or headless (root)"
    )
    p.add_argument("--cli", action="store_true", help="headless: the station erase code path, then an audit")
    p.add_argument("--dir", help="where to put the virtual drives (default: a new temp directory)")
    p.add_argument(
        "--drives", type=int, choices=range(1, len(DEMO_DRIVES) + 1), help="how many virtual drives"
    )
    p.add_argument("--method", default="dod-short", help="headless: overwrite method (default dod-short)")
    p.add_argument("--verify", choices=("none", "last", "all"), default="all", help="headless: verification")
    p.add_argument("--lang", choices=("en", "fr"), default=os.environ.get("TABULA_LANG"))
    p.set_defaults(func=run_demo)
