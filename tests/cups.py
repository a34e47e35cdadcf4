"""A private CUPS scheduler with a cups-pdf queue, for tests that really print.

The test's own ``cupsd`` (its own configuration, spool and socket under a temporary directory; never
the machine's scheduler), one queue whose backend is cups-pdf, and the directory where cups-pdf writes
each printed job as a PDF.  Clients reach it through ``CUPS_SERVER`` (the socket path), which ``lp``
reads.  cups-pdf reads its per-queue configuration from ``/etc/cups/cups-pdf-<queue>.conf`` (a path
fixed at build time): the fixture writes one for its uniquely named queue and removes it afterwards.

Needs the Debian packages cups, cups-client and printer-driver-cups-pdf (``./dev`` installs them) and
root (cups-pdf runs as root under cupsd).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PPD = Path("/usr/share/ppd/cups-pdf/CUPS-PDF_opt.ppd")
BACKEND = Path("/usr/lib/cups/backend/cups-pdf")


def available() -> str | None:
    """Why a private cups-pdf printer cannot run here (None: it can)."""
    for tool in ("cupsd", "lp", "lpadmin", "lpstat"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install cups cups-client)"
    if not BACKEND.exists() or not PPD.exists():
        return "cups-pdf is not installed (apt-get install printer-driver-cups-pdf)"
    if os.geteuid() != 0:
        return "cups-pdf runs as root under cupsd: run the tests as root"
    return None


@dataclass(frozen=True)
class Printer:
    queue: str
    socket: Path
    out: Path  # where cups-pdf writes the printed PDFs

    def env(self) -> dict[str, str]:
        return {"CUPS_SERVER": str(self.socket)}

    def pending(self) -> bool:
        """Whether the queue still has jobs not completed (cups-pdf may be writing one)."""
        env = {**os.environ, **self.env()}
        out = subprocess.run(["lpstat", "-o", self.queue], env=env, capture_output=True, text=True).stdout
        return bool(out.strip())

    def printed(self, count: int, timeout: float = 60.0) -> list[Path]:
        """Wait until ``count`` jobs were printed and completed; their PDFs in name order."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = sorted(self.out.glob("*.pdf"))
            if len(found) >= count and not self.pending():
                return found
            time.sleep(0.2)
        env = {**os.environ, **self.env()}
        queue = subprocess.run(["lpstat", "-o", self.queue], env=env, capture_output=True, text=True)
        raise AssertionError(
            f"{len(list(self.out.glob('*.pdf')))} of {count} jobs printed in {self.out}; queue: {queue}"
        )


def _config(root: Path) -> tuple[Path, Path]:
    for d in ("spool", "cache", "state", "run", "log", "ppd"):
        (root / d).mkdir(parents=True, exist_ok=True)
    files = root / "cups-files.conf"
    files.write_text(
        f"ServerRoot {root}\nRequestRoot {root}/spool\nCacheDir {root}/cache\nStateDir {root}/state\n"
        f"ServerBin /usr/lib/cups\nDataDir /usr/share/cups\nAccessLog {root}/log/access_log\n"
        f"ErrorLog {root}/log/error_log\nPageLog {root}/log/page_log\nUser lp\nGroup lp\n"
        "SystemGroup root\nFileDevice No\n"
    )
    conf = root / "cupsd.conf"
    conf.write_text(
        f"Listen {root}/run/cups.sock\nLogLevel warn\nWebInterface No\nBrowsing Off\n"
        "<Location />\n  Order allow,deny\n  Allow all\n</Location>\n"
        "<Location /admin>\n  Order allow,deny\n  Allow all\n</Location>\n"
    )
    return conf, files


@contextmanager
def cups_pdf_printer() -> Iterator[Printer]:
    """Start a private cupsd with one cups-pdf queue; stop it and remove its files afterwards.

    Its directory is a fresh one under /tmp readable by the ``lp`` user cupsd runs its filters as
    (pytest's own temporary directories are private to root: the filters would stall on them).
    """
    root = Path(tempfile.mkdtemp(prefix="tabula-cups-"))
    os.chmod(root, 0o755)
    try:
        with _cupsd(root) as printer:
            yield printer
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def _cupsd(root: Path) -> Iterator[Printer]:
    conf, files = _config(root)
    queue = f"tabula-test-{uuid.uuid4().hex[:8]}"
    out = root / "out"
    out.mkdir()
    pdf_conf = Path(f"/etc/cups/cups-pdf-{queue}.conf")
    pdf_conf.write_text(f"Out {out}\nAnonDirName {out}\nUserUMask 0000\n")
    daemon = subprocess.Popen(["cupsd", "-f", "-c", str(conf), "-s", str(files)], stdout=subprocess.DEVNULL)
    printer = Printer(queue, root / "run" / "cups.sock", out)
    env = {**os.environ, **printer.env()}
    try:
        _wait_for(lambda: subprocess.run(["lpstat", "-r"], env=env, capture_output=True).returncode == 0)
        add = ["lpadmin", "-p", queue, "-E", "-v", f"cups-pdf:/{queue}", "-P", str(PPD)]
        # cupsd answers lpstat before it accepts administration: try for a while.
        _wait_for(lambda: subprocess.run(add, env=env, capture_output=True).returncode == 0)
        yield printer
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
        pdf_conf.unlink(missing_ok=True)


def _wait_for(ready: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("the private cupsd did not start")
