"""station autorun: the kernel command line parser, and the headless erase for real on loop devices.

The loop tests name their own loop devices with the test-only ``--test-loop`` (then only those are
considered, never a drive of this machine), run ``python -m station.autorun`` as a process (the
workers are processes anyway), and check the devices byte for byte.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from station.autorun import select_drives
from station.bootparams import BootParams, parse_boot_params
from tests.fixtures.certs.helpers import payload_of

REPO = Path(__file__).resolve().parent.parent
PATTERN = b"\xa5"


# -- kernel command line ---------------------------------------------------------------------------


def test_defaults_without_tabula_parameters() -> None:
    p = parse_boot_params("BOOT_IMAGE=/live/vmlinuz boot=live quiet console=ttyS0,115200n8")
    assert p == BootParams()
    assert p.auto is None and p.after == "wait" and p.countdown == 10 and p.verify == "last"
    assert p.environment() == {}


def test_full_headless_command_line() -> None:
    p = parse_boot_params(
        "boot=live tabula.lang=fr tabula.policy=dod-short tabula.bench=1 tabula.sync=https://sync.example/x "
        "tabula.auto=zero tabula.verify=all tabula.countdown=30 tabula.after=poweroff tabula.boot=LABEL=TABULA"
    )
    assert (p.lang, p.policy, p.bench, p.sync) == ("fr", "dod-short", True, "https://sync.example/x")
    assert (p.auto, p.verify, p.countdown, p.after) == ("zero", "all", 30, "poweroff")
    assert p.warnings == ()
    assert p.environment() == {
        "TABULA_LANG": "fr",
        "TABULA_KEYMAP": "fr",  # French chosen: the console gets AZERTY
        "TABULA_POLICY": "dod-short",
        "TABULA_BENCH": "1",
        "TABULA_SYNC": "https://sync.example/x",
        "TABULA_AUTO": "zero",
        "TABULA_AFTER": "poweroff",
    }


def test_bare_bench_and_quoted_values() -> None:
    p = parse_boot_params('tabula.bench tabula.auto="prng" tabula.bench=0')
    assert p.bench is False and p.auto == "prng"
    assert parse_boot_params("tabula.bench").bench is True


def test_bad_auto_method_never_starts_a_headless_erase() -> None:
    p = parse_boot_params("tabula.auto=shred-everything tabula.countdown=5")
    assert p.auto is None
    assert any("will NOT run" in w for w in p.warnings)
    assert "TABULA_AUTO" not in p.environment()


@pytest.mark.parametrize(
    ("param", "field", "expected", "warning"),
    [
        ("tabula.lang=de", "lang", None, "use en or fr"),
        ("tabula.policy=nope", "policy", None, "not an erase method"),
        ("tabula.sync=ftp://x", "sync", None, "http:// or https://"),
        ("tabula.verify=sometimes", "verify", "last", "none, last or all"),
        ("tabula.countdown=abc", "countdown", 10, "number of seconds"),
        ("tabula.countdown=0", "countdown", 3, "raised to 3"),
        ("tabula.countdown=99999", "countdown", 3600, None),
        ("tabula.after=reboot", "after", "wait", "poweroff or wait"),
        ("tabula.bench=maybe", "bench", False, "tabula.bench=1"),
        ("tabula.colour=blue", "lang", None, "unknown boot parameter tabula.colour"),
        ("tabula.lot=LOT-2026-03", "lot", "LOT-2026-03", None),
        ('tabula.lot="LOT 2026"', "lot", None, "may hold only letters"),
        ("tabula.lot=", "lot", None, "the lot reference is empty"),
        ("tabula.keymap=fr;reboot", "keymap", None, "a keymap name"),
        ("tabula.keymap=../../etc/x", "keymap", None, "a keymap name"),
    ],
)
def test_invalid_values_are_ignored_with_a_warning(
    param: str, field: str, expected: object, warning: str | None
) -> None:
    p = parse_boot_params(f"boot=live {param}")
    assert getattr(p, field) == expected
    if warning is None:
        assert p.warnings == ()
    else:
        assert len(p.warnings) == 1 and warning in p.warnings[0]


def test_keymap_follows_french_unless_named() -> None:
    assert parse_boot_params("tabula.lang=fr").environment()["TABULA_KEYMAP"] == "fr"
    assert "TABULA_KEYMAP" not in parse_boot_params("tabula.lang=en").environment()
    belgian = parse_boot_params("tabula.keymap=be-latin1 tabula.lang=fr")
    assert belgian.warnings == () and belgian.environment()["TABULA_KEYMAP"] == "be-latin1"
    assert parse_boot_params("tabula.keymap=fr_CH").environment() == {"TABULA_KEYMAP": "fr_CH"}


def test_parameters_after_double_dash_go_to_init_not_to_tabula() -> None:
    assert parse_boot_params("quiet -- tabula.auto=zero").auto is None


def test_print_env_is_shell_quoted(tmp_path: Path) -> None:
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("boot=live tabula.lang=fr tabula.sync=https://a.example/b?x=1&y=2 tabula.auto=zero\n")
    out = subprocess.run(
        [sys.executable, "-m", "station.autorun", "--print-env", "--cmdline", str(cmdline)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    env = subprocess.run(
        ["sh", "-c", out + '\nprintf "%s|%s|%s" "$TABULA_LANG" "$TABULA_SYNC" "$TABULA_AUTO"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert env == "fr|https://a.example/b?x=1&y=2|zero"


# -- drive selection -----------------------------------------------------------------------------


class _Info:
    def __init__(self, path: str, transport: str) -> None:
        self.path = path
        self.transport = transport


class _Verdict:
    def __init__(self, allowed: bool) -> None:
        self.allowed = allowed


class _Entry:
    def __init__(self, path: str, transport: str, allowed: bool) -> None:
        self.info = _Info(path, transport)
        self.protection = _Verdict(allowed)


def test_selection_never_takes_loops_without_the_test_flag_and_only_named_loops_with_it() -> None:
    entries = [
        _Entry("/dev/sda", "sata", True),
        _Entry("/dev/sdb", "usb", False),
        _Entry("/dev/loop3", "loop", True),
        _Entry("/dev/loop4", "loop", True),
    ]
    allowed, refused = select_drives(entries, ())
    assert [e.info.path for e in allowed] == ["/dev/sda"]
    assert [e.info.path for e in refused] == ["/dev/sdb"]
    allowed, refused = select_drives(entries, ("/dev/loop4",))
    assert [e.info.path for e in allowed] == ["/dev/loop4"] and refused == []


# -- for real, on loop devices ---------------------------------------------------------------------


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["TABULA_HOME"] = str(home)
    env["PYTHONPATH"] = str(REPO)
    return env


def _argv(state: Path, loops: list[str], *extra: str) -> list[str]:
    argv = [sys.executable, "-m", "station.autorun", "--state-dir", str(state), *extra]
    for d in loops:
        argv += ["--test-loop", d]
    return argv


def _content(dev: str, size: int) -> bytes:
    with open(dev, "rb") as f:
        return f.read(size)


def _verify(home: Path) -> subprocess.CompletedProcess[str]:
    """``station verify`` of every certificate, trusting only the station's public key."""
    trust = home / "trust-for-test"
    trust.mkdir(exist_ok=True)
    (trust / "station.pub.pem").write_bytes((home / "keys" / "station.pub.pem").read_bytes())
    return subprocess.run(
        [sys.executable, "-m", "station.cli", "verify", str(home / "certs"), "--trust", str(trust)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=_env(home),
    )


@pytest.mark.root
def test_autorun_erases_every_named_unprotected_loop_and_signs_certificates(
    make_loop, tmp_path: Path
) -> None:
    size = 3 << 20
    a = make_loop(size, fill=PATTERN)
    b = make_loop(size + 4096, fill=PATTERN)
    ro = make_loop(size, fill=PATTERN, read_only=True)
    home = tmp_path / "home"
    proc = subprocess.run(
        _argv(tmp_path / "run", [a, b, ro], "--method", "zero", "--yes-all-unprotected", "--countdown", "1"),
        capture_output=True,
        text=True,
        cwd=REPO,
        env=_env(home),
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _content(a, size) == bytes(size)
    assert _content(b, size + 4096) == bytes(size + 4096)
    assert _content(ro, size) == PATTERN * size, "a read-only (protected) drive must never be written"
    assert f"protected, not erased: {ro}" in proc.stdout
    assert "Erasing 2 drive(s) in   1 s" in proc.stdout
    assert proc.stdout.count(": ERASED AND VERIFIED") == 2
    certs = sorted((home / "certs").rglob("*.json"))
    assert len(certs) == 2
    assert (home / "keys" / "station.pub.pem").is_file()
    verified = _verify(home)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    status = json.loads((tmp_path / "run" / "autorun.status.json").read_text())
    assert status["exit_code"] == 0 and status["cancelled"] is False


@pytest.mark.root
def test_the_lot_is_signed_in_every_certificate_and_a_bad_one_erases_nothing(
    make_loop, tmp_path: Path
) -> None:
    """A bench erasing a donation's drives names the lot once (``--lot`` or ``tabula.lot=``)."""
    size = 1 << 20
    a = make_loop(size, fill=PATTERN)
    home = tmp_path / "home"
    run = {"capture_output": True, "text": True, "cwd": REPO, "env": _env(home), "timeout": 180}
    argv = _argv(tmp_path / "run", [a], "--method", "zero", "--yes-all-unprotected", "--countdown", "0")
    bad = subprocess.run([*argv, "--lot", "LOT 2026"], stdin=subprocess.DEVNULL, **run)
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert "--lot 'LOT 2026'" in bad.stderr and "only letters" in bad.stderr
    assert _content(a, size) == PATTERN * size and not (home / "jobs").exists()
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("boot=live tabula.auto=zero tabula.countdown=3 tabula.lot=LOT-2026-11\n")
    boot = _argv(tmp_path / "boot", [a], "--from-cmdline", "--cmdline", str(cmdline), "--countdown", "0")
    booted = subprocess.run(boot, stdin=subprocess.DEVNULL, **run)
    assert booted.returncode == 0, booted.stdout + booted.stderr
    assert "lot LOT-2026-11" in booted.stdout
    b = make_loop(size, fill=PATTERN)
    argv = _argv(tmp_path / "run2", [b], "--method", "zero", "--yes-all-unprotected", "--countdown", "0")
    named = subprocess.run([*argv, "--lot", " LOT-2026-12 "], stdin=subprocess.DEVNULL, **run)
    assert named.returncode == 0, named.stdout + named.stderr
    lots = sorted(payload_of(c)["media"]["lot"] for c in (home / "certs").rglob("*.json"))
    assert lots == ["LOT-2026-11", "LOT-2026-12"]
    assert _verify(home).returncode == 0


@pytest.mark.root
def test_autorun_refuses_without_consent_and_with_nothing_to_erase(make_loop, tmp_path: Path) -> None:
    a = make_loop(1 << 20, fill=PATTERN)
    no_consent = subprocess.run(
        _argv(tmp_path / "run", [a], "--method", "zero", "--countdown", "0"),
        capture_output=True,
        text=True,
        cwd=REPO,
        env=_env(tmp_path / "home"),
        timeout=60,
    )
    assert no_consent.returncode == 2 and "--yes-all-unprotected" in no_consent.stderr
    ro = make_loop(1 << 20, fill=PATTERN, read_only=True)
    nothing = subprocess.run(
        _argv(tmp_path / "run", [ro], "--method", "zero", "--yes-all-unprotected", "--countdown", "0"),
        capture_output=True,
        text=True,
        cwd=REPO,
        env=_env(tmp_path / "home"),
        timeout=60,
    )
    assert nothing.returncode == 2 and "No drive to erase" in nothing.stdout
    assert _content(a, 1 << 20) == PATTERN * (1 << 20)
    not_loop = subprocess.run(
        _argv(tmp_path / "run", ["/dev/null"], "--method", "zero", "--yes-all-unprotected"),
        capture_output=True,
        text=True,
        cwd=REPO,
        env=_env(tmp_path / "home"),
        timeout=60,
    )
    assert not_loop.returncode == 2 and "loop devices only" in not_loop.stderr


def _spawn_in_pty(argv: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        argv, stdin=slave, stdout=slave, stderr=slave, cwd=REPO, env=env, start_new_session=True
    )
    os.close(slave)
    return proc, master


def _read_until(master: int, pattern: str, timeout: float) -> str:
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            if re.search(pattern, buf.decode(errors="replace")):
                return buf.decode(errors="replace")
    raise AssertionError(f"{pattern!r} not seen in:\n{buf.decode(errors='replace')}")


def _drain(master: int) -> str:
    buf = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.2)
        if not ready:
            return buf.decode(errors="replace")
        try:
            chunk = os.read(master, 4096)
        except OSError:
            return buf.decode(errors="replace")
        if not chunk:
            return buf.decode(errors="replace")
        buf += chunk


@pytest.mark.root
def test_any_key_during_the_countdown_cancels_and_nothing_is_written(make_loop, tmp_path: Path) -> None:
    size = 2 << 20
    a = make_loop(size, fill=PATTERN)
    home = tmp_path / "home"
    proc, master = _spawn_in_pty(
        _argv(tmp_path / "run", [a], "--method", "zero", "--yes-all-unprotected", "--countdown", "30"),
        _env(home),
    )
    try:
        _read_until(master, r"press any key or Ctrl-C to cancel", 60)
        os.write(master, b"x")
        assert proc.wait(timeout=30) == 2
        assert "Cancelled by a key press" in _drain(master)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert _content(a, size) == PATTERN * size
    assert not (home / "jobs").exists() or not any((home / "jobs").iterdir())


@pytest.mark.root
def test_ctrl_c_on_a_follower_console_cancels_the_leader(make_loop, tmp_path: Path) -> None:
    """Two consoles start autorun: one runs it, the other follows; a key there cancels the countdown."""
    size = 2 << 20
    a = make_loop(size, fill=PATTERN)
    env = _env(tmp_path / "home")
    argv = _argv(tmp_path / "run", [a], "--method", "zero", "--yes-all-unprotected", "--countdown", "30")
    leader = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO, env=env
    )
    follower, master = None, None
    try:
        deadline = time.monotonic() + 60
        phase = tmp_path / "run" / "autorun.phase"
        while not (phase.exists() and phase.read_text() == "countdown"):
            assert time.monotonic() < deadline and leader.poll() is None, (
                "the leader never reached its countdown"
            )
            time.sleep(0.1)
        follower, master = _spawn_in_pty(argv, env)
        _read_until(master, r"following it here", 30)
        _read_until(master, r"press any key", 30)
        os.write(master, b"\n")
        assert leader.wait(timeout=30) == 2
        assert follower.wait(timeout=30) == 2
        assert leader.stdout is not None
        assert "Cancelled (Ctrl-C): nothing was written" in leader.stdout.read().decode()
    finally:
        for p in (leader, follower):
            if p is not None and p.poll() is None:
                p.kill()
        if master is not None:
            os.close(master)
    assert _content(a, size) == PATTERN * size


