"""``station demo``: the whole job on file-backed virtual drives, without risking a real disk.

It creates a few files filled with fake "donor data" (a secret sentence repeated, including in the
very last sector), attaches them as loop devices (root is needed for that), erases them with the
same code path as ``station erase`` (one worker process per drive, journals, verification,
signed certificates), then scans every backing file to show that the secret is gone.  The loop
devices are detached at the end; files, journals and certificates stay under the demo directory.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from station.errors import BadInput

SECRET = b"DONOR-SECRET: bank account FR76 3000 6000 0112 3456 7890 189, password hunter2. "

# name, size in bytes, logical sector size: a mix like a real bench (odd size, 4Kn drive)
DEMO_DRIVES = (
    ("donor-laptop.img", 64 << 20, 512),
    ("donor-desktop.img", (96 << 20) + 7 * 512, 512),
    ("donor-4kn.img", 48 << 20, 4096),
)


def plant(path: Path, size: int, sector: int) -> None:
    """A drive full of recognisable secrets, including its first and last sector."""
    block = (SECRET * ((1 << 20) // len(SECRET) + 1))[: 1 << 20]
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n
        f.seek(size - sector)
        f.write((SECRET * (sector // len(SECRET) + 1))[:sector])


def count_secrets(path: Path) -> int:
    found = 0
    with open(path, "rb") as f:
        tail = b""
        while chunk := f.read(8 << 20):
            data = tail + chunk
            found += data.count(SECRET[:32])
            tail = data[-31:]
    return found


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
        subprocess.run(["losetup", "--detach", dev], check=True)


def run_demo(args: argparse.Namespace) -> int:
    from station.cli import cmd_erase

    if os.geteuid() != 0:
        raise BadInput(
            "the demo attaches loop devices, which needs root", hint="run it as root: sudo station demo"
        )
    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="tabula-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TABULA_HOME", str(base / "state"))
    print(f"Demo directory: {base}")
    files = []
    for name, size, sector in DEMO_DRIVES[: args.drives]:
        path = base / name
        plant(path, size, sector)
        files.append((path, size, sector))
        print(
            f"  virtual drive {name}: {size} bytes, {sector}-byte sectors, {count_secrets(path)} secrets planted"
        )
    with ExitStack() as stack:
        devices = [
            stack.enter_context(loop_attached(p, s)) for p, s, _ in ((f[0], f[2], None) for f in files)
        ]
        erase_args: dict[str, Any] = dict(
            devices=devices,
            method=args.method,
            verify=args.verify,
            sample=False,
            rounds=1,
            final_blank=False,
            pattern=None,
            block_size=4 << 20,
            on_error="continue",
            include_loop=True,
            yes=True,
            confirm_from_stdin=False,
            json=False,
            plan=False,
            resume=None,
            job_dir=None,
            cert_dir=None,
            key_dir=None,
            no_cert=False,
            settings=None,
            lang=args.lang,
        )
        code = cmd_erase(argparse.Namespace(**erase_args))
    print("\nAfter the erase, scanning every virtual drive for the planted secret:")
    left = 0
    for path, _size, _sector in files:
        n = count_secrets(path)
        left += n
        print(f"  {path.name}: {n} secret(s) found {'(GONE)' if n == 0 else '(STILL THERE!)'}")
    if left and code == 0:
        print("station: the erase reported success but secrets remain: this is a bug", file=sys.stderr)
        return 1
    return max(code, _audit())


def _audit() -> int:
    """Verify the certificates offline, as an auditor would: trusting only the station's public key."""
    from station import paths
    from station.cli import main as station_main

    trust = paths.home() / "trust"
    trust.mkdir(parents=True, exist_ok=True)
    (trust / "station.pem").write_bytes((paths.keys_dir() / "station.pub.pem").read_bytes())
    print(f"\nAn auditor checks the signed certificates offline (trusting only {trust / 'station.pem'}):")
    print(f"  station verify --chain --trust {trust} {paths.certs_dir()}")
    return station_main(["verify", "--chain", "--trust", str(trust), str(paths.certs_dir())])


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="erase file-backed virtual drives end to end (needs root)")
    p.add_argument("--dir", help="where to put the virtual drives (default: a new temp directory)")
    p.add_argument("--drives", type=int, default=len(DEMO_DRIVES), choices=range(1, len(DEMO_DRIVES) + 1))
    p.add_argument("--method", default="dod-short")
    p.add_argument("--verify", choices=("none", "last", "all"), default="all")
    p.add_argument("--lang", choices=("en", "fr"), default=os.environ.get("TABULA_LANG", "en"))
    p.set_defaults(func=run_demo)
