"""A FUSE filesystem that serves one disk image and injects faults into chosen byte ranges.

A loop device attached to ``MOUNT/disk.img`` turns these faults into real block-I/O errors seen by
the engine, through the real kernel paths (loop -> FUSE -> this process):

* ``{"op": "write", "mode": "eio", "start": a, "end": b}``: writes touching [a, b) fail with EIO;
* ``{"op": "read", "mode": "eio", ...}``: reads touching the range fail with EIO;
* ``{"op": "all", "mode": "eio", ...}``: everything fails (a drive that stopped answering);
* ``{"op": "write", "mode": "drop", ...}``: writes are acknowledged but the bytes inside the range are
  not stored (a lying drive); reads return the old data.

Faults are set at run time by writing a JSON list to ``MOUNT/ctl``.  The filesystem is mounted with
``direct_io`` so the kernel keeps no page cache for ``disk.img``: every read and write of the loop
device reaches this process (otherwise the loop device's buffered writes could be absorbed by a
cache and a fault would only show up, or not at all, at writeback time).

Run as a separate process (``python3 -m tests.faultfs BACKING MOUNTPOINT``) so that killing it is
also a way to make the "drive" vanish; :func:`fault_disk` does all of that for a test.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

IMAGE = "disk.img"
CTL = "ctl"


def _serve(backing: str, mountpoint: str) -> None:
    from fuse import FUSE, FuseOSError, Operations

    class FaultOps(Operations):  # type: ignore[misc]
        def __init__(self) -> None:
            self.fd = os.open(backing, os.O_RDWR)
            self.faults: list[dict[str, Any]] = []
            self.lock = threading.Lock()
            self.ctl_buf = b""

        def _hits(self, op: str, mode: str, offset: int, size: int) -> list[tuple[int, int]]:
            out = []
            for f in self.faults:
                if f["mode"] == mode and f["op"] in (op, "all"):
                    a, b = max(offset, f["start"]), min(offset + size, f["end"])
                    if a < b:
                        out.append((a, b))
            return out

        def getattr(self, path: str, fh: int | None = None) -> dict[str, int]:
            now = int(time.time())
            if path == "/":
                return {"st_mode": stat.S_IFDIR | 0o755, "st_nlink": 2, "st_mtime": now}
            if path == "/" + IMAGE:
                st = os.fstat(self.fd)
                return {
                    "st_mode": stat.S_IFREG | 0o600,
                    "st_nlink": 1,
                    "st_size": st.st_size,
                    "st_mtime": now,
                }
            if path == "/" + CTL:
                return {"st_mode": stat.S_IFREG | 0o600, "st_nlink": 1, "st_size": 0, "st_mtime": now}
            raise FuseOSError(errno.ENOENT)

        def readdir(self, path: str, fh: int) -> list[str]:
            return [".", "..", IMAGE, CTL]

        def open(self, path: str, flags: int) -> int:
            if path not in ("/" + IMAGE, "/" + CTL):
                raise FuseOSError(errno.ENOENT)
            return 0

        def truncate(self, path: str, length: int, fh: int | None = None) -> None:
            if path == "/" + CTL:
                return
            raise FuseOSError(errno.EPERM)

        def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
            if path == "/" + CTL:
                return json.dumps(self.faults).encode()[offset : offset + size]
            if self._hits("read", "eio", offset, size):
                raise FuseOSError(errno.EIO)
            return os.pread(self.fd, size, offset)

        def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
            if path == "/" + CTL:
                with self.lock:
                    self.ctl_buf = self.ctl_buf[:offset] + data
                    try:
                        faults = json.loads(self.ctl_buf)
                    except ValueError:
                        return len(data)  # incomplete JSON: wait for the rest
                    self.faults = faults
                    self.ctl_buf = b""
                return len(data)
            if self._hits("write", "eio", offset, len(data)):
                raise FuseOSError(errno.EIO)
            dropped = sorted(self._hits("write", "drop", offset, len(data)))
            pos = offset
            for a, b in [*dropped, (offset + len(data), offset + len(data))]:
                if a > pos:
                    os.pwrite(self.fd, data[pos - offset : a - offset], pos)
                pos = max(pos, b)
            return len(data)

        def flush(self, path: str, fh: int) -> None:
            return None

        def fsync(self, path: str, datasync: int, fh: int) -> None:
            if any(f["op"] == "all" and f["mode"] == "eio" for f in self.faults):
                raise FuseOSError(errno.EIO)  # a drive that stopped answering fails its cache flush too
            os.fsync(self.fd)

        def release(self, path: str, fh: int) -> None:
            return None

    FUSE(FaultOps(), mountpoint, foreground=True, nothreads=False, direct_io=True)


class FaultDisk:
    """A running fault-injecting FUSE mount; see :func:`fault_disk`."""

    def __init__(self, backing: Path, mountpoint: Path, proc: subprocess.Popen[bytes]) -> None:
        self.backing = backing
        self.mountpoint = mountpoint
        self.proc = proc

    @property
    def image(self) -> Path:
        return self.mountpoint / IMAGE

    def set_faults(self, faults: list[dict[str, Any]]) -> None:
        fd = os.open(self.mountpoint / CTL, os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, json.dumps(faults).encode())
        finally:
            os.close(fd)

    def kill(self) -> None:
        """Kill the FUSE process: every later I/O on the image fails (ENOTCONN, EIO through a loop)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)


def have_fuse() -> bool:
    if not Path("/dev/fuse").exists():
        return False
    try:
        import fuse  # noqa: F401
    except (ImportError, OSError):  # fusepy missing, or libfuse.so.2 missing (EnvironmentError)
        return False
    return True


@contextlib.contextmanager
def fault_disk(directory: Path, size: int, *, fill: bytes | None = None) -> Iterator[FaultDisk]:
    """A ``size``-byte backing file served through a fault-injecting FUSE mount under ``directory``."""
    backing = directory / "fault-backing.img"
    with open(backing, "wb") as f:
        if fill is None:
            f.truncate(size)
        else:
            f.write(fill * size)
    mnt = directory / "fault-mnt"
    mnt.mkdir()
    repo = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.faultfs", str(backing), str(mnt)],
        cwd=repo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while not os.path.ismount(mnt):
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"faultfs exited with {proc.returncode}: {err}")
            if time.monotonic() > deadline:
                raise RuntimeError("faultfs did not mount within 20 s")
            time.sleep(0.05)
        yield FaultDisk(backing, mnt, proc)
    finally:
        if proc.poll() is None:
            subprocess.run(["fusermount", "-u", "-z", str(mnt)], check=False, capture_output=True)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        else:
            subprocess.run(["fusermount", "-u", "-z", str(mnt)], check=False, capture_output=True)
        if proc.stderr:
            proc.stderr.close()


if __name__ == "__main__":
    _serve(sys.argv[1], sys.argv[2])
