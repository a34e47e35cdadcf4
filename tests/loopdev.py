"""Loop devices over files that the tests create themselves (never a disk of this machine)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path


def have_root() -> bool:
    return os.geteuid() == 0 and Path("/dev/loop-control").exists()


def attach(backing: Path, *, sector_size: int = 512, direct_io: bool = False, read_only: bool = False) -> str:
    argv = ["losetup", "--find", "--show", "--sector-size", str(sector_size)]
    if direct_io:
        argv.append("--direct-io=on")
    if read_only:
        argv.append("--read-only")
    argv.append(str(backing))
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


def detach(dev: str) -> None:
    subprocess.run(["losetup", "--detach", dev], check=False, capture_output=True)


@contextlib.contextmanager
def loop_device(
    directory: Path,
    size: int,
    *,
    name: str = "disk.img",
    sector_size: int = 512,
    fill: bytes | None = None,
    direct_io: bool = False,
    read_only: bool = False,
) -> Iterator[str]:
    """A loop device over a new sparse file of ``size`` bytes (optionally filled with a byte)."""
    backing = directory / name
    with open(backing, "wb") as f:
        if fill is not None:
            chunk = fill * (1 << 20)
            left = size
            while left > 0:
                n = min(left, len(chunk))
                f.write(chunk[:n])
                left -= n
        else:
            f.truncate(size)
    dev = attach(backing, sector_size=sector_size, direct_io=direct_io, read_only=read_only)
    try:
        yield dev
    finally:
        detach(dev)
