"""Stopping a job, quitting while erasures run, and the drive list's status column at 80 columns.

Stopping is tested on a real loop device with a real worker (a gutmann erase: 35 passes, long
enough to be caught running); the pid-reuse guard is tested with real processes whose start time
does not match the journal's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from erase.journal import Journal, boot_id, process_start
from erase.record import Outcome
from host.drives import DriveEntry
from host.identity import DriveInfo
from host.protection import Verdict
from station.i18n import set_language
from station.jobs import EraseOptions, create_job, plan_job
from station.options import WorkerOptions
from station.tui import model
from station.tui.app import TabulaApp, create_app
from station.tui.model import policies
from station.tui.screens import BenchScreen, ConfirmScreen, DrivesScreen
from tests.test_tui_flows import app_for, row_status, screen_text, until

MiB = 1 << 20


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    set_language("en")
    yield
    set_language("en")


def disk(kernel: str = "sdq", size: int = 500_107_862_016) -> DriveInfo:
    return DriveInfo(
        path=f"/dev/{kernel}",
        size_bytes=size,
        logical_sector_size=512,
        physical_sector_size=512,
        transport="sata",
        media_type="hdd",
        rotational=True,
        removable=False,
        read_only=False,
        serial="WD-WCC2E7654321",
        model="WDC WD5000AAKX",
        kernel_name=kernel,
        by_path=("/dev/disk/by-path/pci-0000:00:1f.2-ata-3",),
    )


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    p = subprocess.Popen(["sleep", "120"])
    yield p
    if p.poll() is None:
        p.kill()
    p.wait()


def running_job(root: Path, info: DriveInfo, pid: int, start: str | None, method: str = "zero") -> Path:
    job_dir = create_job(root / "jobs", plan_job(info, EraseOptions(method=method)), WorkerOptions())
    with Journal(job_dir) as j:
        j.append("worker-started", pid=pid, boot_id=boot_id(), start=start)
        j.append("pass-started", **{"pass": 0}, start=0)
    return job_dir


# -- stop_worker: only the journal's own process ------------------------------------------------------


def test_stop_worker_signals_the_journalled_process(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    job_dir = running_job(tmp_path, disk(), sleeper.pid, process_start(sleeper.pid))
    job = model.JobBook().add(job_dir)
    assert job.outcome is Outcome.RUNNING
    assert model.stop_worker(job) == "signalled"
    assert sleeper.wait(timeout=5) == -15  # SIGTERM


def test_stop_worker_never_signals_a_reused_pid(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    """The journal names this pid, but the process now holding it started at another time."""
    real = process_start(sleeper.pid)
    assert real is not None
    job_dir = running_job(tmp_path, disk(), sleeper.pid, str(int(real) - 1))
    job = model.JobBook().add(job_dir)
    assert model.stop_worker(job) == "not-ours"
    time.sleep(0.2)
    assert sleeper.poll() is None  # still alive: never signalled


def test_stop_worker_on_a_finished_or_vanished_job(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    job_dir = running_job(tmp_path, disk(), gone.pid, "12345")
    job = model.JobBook().add(job_dir)
    assert job.outcome is Outcome.INTERRUPTED
    assert model.stop_worker(job) in ("not-running", "not-ours")  # pid free, or reused by a stranger
    with Journal(job_dir) as j:
        j.append("failed", reason="the drive disappeared", error="DriveGone")
    job = model.JobBook().add(job_dir)
    assert model.stop_worker(job) == "not-running"


# -- the status column at 80 columns --------------------------------------------------------------


def test_long_progress_fits_the_status_column(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    # 35 passes + 1 verification = 36 units; 16 passes done -> 44 %; 20 units of 91 MB left at 455 MB/s -> 0:04
    info = disk(size=91_000_064)
    job_dir = running_job(tmp_path, info, sleeper.pid, process_start(sleeper.pid), method="gutmann")
    with Journal(job_dir) as j:
        for i in range(16):
            if i:
                j.append("pass-started", **{"pass": i}, start=0)
            j.append("pass-finished", **{"pass": i}, start=0, written=info.size_bytes, completed=True)
        j.append("pass-started", **{"pass": 16}, start=0)
        j.append(
            "progress", **{"pass": 16}, phase="write", done=0, total=info.size_bytes, rate=4.55e8, synced=True
        )
    job = model.JobBook().add(job_dir)
    assert model.status_text(job) == "pass 17/35 44% 0:04"  # the speed is on the bench screen
    assert model.status_text(job, 40) == "pass 17/35 44% 455MB/s 0:04"  # a wider terminal: all of it
    # Absurd numbers drop the speed, then the time left, never the pass and the percentage.
    assert model.fit(["P35/35", "100%", "59:59", "12345MB/s"], 24) == "P35/35 100% 59:59"
    assert model.fit(["P35/35", "100%", "59h59:59:59", "12345MB/s"], 12) == "P35/35 100%"


@pytest.mark.parametrize(
    ("lang", "quit_hint", "progress", "width"),
    [
        ("en", "q Quit", "pass 17/35 44% 0:04", 80),
        ("fr", "q Quitter", "passe 17/35 44% 0:04", 80),
        ("en", "q Quit", "pass 17/35 44% 455MB/s 0:04", 160),
        ("fr", "q Quitter", "passe 17/35 44% 455Mo/s 0:04", 160),
    ],
)
async def test_drive_list_shows_the_whole_progress_line_at_80_columns(
    tmp_path: Path, sleeper: subprocess.Popen[bytes], lang: str, quit_hint: str, progress: str, width: int
) -> None:
    """At 80 columns the line fits (the speed is on the bench screen); wider, the status gets the room."""
    from textual.widgets import DataTable

    info = disk(size=91_000_064)
    job_dir = running_job(tmp_path, info, sleeper.pid, process_start(sleeper.pid), method="gutmann")
    with Journal(job_dir) as j:
        for i in range(16):
            if i:
                j.append("pass-started", **{"pass": i}, start=0)
            j.append("pass-finished", **{"pass": i}, start=0, written=info.size_bytes, completed=True)
        j.append("pass-started", **{"pass": 16}, start=0)
        j.append(
            "progress", **{"pass": 16}, phase="write", done=0, total=info.size_bytes, rate=4.55e8, synced=True
        )
    entries = [DriveEntry(info, Verdict.from_reasons([]))] + [
        DriveEntry(replace(disk(f"sd{c}"), serial=f"SN{c}"), Verdict.from_reasons([]))
        for c in "abcdefghijklmnopqrstuvwxy"
    ]  # more drives than rows: a vertical scrollbar must not eat the status column either
    app = create_app(
        jobs_root=tmp_path / "jobs",
        lang=lang,
        drive_source=lambda: list(entries),
        monitor_factory=False,
        settings_path=tmp_path / "settings.toml",
        certificates=False,
        health=False,
        poll_interval=3600,
        rescan_interval=3600,
        environ={},
    )
    async with app.run_test(size=(width, 24)) as pilot:
        await until(pilot, lambda: app.scans > 0 and app.jobs_loaded > 0)
        app.refresh_screens()
        await pilot.pause(0.1)
        table = app.screen.query_one("#drives", DataTable)
        assert table.show_vertical_scrollbar and not table.show_horizontal_scrollbar

        def shown() -> list[str]:  # what the terminal shows
            return [strip.text for strip in app.screen._compositor.render_strips()]

        await until(pilot, lambda: bool(shown()[-1].strip()))  # the footer is drawn
        lines = shown()
        assert len(lines) == 24 and all(len(line) == width for line in lines)
        assert any(progress + " " in line or line.endswith(progress) for line in lines), lines  # never cut
        assert lines[-1].rstrip().endswith(quit_hint)  # every key hint fits, the last one too


# -- stopping a real erase from the bench screen ---------------------------------------------------


@pytest.mark.root
async def test_stop_a_real_erase_with_confirmation(home: Path, make_loop: Callable[..., str]) -> None:
    # 35 passes over 256 MiB: seconds even on an idle machine, so the worker is still writing when it
    # is held (over 32 MiB an idle machine finished the whole method before the SIGSTOP).
    dev = make_loop(256 * MiB, fill=b"\x5a")
    app = app_for(home, [dev])
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.scans > 0)
        await pilot.press("e")
        keys = [p.key for p in policies()]
        await pilot.press(*["down"] * keys.index("gutmann"), "enter")
        await pilot.press(*os.path.basename(dev), "enter")
        assert isinstance(app.screen, BenchScreen)
        job_dir = app.benches[-1].job_dirs[0]
        job = app.book.jobs[job_dir]
        await until(pilot, lambda: job.state.phase == "write" and job.state.worker is not None)
        pid = int(job.state.worker["pid"])  # type: ignore[index]
        # Hold the worker still (a loop device is faster than any real drive): it stays the same live
        # process, and the SIGTERM the TUI sends waits for it, pending, until it is let go.
        os.kill(pid, signal.SIGSTOP)
        try:
            assert job.state.end_event is None, "the worker finished before it was held"
            await pilot.press("x")
            assert isinstance(app.screen, ConfirmScreen)
            text = str(app.screen.query_one("#confirm-text").render())
            assert "Stop the erasure of " + os.path.basename(dev) in text
            await pilot.press("n")  # changed my mind: nothing happens
            assert isinstance(app.screen, BenchScreen)
            await pilot.press("x")
            await pilot.press("enter")  # the focused button is "Keep erasing"
            assert isinstance(app.screen, BenchScreen)
            assert not _pending_sigterm(pid)
            await pilot.press("x", "y")
            assert isinstance(app.screen, BenchScreen)
            assert _pending_sigterm(pid)  # sent, through the journal's pid, to the very worker
        finally:
            os.kill(pid, signal.SIGCONT)
        await until(pilot, lambda: job.settled, timeout=30)
        assert job.state.end_event == "cancelled"  # the worker journalled it: not killed
        assert job.outcome is Outcome.INTERRUPTED
        await until(pilot, lambda: "stopped on request" in screen_text(app))
        await pilot.press("escape")
        assert row_status(app, dev) == "interrupted"
    done = [p for p in job.state.passes.values() if p.completed]
    assert len(done) < 35  # stopped part-way: the record will not claim the method ran
    assert not job.outcome.success


def _pending_sigterm(pid: int) -> bool:
    """Whether SIGTERM is pending for ``pid`` (/proc/PID/status, ShdPnd: process-wide pending)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("ShdPnd:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    raise AssertionError("no ShdPnd in /proc/PID/status")


# -- quitting while erasures run -------------------------------------------------------------------


def fake_running_app(tmp_path: Path, sleeper: subprocess.Popen[bytes], lang: str) -> TabulaApp:
    info = disk()
    running_job(tmp_path, info, sleeper.pid, process_start(sleeper.pid))
    return create_app(
        jobs_root=tmp_path / "jobs",
        lang=lang,
        drive_source=lambda: [DriveEntry(info, Verdict.from_reasons([]))],
        monitor_factory=False,
        settings_path=tmp_path / "settings.toml",
        certificates=False,
        health=False,
        poll_interval=0.05,
        rescan_interval=3600,
        environ={},
    )


@pytest.mark.parametrize(
    ("lang", "says", "yes"),
    [
        ("en", "They continue in the background after you quit", "y"),
        ("fr", "Ils continuent en arrière-plan après votre départ", "o"),
    ],
)
async def test_quit_while_erasing_asks_first(
    tmp_path: Path, sleeper: subprocess.Popen[bytes], lang: str, says: str, yes: str
) -> None:
    app = fake_running_app(tmp_path, sleeper, lang)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.scans > 0 and app.running_jobs() == 1)
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        assert says in str(app.screen.query_one("#confirm-text").render())
        await pilot.press("n")
        assert isinstance(app.screen, DrivesScreen) and app.is_running
        await pilot.press("ctrl+q")  # Textual's own quit key asks too
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, DrivesScreen) and app.is_running
        await pilot.press("q", yes)
        await pilot.pause(0.1)
        assert app.quit_confirmed
    assert app.return_value == 0
    assert sleeper.poll() is None  # the "worker" was left running


async def test_quit_without_running_erasures_does_not_ask(tmp_path: Path) -> None:
    app = create_app(
        jobs_root=tmp_path / "jobs",
        lang="en",
        drive_source=lambda: [],
        monitor_factory=False,
        settings_path=tmp_path / "settings.toml",
        certificates=False,
        health=False,
        environ={},
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.scans > 0)
        await pilot.press("q")
        await pilot.pause(0.1)
        assert not app.quit_confirmed
    assert app.return_value == 0