@pytest.mark.root
def test_from_cmdline_runs_once_per_boot_and_exits_like_station_erase(make_loop, tmp_path: Path) -> None:
    size = 1 << 20
    a = make_loop(size, fill=PATTERN)
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("boot=live tabula.auto=one tabula.verify=all tabula.countdown=3 tabula.after=wait\n")
    env = _env(tmp_path / "home")
    argv = _argv(tmp_path / "run", [a], "--from-cmdline", "--cmdline", str(cmdline))
    first = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "method one, verify all" in first.stdout
    assert _content(a, size) == b"\xff" * size
    # Refill the backing file through the device: a second login must not erase again.
    with open(a, "r+b") as f:
        f.write(PATTERN * size)
        f.flush()
        os.fsync(f.fileno())
    second = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=env, timeout=60)
    assert second.returncode == 0
    assert "already ran during this boot" in second.stdout
    assert _content(a, size) == PATTERN * size


@pytest.mark.root
def test_sigint_during_the_erase_interrupts_with_exit_4(make_loop, tmp_path: Path) -> None:
    size = 64 << 20
    a = make_loop(size, fill=PATTERN)
    argv = _argv(
        tmp_path / "run",
        [a],
        "--method",
        "gutmann",
        "--verify",
        "all",
        "--yes-all-unprotected",
        "--countdown",
        "0",
    )
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=REPO,
        env=_env(tmp_path / "home"),
        # Started as a shell's background job is: with SIGINT ignored.  SIGINT must still cancel.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        deadline = time.monotonic() + 60
        while '"pass-started"' not in "".join(
            p.read_text() for p in (tmp_path / "home" / "jobs").glob("*/journal.jsonl")
        ):
            assert time.monotonic() < deadline and proc.poll() is None, "the worker never started a pass"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 4
    finally:
        if proc.poll() is None:
            proc.kill()
    status = json.loads((tmp_path / "run" / "autorun.status.json").read_text())
    assert status["exit_code"] == 4
