"""The live image's kernel command line, and the headless bench mode (``station autorun``).

Kernel parameters (``tabula.*``): see :mod:`station.bootparams`.

``station autorun`` plans one job per drive whose protection verdict allows it (never loop devices:
``--test-loop DEV`` is a test-only way to name loop devices, and then *only* those are considered),
shows the plan, counts down visibly (any key or Ctrl-C cancels: exit 2, nothing written), creates
the station key once, starts one worker per drive through :mod:`station.jobs`, prints progress and
the result of each drive, and exits like ``station erase``: 0 erased, 3 failed, 4 interrupted,
1 internal error (2: refused, cancelled or nothing to erase).

Several consoles may start it at once (tty1 and the serial console both log in automatically): one
takes the lock in the state directory (``/run/tabula``) and runs; the others follow its output and
can cancel it (any key during the countdown, Ctrl-C at any time).  With ``--from-cmdline`` it runs
once per boot: a later login shows the recorded result instead of erasing again.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import io
import json
import os
import select
import shlex
import signal
import subprocess
import sys
import termios
import time
import traceback
import tty
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO, cast

from erase.journal import JobState
from erase.methods import method_names
from erase.record import JobPlan, VerifyPolicy
from host import paths
from host.drives import DriveEntry, discover
from host.errors import BadInput, TabulaError
from host.runner import SubprocessRunner
from host.units import human_size
from station import operator as people
from station.bootparams import (
    DEFAULT_COUNTDOWN,
    LANGS,
    MAX_COUNTDOWN,
    VERIFY_CHOICES,
    BootParams,
    read_boot_params,
)
from station.certify import ensure_station_key
from station.commands import machine_refs, warn_about_lot
from station.console import ProgressPrinter, follow, show_plan, summary
from station.errors import StationError
from station.i18n import _, set_language, tr
from station.jobs import EraseOptions, JobWatcher, create_job, plan_job, spawn
from station.options import EXIT_INTERNAL, EXIT_OK, EXIT_REFUSED, WorkerOptions

After = Literal["exit", "poweroff", "wait"]

STATE_DIR = Path("/run/tabula")


# -- console plumbing --------------------------------------------------------------------------------


class Tee(io.TextIOBase):
    """Writes to the console and to the log that other consoles follow."""

    def __init__(self, primary: TextIO, log: TextIO) -> None:
        self.primary = primary
        self.log = log

    def write(self, s: str) -> int:
        self.primary.write(s)
        self.log.write(s)
        return len(s)

    def flush(self) -> None:
        self.primary.flush()
        self.log.flush()

    def isatty(self) -> bool:
        return self.primary.isatty()


class KeyWatcher:
    """Reports a key press on a file descriptor (a terminal in cbreak mode, or a pipe in tests)."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd
        self._saved: list[Any] | None = None

    def __enter__(self) -> KeyWatcher:
        if self.fd is not None and os.isatty(self.fd):
            self._saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
            termios.tcflush(self.fd, termios.TCIFLUSH)  # keys typed before the countdown do not count
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None and self.fd is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def pressed(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; True when a key was pressed.  End of input is not a key."""
        if self.fd is None:
            time.sleep(timeout)
            return False
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return False
        data = os.read(self.fd, 64)
        if not data:
            self.fd = None  # closed input (no terminal): only Ctrl-C / SIGINT can cancel now
            return False
        return True


def _stdin_fd() -> int | None:
    try:
        return sys.stdin.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return None


def countdown(seconds: int, out: TextIO, keys: KeyWatcher, what: str) -> bool:
    """Count down visibly; True when it ran out, False when cancelled (a key, Ctrl-C or SIGINT)."""
    live = out.isatty()
    try:
        for left in range(seconds, 0, -1):
            line = _("{what} in {left} s - press any key or Ctrl-C to cancel").format(
                what=what, left=f"{left:3d}"
            )
            out.write(("\r\x1b[2K" + line) if live else line + "\n")
            out.flush()
            if keys.pressed(1.0):
                out.write(("\n" if live else "") + _("Cancelled by a key press: nothing was written.") + "\n")
                out.flush()
                return False
    except KeyboardInterrupt:
        out.write(("\n" if live else "") + _("Cancelled (Ctrl-C): nothing was written.") + "\n")
        out.flush()
        return False
    if live:
        out.write("\n")
    return True


# -- coordination between consoles -----------------------------------------------------------------


@dataclass(frozen=True)
class StateFiles:
    root: Path

    @property
    def lock(self) -> Path:
        return self.root / "autorun.lock"

    @property
    def log(self) -> Path:
        return self.root / "autorun.log"

    @property
    def status(self) -> Path:
        return self.root / "autorun.status.json"

    @property
    def phase(self) -> Path:
        return self.root / "autorun.phase"

    @property
    def pid(self) -> Path:
        return self.root / "autorun.pid"

    def set_phase(self, phase: str) -> None:
        tmp = self.phase.with_name(self.phase.name + ".tmp")
        tmp.write_text(phase)
        os.replace(tmp, self.phase)

    def read_phase(self) -> str:
        try:
            return self.phase.read_text().strip()
        except FileNotFoundError:
            return ""

    def write_status(self, code: int, detail: dict[str, Any]) -> None:
        tmp = self.status.with_name(self.status.name + ".tmp")
        tmp.write_text(json.dumps({"exit_code": code, **detail}, indent=2))
        os.replace(tmp, self.status)

    def read_status(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.status.read_text())
        except FileNotFoundError:
            return None
        return data


@contextlib.contextmanager
def _try_lock(path: Path) -> Iterator[bool]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _lock_free(path: Path) -> bool:
    with _try_lock(path) as got:
        return got


# -- the run ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AutorunConfig:
    method: str
    verify: VerifyPolicy
    countdown: int
    after: After
    once_per_boot: bool
    test_loops: tuple[str, ...]
    jobs_root: Path
    cert_dir: Path | None
    key_dir: Path
    lang: str
    warnings: tuple[str, ...]
    lot: str = ""  # the donation lot signed in every certificate ("" when none is given)


def _config(args: argparse.Namespace) -> AutorunConfig:
    params = read_boot_params(Path(args.cmdline)) if args.from_cmdline else BootParams()
    countdown = args.countdown if args.countdown is not None else params.countdown
    if not 0 <= countdown <= MAX_COUNTDOWN:
        raise BadInput(f"--countdown must be between 0 and {MAX_COUNTDOWN} seconds")
    return AutorunConfig(
        method=_method(args, params),
        verify=args.verify or params.verify,
        countdown=countdown,
        after=args.after or (params.after if args.from_cmdline else "exit"),
        once_per_boot=bool(args.from_cmdline),
        test_loops=_test_loops(args),
        jobs_root=Path(args.job_dir) if args.job_dir else paths.jobs_dir(),
        cert_dir=None if args.no_cert else (Path(args.cert_dir) if args.cert_dir else paths.certs_dir()),
        key_dir=Path(args.key_dir) if args.key_dir else paths.keys_dir(),
        lang=args.lang or params.lang or os.environ.get("TABULA_LANG", "en"),
        warnings=params.warnings,
        lot=_lot(args, params),
    )


def _lot(args: argparse.Namespace, params: BootParams) -> str:
    """``--lot`` (refused with the reason when it is not a lot reference), else ``tabula.lot=``."""
    return machine_refs(args).get("lot") or params.lot or ""


def _method(args: argparse.Namespace, params: BootParams) -> str:
    """The erase method asked for, with the consent to erase every unprotected drive."""
    method: str | None = args.method or (params.auto if args.from_cmdline else None)
    if method is None:
        if args.from_cmdline and not params.warnings:
            raise BadInput("no headless erase asked: the kernel command line has no tabula.auto=METHOD")
        raise BadInput(
            "no erase method",
            hint="--method METHOD (see 'station methods'), or tabula.auto=METHOD on the kernel command line",
        )
    if method not in method_names():
        raise BadInput(f"unknown method {method!r}", hint="see 'station methods'")
    if not (args.yes_all_unprotected or (args.from_cmdline and params.auto is not None)):
        raise BadInput(
            "refusing to erase every unprotected drive without consent",
            hint="add --yes-all-unprotected (or boot with tabula.auto=METHOD)",
        )
    return method


def _test_loops(args: argparse.Namespace) -> tuple[str, ...]:
    test_loops = tuple(os.path.realpath(d) for d in (args.test_loop or ()))
    for d in test_loops:
        if not os.path.basename(d).startswith("loop"):
            raise BadInput(f"--test-loop takes loop devices only, not {d}")
    return test_loops


def select_drives(entries: Sequence[Any], test_loops: Sequence[str]) -> tuple[list[Any], list[Any]]:
    """(drives to erase, drives refused).  Loop devices only when named by ``test_loops``, and then
    only them: a test never reaches a real drive of the machine it runs on."""
    if test_loops:
        wanted = set(test_loops)
        candidates = [e for e in entries if e.info.transport == "loop" and e.info.path in wanted]
        found = {e.info.path for e in candidates}
        missing = sorted(wanted - found)
        if missing:
            raise BadInput(f"--test-loop: no such loop device: {', '.join(missing)}")
    else:
        candidates = [e for e in entries if e.info.transport != "loop"]
    allowed = [e for e in candidates if e.protection.allowed]
    refused = [e for e in candidates if not e.protection.allowed]
    return allowed, refused


def who_erases() -> people.Who:
    """The technician of an unattended run: settings, then tabula.technician=; else :data:`UNATTENDED`."""
    found = people.who(None, None, paths.settings_file())
    return people.Who(found.technician or people.UNATTENDED, found.organisation)


def _leader(cfg: AutorunConfig, state: StateFiles, out: TextIO) -> int:
    for w in cfg.warnings:
        out.write(_("WARNING: {warning}").format(warning=w) + "\n")
    out.write(
        _("Tabula headless erase: method {method}, verify {verify}").format(
            method=cfg.method, verify=cfg.verify
        )
        + "\n"
    )
    person = who_erases()
    out.write(_("Technician named on the certificates: {name}").format(name=person.technician) + "\n")
    allowed = _drives(cfg, out)
    if not allowed:
        out.write(_("No drive to erase: every drive found is protected (or there is none).") + "\n")
        out.flush()
        return EXIT_REFUSED
    options = EraseOptions(method=cfg.method, verify=cfg.verify)
    try:
        operator = {**person.operator(), **({"lot": cfg.lot} if cfg.lot else {})}
        plans = [plan_job(e.info, options, operator=operator) for e in allowed]
    except TabulaError as exc:
        raise BadInput(exc.message, hint=exc.hint or None) from exc
    show_plan(allowed, plans, out)
    warn_about_lot(cfg.lot, out)
    total = sum(e.info.size_bytes for e in allowed)
    out.write(
        "\n"
        + _("{n} drive(s), {size} in all, will be ERASED.").format(
            n=len(allowed), size=human_size(total, cfg.lang)
        )
        + "\n"
    )
    out.flush()
    state.set_phase("countdown")
    with KeyWatcher(_stdin_fd()) as keys:
        if not countdown(cfg.countdown, out, keys, _("Erasing {n} drive(s)").format(n=len(allowed))):
            return EXIT_REFUSED
    state.set_phase("erasing")
    job_dirs, procs, interrupted = _start(cfg, plans)
    if not job_dirs:
        out.write(_("Cancelled (Ctrl-C) before any drive was touched.") + "\n")
        out.flush()
        return EXIT_REFUSED
    code = summary(_follow(job_dirs, procs, out, interrupted), procs, out, False)
    if cfg.cert_dir is not None:
        out.write(
            "\n"
            + _("Certificates: {path}   station public key: {key}").format(
                path=cfg.cert_dir, key=cfg.key_dir / "station.pub.pem"
            )
            + "\n"
        )
    out.flush()
    return code


def _drives(cfg: AutorunConfig, out: TextIO) -> list[DriveEntry]:
    """The drives to erase; the protected ones are listed with their reasons."""
    entries = discover(include_loop=bool(cfg.test_loops))
    allowed, refused = select_drives(entries, cfg.test_loops)
    for e in refused:
        reasons = "; ".join(tr(r.message) for r in e.protection.reasons)
        out.write(
            "  "
            + _("protected, not erased: {path} ({model}): {why}").format(
                path=e.info.path, model=e.info.model or "-", why=reasons
            )
            + "\n"
        )
    return allowed


def _start(
    cfg: AutorunConfig, plans: list[JobPlan]
) -> tuple[list[Path], list[subprocess.Popen[bytes]], bool]:
    """Create each job and start its worker; (job dirs, workers, whether Ctrl-C came meanwhile).

    While jobs are being created Ctrl-C is only noted, so that no worker is ever left running
    unfollowed; the caller then stops them (the run ends as interrupted).
    """
    wopts = WorkerOptions(
        cert_dir=str(cfg.cert_dir) if cfg.cert_dir else None,
        key_dir=str(cfg.key_dir),
        lang=cfg.lang,
        include_loop=bool(cfg.test_loops),
    )
    interrupted = False

    def note_interrupt(signum: int, frame: object) -> None:
        nonlocal interrupted
        interrupted = True

    job_dirs: list[Path] = []
    procs: list[subprocess.Popen[bytes]] = []
    previous = signal.signal(signal.SIGINT, note_interrupt)
    try:
        if cfg.cert_dir is not None:
            ensure_station_key(cfg.key_dir)
        for plan in plans:
            if interrupted:
                break
            job_dirs.append(create_job(cfg.jobs_root, plan, wopts))
            procs.append(spawn(job_dirs[-1]))
    finally:
        signal.signal(signal.SIGINT, previous)
    return job_dirs, procs, interrupted


def _follow(
    job_dirs: list[Path], procs: list[subprocess.Popen[bytes]], out: TextIO, interrupted: bool
) -> list[JobState]:
    """Follow the workers to the end; Ctrl-C (now or noted while starting) stops them."""
    printer = ProgressPrinter(out, json_mode=False, tty=out.isatty())
    try:
        if interrupted:
            raise KeyboardInterrupt
        return follow(job_dirs, procs, printer)
    except KeyboardInterrupt:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            p.wait()
        return JobWatcher(job_dirs).poll()


def _after(cfg: AutorunConfig, code: int, out: TextIO, cancelled: bool) -> None:
    if cfg.after == "poweroff":
        if code == EXIT_OK and not cancelled:
            out.write(_("All drives erased: powering off.") + "\n")
            out.flush()
            SubprocessRunner().run(["systemctl", "poweroff"], timeout=60, mutating=True)
            return
        out.write(_("Not powering off: look at the result above.") + "\n")
        out.flush()
    if cfg.after in ("wait", "poweroff") and sys.stdin.isatty():
        out.write(_("Press Enter to continue.") + "\n")
        out.flush()
        sys.stdin.readline()


def _follower(state: StateFiles, out: TextIO) -> int:
    """Show the running autorun's output; a key during its countdown, or Ctrl-C, cancels it."""
    try:
        pid = int(state.pid.read_text().strip() or "0")
    except (FileNotFoundError, ValueError):
        pid = 0
    out.write(
        _("A headless erase is running on another console (pid {pid}); following it here.").format(
            pid=pid or "?"
        )
        + "\n"
    )
    out.flush()
    offset = 0
    with KeyWatcher(_stdin_fd()) as keys:
        while True:
            try:
                try:
                    with state.log.open("rb") as f:
                        f.seek(offset)
                        data = f.read()
                        offset += len(data)
                except FileNotFoundError:
                    data = b""  # the leader has not opened its log yet
                if data:
                    out.write(data.decode(errors="replace"))
                    out.flush()
                if _lock_free(state.lock):
                    break
                pressed = keys.pressed(0.3)
            except KeyboardInterrupt:
                pressed = True
                if pid and state.read_phase() != "done":
                    os.kill(pid, signal.SIGINT)
                continue
            if pressed and pid and state.read_phase() == "countdown":
                os.kill(pid, signal.SIGINT)
    status = state.read_status()
    return int(status["exit_code"]) if status else EXIT_INTERNAL


def autorun(cfg: AutorunConfig, state_dir: Path, out: TextIO) -> int:
    state = StateFiles(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    with _try_lock(state.lock) as leader:
        if not leader:
            return _follower(state, out)
        previous = state.read_status()
        if cfg.once_per_boot and previous is not None:
            out.write(
                _(
                    "The headless erase already ran during this boot (exit code {code}); it is not started again."
                ).format(code=previous["exit_code"])
                + "\n"
            )
            out.flush()
            return int(previous["exit_code"])
        state.pid.write_text(str(os.getpid()))
        state.set_phase("starting")
        code = EXIT_INTERNAL
        cancelled = False
        with state.log.open("w") as log:
            tee = cast(TextIO, Tee(out, log))
            try:
                code = _leader(cfg, state, tee)
                cancelled = state.read_phase() == "countdown"
            except KeyboardInterrupt:
                # Outside the countdown and the erase (each handles Ctrl-C itself): no job was started.
                tee.write("\n" + _("Cancelled (Ctrl-C) before any drive was touched.") + "\n")
                code = EXIT_REFUSED
                cancelled = True
            except BadInput as exc:
                tee.write(f"station autorun: {exc.diagnostics()}\n")
                code = EXIT_REFUSED
            except TabulaError as exc:
                tee.write(f"station autorun: {exc.diagnostics()}\n")
                code = EXIT_INTERNAL
            except Exception:
                # A bug: the other consoles only see the log, so the traceback goes there too.
                tee.write("station autorun: internal error\n" + traceback.format_exc())
                raise
            finally:
                state.write_status(code, {"method": cfg.method, "cancelled": cancelled, "at": time.time()})
                state.set_phase("done")
                tee.flush()
    _after(cfg, code, out, cancelled)
    return code


def run(args: argparse.Namespace) -> int:
    """``station autorun``: see the module documentation."""
    if args.print_env:
        params = read_boot_params(Path(args.cmdline))
        for w in params.warnings:
            print(f"WARNING: {w}", file=sys.stderr)
        for key, value in sorted(params.environment().items()):
            print(f"export {key}={shlex.quote(value)}")
        return EXIT_OK
    cfg = _config(args)
    set_language(cfg.lang if cfg.lang in LANGS else "en")
    # Ctrl-C, and the SIGINT a follower console sends, are how a run is cancelled: never inherit an
    # ignored SIGINT (a shell starts its background jobs with one).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return autorun(cfg, Path(args.state_dir), sys.stdout)


def register(subparsers: Any) -> None:
    """Add ``autorun`` to the ``station`` sub-commands."""
    p = subparsers.add_parser(
        "autorun",
        help="headless mode: erase every unprotected drive after a cancellable countdown",
        description="Erase every drive that protection allows (never the boot medium, the system, "
        "mounted or read-only drives) after a visible countdown; any key or Ctrl-C cancels.",
    )
    p.add_argument("--method", "-m", choices=method_names(), help="erase method (or tabula.auto=)")
    p.add_argument("--verify", choices=VERIFY_CHOICES, help="which passes to read back (default last)")
    p.add_argument("--countdown", type=int, help=f"seconds before erasing (default {DEFAULT_COUNTDOWN})")
    p.add_argument(
        "--after",
        choices=("exit", "poweroff", "wait"),
        help="when done: exit (default), poweroff (only if every drive was erased) or wait for Enter",
    )
    p.add_argument(
        "--yes-all-unprotected", action="store_true", help="consent to erasing every unprotected drive"
    )
    p.add_argument(
        "--from-cmdline",
        action="store_true",
        help="take the settings (and the consent) from tabula.* kernel parameters; once per boot",
    )
    p.add_argument("--print-env", action="store_true", help="print the session environment (shell syntax)")
    p.add_argument("--cmdline", default="/proc/cmdline", help=argparse.SUPPRESS)
    p.add_argument("--state-dir", default=str(STATE_DIR), help=argparse.SUPPRESS)
    p.add_argument("--test-loop", action="append", metavar="LOOPDEV", help=argparse.SUPPRESS)
    p.add_argument("--job-dir", help="where job journals live (default $TABULA_HOME/jobs)")
    p.add_argument("--cert-dir", help="where certificates are written (default $TABULA_HOME/certs)")
    p.add_argument("--key-dir", help="station key directory (default $TABULA_HOME/keys)")
    p.add_argument("--no-cert", action="store_true", help="do not sign certificates")
    p.add_argument("--lang", choices=LANGS, help="certificate language (default tabula.lang or en)")
    p.add_argument(
        "--lot",
        metavar="REF",
        help="the donation lot of the drives (e.g. LOT-2026-03; signed in every certificate; or tabula.lot=)",
    )
    p.set_defaults(func=run)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m station.autorun ...`` (the same as ``station autorun ...``)."""
    parser = argparse.ArgumentParser(prog="station")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(["autorun", *(argv if argv is not None else sys.argv[1:])])
    try:
        code: int = args.func(args)
        return code
    except BadInput as exc:
        print(f"station autorun: {exc.diagnostics()}", file=sys.stderr)
        return EXIT_REFUSED
    except TabulaError as exc:
        print(f"station autorun: {exc.diagnostics()}", file=sys.stderr)
        return EXIT_REFUSED if isinstance(exc, StationError) else EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
