"""The small lies of issue 14, each shown false: after a restart ``p`` follows the erasures found running,
the quit dialog counts only what runs, the bench counts failures apart, ``x Stop`` only while something
runs, the demo stops its erasures when it quits (its drives go), and the first start asks who erases."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from erase.journal import Journal, boot_id, process_start, utcnow
from erase.record import VerificationRecord
from host.drives import DriveEntry
from host.identity import DriveInfo
from host.protection import Verdict
from station.i18n import set_language
from station.jobs import EraseOptions, create_job, plan_job
from station.options import WorkerOptions
from station.tui import model
from station.tui.app import TabulaApp, create_app
from station.tui.screens import BenchScreen, ConfirmScreen, DrivesScreen, SettingsScreen
from station.tui.screens.bench import bench_title
from tests.test_tui_control import disk
from tests.test_tui_flows import screen_text, until


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    set_language("en")
    yield
    set_language("en")


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    p = subprocess.Popen(["sleep", "120"])
    yield p
    if p.poll() is None:
        p.kill()
    p.wait()


def drive(kernel: str) -> DriveInfo:
    return replace(disk(kernel), serial=f"WD-{kernel.upper()}00001")


def journal(root: Path, kernel: str, pid: int | None, end: str | None = None) -> Path:
    """A job as its worker would leave it: started by ``pid``, ended by ``end`` when given."""
    info = drive(kernel)
    job_dir = create_job(root / "jobs", plan_job(info, EraseOptions(method="zero")), WorkerOptions())
    with Journal(job_dir) as j:
        j.append("worker-started", pid=pid or 1, boot_id=boot_id(), start=process_start(pid) if pid else "0")
        j.append("pass-started", **{"pass": 0}, start=0)
        if end == "failed":
            j.append("failed", reason="the drive disappeared: EIO", error="DriveGone")
        elif end == "finished":
            size = info.size_bytes
            j.append("pass-finished", **{"pass": 0}, start=0, written=size, completed=True)
            checked = VerificationRecord(0, "full", size, size, True, utcnow(), utcnow())
            j.append("verify-finished", **{"pass": 0}, verification=checked.to_dict())
            j.append("finished")
    return job_dir


def app_on(root: Path, kernels: list[str], **kw: object) -> TabulaApp:
    entries = [DriveEntry(drive(k), Verdict.from_reasons([])) for k in kernels]
    kw.setdefault("lang", "en")
    return create_app(
        jobs_root=root / "jobs",
        drive_source=lambda: list(entries),
        monitor_factory=False,
        settings_path=root / "settings.toml",
        certificates=False,
        health=False,
        poll_interval=0.05,
        rescan_interval=3600,
        environ={},
        **kw,  # type: ignore[arg-type]
    )


async def test_after_a_restart_p_follows_the_erasures_found_running(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    running = journal(tmp_path, "sdq", sleeper.pid)
    app = app_on(tmp_path, ["sdq"])
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.scans > 0 and running in app.book.jobs)
        assert app.benches == []  # nothing was started by this TUI
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, BenchScreen))
        text = screen_text(app)
        assert "No erasure" not in text and "1 in progress" in text


async def test_the_quit_dialog_counts_only_what_runs(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    journal(tmp_path, "sdq", sleeper.pid)
    journal(tmp_path, "sdr", None, end="finished")
    journal(tmp_path, "sds", None, end="failed")
    app = app_on(tmp_path, ["sdq", "sdr", "sds"])
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.scans > 0 and len(app.book.jobs) == 3)
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        assert str(app.screen.query_one("#confirm-text").render()).startswith("1 erasure(s) are running")
        await pilot.press("n")
        sleeper.kill()  # the worker ends (its journal says nothing more: the job is interrupted)
        sleeper.wait()
        await pilot.press("q")  # nothing runs any more: no question
        await pilot.pause(0.2)
        assert not app.is_running or not isinstance(app.screen, ConfirmScreen)


async def test_the_bench_counts_failures_apart_and_offers_stop_only_while_something_runs(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    dirs = [
        journal(tmp_path, "sdq", sleeper.pid),
        journal(tmp_path, "sdr", None, end="finished"),
        journal(tmp_path, "sds", None, end="failed"),
    ]
    book = model.JobBook()
    jobs = [book.add(d) for d in dirs]
    assert bench_title(jobs).plain.startswith("Erasing 3 drive(s): 1 erased, 1 failed, 1 in progress.")
    app = app_on(tmp_path, ["sdq", "sdr", "sds"])
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.scans > 0 and len(app.book.jobs) == 3)
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, BenchScreen))
        screen = app.screen
        assert isinstance(screen, BenchScreen)
        assert screen.check_action("stop", ()) is True
        assert [j.plan.drive.kernel_name for j in screen.jobs()] == ["sdq"]  # the one found running
        sleeper.kill()
        sleeper.wait()
        await until(pilot, lambda: all(j.settled for j in screen.jobs()))
        await until(pilot, lambda: app.screen is not screen)  # its result comes up (one drive)
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        assert screen.check_action("stop", ()) is False  # "x Stop" is no longer offered
        footer = app.screen._compositor.render_strips()[-1].text
        assert "Stop" not in footer and "Drives" in footer
        assert "Finished: 0 of 1 drive(s) erased and verified. 1 NOT erased." in screen_text(app)


async def test_quitting_the_demo_stops_its_erasures_instead_of_leaving_them_on_drives_that_go(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    journal(tmp_path, "sdq", sleeper.pid)
    app = app_on(tmp_path, ["sdq"], demo_drives={})
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.scans > 0 and app.book.jobs)
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        question = str(app.screen.query_one("#confirm-text").render())
        assert "stopped and reported as interrupted" in question
        assert "continue in the background" not in question and "starting Tabula again" not in question
        await pilot.press("y")
        await until(pilot, lambda: sleeper.poll() is not None, timeout=10)  # the "worker" got its SIGTERM
        await until(pilot, lambda: app.return_value is not None, timeout=10)  # then the demo ends
    assert sleeper.returncode == -15
    assert app.return_value == 0


async def test_the_first_start_asks_who_erases_and_will_not_go_on_without_a_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TABULA_TECHNICIAN")
    monkeypatch.delenv("TABULA_ORG")
    app = app_on(tmp_path, ["sdq"])
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        assert "Who erases here?" in screen_text(app)
        await pilot.press("escape")
        assert isinstance(app.screen, SettingsScreen)  # no way round it
        await pilot.press("enter", "enter")  # an empty name is refused too
        assert isinstance(app.screen, SettingsScreen)
        await pilot.press(*"Camille", "enter", *"Atelier", "enter")
        await until(pilot, lambda: isinstance(app.screen, DrivesScreen))
    saved, _doc = model.load_settings(tmp_path / "settings.toml")
    assert (saved.technician, saved.organisation) == ("Camille", "Atelier")
    again = app_on(tmp_path, ["sdq"])
    async with again.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: again.scans > 0)
        assert isinstance(again.screen, DrivesScreen)  # asked once: the settings remember
