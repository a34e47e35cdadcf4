"""The live image's console session, from the autologin to the station TUI, in one Python process.

``/usr/local/sbin/tabula-session`` (tty1 and ttyS0) runs this with the station's interpreter.  It used to
start Python twice (``station.autorun --print-env``, then ``station``), each paying the interpreter's
start-up and the station's imports again: seconds under emulation, and on slow machines.  Here:

1. the station's start-up modules are imported first, while tabula-data.service may still be waiting for
   the drives and mounting the persistence partition (imports read the system image only, never
   ``$TABULA_HOME``);
2. nothing else happens before the persistence verdict (``/run/tabula/persistence``, written by
   tabula-mount-data whatever the outcome): a ``TABULA-DATA`` partition is protected from erasure because
   it is mounted, so the station must not look at the drives before;
3. the ``tabula.*`` kernel parameters are applied to the environment (as ``--print-env`` did) and the
   console keymap is loaded on tty1;
4. the headless erase runs when the command line asks for it (``station autorun --from-cmdline``, in its
   own process, as before);
5. the TUI starts (``station.cli.main``).

``--check`` imports what the session needs and exits: the image build runs it, so a renamed station
module fails the build, not the boot.  With ``TABULA_TRACE_FILE`` set (kernel parameter
``tabula-trace=boot``, QEMU boot test) each step is stamped with ``/proc/uptime``; with
``TABULA_TRACE_TTY_FD`` the console is that descriptor, and descriptor 2 is left to
``python -X importtime`` (its report).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from pathlib import Path

PERSISTENCE = Path("/run/tabula/persistence")
#: tabula-data.service gives up after 120 s; after that the session goes on, and says so.
PERSISTENCE_WAIT_S = 150.0
#: What the TUI's first screen needs, imported before waiting for the persistence partition.  At boot a
#: name that no longer exists is skipped (the station's own start-up reports a real import error); the
#: build's --check fails on it.
STARTUP_MODULES = ("station.bootparams", "station.cli", "station.tui.run")


def stamp(step: str) -> None:
    trace = os.environ.get("TABULA_TRACE_FILE")
    if trace:
        uptime = Path("/proc/uptime").read_text().split()[0]
        with open(trace, "a") as f:
            f.write(f"{uptime} {step}\n")


def use_console_fd() -> None:
    """Under ``-X importtime`` the report owns descriptor 2: the session and the TUI write to the console's."""
    fd = os.environ.pop("TABULA_TRACE_TTY_FD", "")
    if fd:
        console = os.fdopen(int(fd), "w", buffering=1)
        sys.stderr = console
        sys.__stderr__ = console  # type: ignore[misc]  # Textual draws on sys.__stderr__


def preimport(*, strict: bool = False) -> None:
    """Import ``STARTUP_MODULES``; ``strict`` (the build's ``--check``) also fails on a renamed one."""
    for name in STARTUP_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if strict or exc.name != name:
                raise


def wait_for_persistence(status_file: Path = PERSISTENCE) -> None:
    deadline = time.monotonic() + PERSISTENCE_WAIT_S
    while not status_file.exists():
        if time.monotonic() > deadline:
            print(
                f"WARNING: no persistence verdict after {PERSISTENCE_WAIT_S:.0f} s (tabula-data.service): "
                "a TABULA-DATA partition may not be mounted, and then it is NOT protected from erasure.",
                file=sys.stderr,
            )
            return
        time.sleep(0.1)
    status = status_file.read_text()
    print(status, end="", flush=True)
    if status.startswith("WARNING"):
        time.sleep(3)  # the TUI covers the screen next: leave time to read it


def apply_boot_params(cmdline: Path = Path("/proc/cmdline")) -> None:
    from station.bootparams import read_boot_params  # (imported above by preimport: free here)

    params = read_boot_params(cmdline)
    for warning in params.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    os.environ.update(params.environment())
    keymap = os.environ.get("TABULA_KEYMAP")
    # The Linux console's keyboard, set from tty1: the serial console gets its keys from the far end.
    if keymap and os.isatty(0) and os.ttyname(0) == "/dev/tty1":
        if subprocess.run(["loadkeys", "-q", keymap], check=False).returncode == 0:
            print(f"Keyboard: {keymap}")
        else:
            print(f"WARNING: keymap {keymap} not loaded")


def main(argv: list[str]) -> int:
    use_console_fd()
    stamp("python")
    check = argv[1:] == ["--check"]
    preimport(strict=check)
    if check:
        import station.autorun  # noqa: F401  (run with -m for tabula.auto=)
        from station.bootparams import read_boot_params  # noqa: F401  (what apply_boot_params uses)
        from station.cli import main as _station_main  # noqa: F401

        return 0
    stamp("imported")
    wait_for_persistence()
    stamp("persistence")
    apply_boot_params()
    if os.environ.get("TABULA_AUTO"):
        code = subprocess.run([sys.executable, "-m", "station.autorun", "--from-cmdline"], check=False)
        print(f"station autorun: exit code {code.returncode}")
    from station.cli import main as station_main

    stamp("tui")
    sys.argv = ["station"]
    return station_main([])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
